import CKernels
import Foundation

/// 3x3 same and 1x1 convolutions on the tap-GEMM kernel of Sources/CKernels (AVX-512 or AVX2+FMA,
/// the workspace's `kernels`, KernelVariant.swift; both give the same bits): the forward
/// pass and the input gradient read the activations where they lie (a zero-bordered copy for 3x3)
/// and sum the nine taps in registers, so there is no im2col matrix, no BLAS packing and no
/// read-modify-write of the output per tap. The weight gradient is the transposed product over
/// the same padded rows.
///
/// Legend as in Conv2dShifted.swift: Wp = W + 2, wide row r = y*Wp + x, tap = ky*3 + kx.
/// ld(n) = leadingDimension(n), the row stride the kernel reads n-float rows at.
public enum Conv2dDirect {
    /// What runs the 3x3 same and 1x1 convolutions with `kernels`, for `scvae info` and the benchmarks.
    public static func kernelDescription(_ kernels: KernelVariant = .selected) -> String {
        if kernels.runsOwnKernels {
            return "tap-GEMM (\(kernels)) for 3x3 same and 1x1 up to \(maximumChannels) channels, OpenBLAS for the rest"
        }
        return "OpenBLAS"
    }

    /// Channel counts above this go to BLAS: the kernel sums a tile's whole depth (nine taps of
    /// every input channel) without blocking it, and at 512 channels its weights and input rows
    /// no longer stay in L2 (16x16 maps, 512 -> 512: 49 GFLOP/s against OpenBLAS's 72, measured).
    static let maximumChannels = 256

    static func applies(to g: Conv2dGeometry) -> Bool {
        (Conv2dShifted.applies(to: g) || g.isPlainProduct) && max(g.inChannels, g.outChannels) <= maximumChannels
    }

    /// The row stride for rows of `count` floats that the kernel reads: one 64-byte line more when
    /// `count` is a multiple of 128. Rows 128, 256 or 512 floats apart fall on 8, 4 or 2 of the 64
    /// L1 sets, and the kernel's fourteen rows then evict each other (256 channels: 2x slower,
    /// measured). 64-float rows use 16 sets, enough; padding them cost more in copies than it saved.
    static func leadingDimension(_ count: Int) -> Int {
        count % 128 == 0 ? count + 16 : count
    }

    /// Rows of a 1x1 convolution per chunk of work: sixteen AVX-512 register tiles (37-38 AVX2 ones).
    static let plainRowsPerChunk = 224

    /// Pixels per chunk of a 3x3 forward pass or input gradient: bands of whole image rows of one
    /// image, at least one row. Small enough that 64 threads have work at small's batch of 16 on
    /// 32 x 32 maps; a band of 256 pixels still fills the AVX-512 variant's 14-row tiles.
    static let pixelsPerBand = 256

    /// Image rows per band of a 3x3 forward pass or input gradient on `width`-pixel rows.
    static func rowsPerBand(width: Int) -> Int { max(1, pixelsPerBand / width) }

    /// out = conv(inp) + bias (out += that when `accumulate`); `weight` is PyTorch's [Co, Ci, k, k].
    /// Chunks on the workspace's threads: one per band of about `pixelsPerBand` pixels of an image
    /// (3x3, each band padded in its thread's scratch; so that many threads have work at a small
    /// batch) or per `plainRowsPerChunk` rows (1x1). Every output is computed by one chunk, by the
    /// same sums whatever the chunks.
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight original: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>, geometry g: Conv2dGeometry, accumulate: Bool, workspace: Workspace) {
        let (h, w, ci, co) = (g.height, g.width, g.inChannels, g.outChannels)
        let (ldIn, ldOut) = (leadingDimension(ci), leadingDimension(co))
        let kernels = workspace.kernels.cKernels
        // [k*k*Ci, Co] with rows ld(Co) apart.
        let weight = UnsafePointer(Conv2d.repackedWeight(original, g, workspace, rowStride: ldOut))
        if g.isPlainProduct {
            let input = strided(inp, rows: g.rows, columns: ci, into: .convColumns, workspace)
            workspace.pool.run(chunks: chunkCount(g.rows, plainRowsPerChunk)) { chunk, _ in
                let start = chunk * plainRowsPerChunk, rows = min(plainRowsPerChunk, g.rows - start)
                run(kernels, input: input + start * ldIn, inputStride: ldIn, weight: weight, weightStride: ldOut, shifts: [0],
                    depth: ci, columns: co, rows: rows, wideWidth: rows, width: rows, bias: bias,
                    output: out + start * co, accumulate: accumulate)
            }
            return
        }
        let shifts = tapShifts(g)
        let wp = w + 2, bandRows = rowsPerBand(width: w), bands = chunkCount(h, bandRows)
        workspace.pool.run(chunks: g.batch * bands) { chunk, slot in
            let b = chunk / bands, y0 = (chunk % bands) * bandRows, rows = min(bandRows, h - y0)
            let padded = workspace.scratch(for: slot).floats(.convColumns, ((rows + 2) * wp + 2) * ldIn)
            padBand(padded, inp + b * h * w * ci, height: h, width: w, channels: ci, rows: y0..<(y0 + rows))
            run(kernels, input: padded, inputStride: ldIn, weight: weight, weightStride: ldOut, shifts: shifts, depth: ci,
                columns: co, rows: rows * wp, wideWidth: wp, width: w, bias: bias, output: out + (b * h + y0) * w * co,
                accumulate: accumulate)
        }
    }

    /// dWeight += dL/dweight and, when dInput is non-nil, dInput = dL/dinp (+= when `accumulateInput`),
    /// from dOut = dL/dout; `weight` is PyTorch's [Co, Ci, k, k]. The bias gradient is the caller's.
    ///
    /// The weight gradient's depth (every pixel of the batch) is split into parts
    /// (DirectBackwardPlan; for 1x1, `partPixels` rows each), each summed from zero by its own
    /// chain, and the parts' sums are added in order: so the bits depend on the geometry only.
    /// Chunks on the workspace's threads: the input gradient's row bands and every part's row
    /// tiles (each tile sums its outputs over its part's depth in order, so it does not matter which
    /// thread runs it), a wave of groups of images at a time.
    static func backward(dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
                         dOut: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         geometry g: Conv2dGeometry, accumulateInput: Bool, workspace: Workspace,
                         imagesPerGroup groupOverride: Int? = nil, partPixels: Int = DirectBackwardPlan.partPixels) {
        let (h, w, ci, co) = (g.height, g.width, g.inChannels, g.outChannels)
        let (ldIn, ldOut) = (leadingDimension(ci), leadingDimension(co))
        let pool = workspace.pool, kernels = workspace.kernels.cKernels
        let dwr = workspace.zeroed(.convWeightGradient, g.weightCount)
        if g.isPlainProduct {
            // dW[ci, co] = sum over pixels of X[r, ci] dOut[r, co]; dX = dOut W with W [Co, Ci] as stored.
            let gradient = dInput == nil ? dOut : strided(dOut, rows: g.rows, columns: co, into: .convPaddedGradient, workspace)
            let transposed = dInput == nil ? weight : strided(weight, rows: co, columns: ci, workspace)
            let inputChunks = dInput == nil ? 0 : chunkCount(g.rows, plainRowsPerChunk)
            let parts = consecutiveRanges(covering: g.rows, size: partPixels)
            let sums = PartSums(parts: 0..<parts.count, weightCount: g.weightCount, first: dwr, workspace)
            sums.zero(pool)
            let jobs = parts.indices.map { p in
                WeightGradientJob(a: inp + parts[p].lowerBound * ci, aStride: ci, b: dOut + parts[p].lowerBound * co,
                                  bStride: co, rows: ci, columns: co, depth: parts[p].count, pixels: nil, output: sums[p])
            }
            withWeightGradientJobs(kernels, jobs, shifts: [0]) { jobs, tiles in
                pool.run(chunks: inputChunks + jobs.count * tiles) { chunk, _ in
                    guard chunk < inputChunks, let dInput else {
                        let tile = chunk - inputChunks
                        return runTile(kernels, jobs.baseAddress! + tile / tiles, tile % tiles)
                    }
                    let start = chunk * plainRowsPerChunk, rows = min(plainRowsPerChunk, g.rows - start)
                    run(kernels, input: gradient + start * ldOut, inputStride: ldOut, weight: transposed, weightStride: ldIn,
                        shifts: [0], depth: co, columns: ci, rows: rows, wideWidth: rows, width: rows, bias: nil,
                        output: dInput + start * ci, accumulate: accumulateInput)
                }
            }
            sums.addInOrder(pool)
            Conv2d.unpackAddWeightGradient(dWeight, dwr, g)
            return
        }
        // Images are padded one after another, P wide rows apart, input and output gradient alike.
        // dOut on wide rows (zeros in the two extra columns and in the border rows between images)
        // is the padded gradient one row and column on, so one product over a part's stacked rows gives
        // dW[tap] = sum over r of Xpad[r + shift(tap)]^T dOutWide[r] for the part.
        let plan = DirectBackwardPlan(geometry: g, inputStride: ldIn, outputStride: ldOut, imagesPerGroup: groupOverride,
                                      partPixels: partPixels)
        let wp = w + 2, stride = plan.rowsPerImage
        let bufferRows = plan.mostGroupsPerWave * plan.rowsPerGroup
        let paddedInput = workspace.floats(.convColumns, bufferRows * ldIn)
        let paddedGrad = workspace.floats(.convPaddedGradient, bufferRows * ldOut)
        let flipped = dInput == nil ? nil : UnsafePointer(Conv2d.flippedWeight(weight, g, workspace, rowStride: ldIn))
        let shifts = tapShifts(g)
        let bandRows = rowsPerBand(width: w), bands = chunkCount(h, bandRows)
        for wave in plan.waves {
            let images = plan.images(of: wave), first = images.lowerBound
            let sums = PartSums(parts: wave.parts, weightCount: g.weightCount, first: dwr, workspace)
            func offset(_ j: Int) -> Int { plan.firstRow(of: first + j, in: wave) }
            pool.run(chunks: 2 * images.count + sums.separate.count, label: "Conv2dDirect.backward padding") { chunk, _ in
                let j = chunk / 2
                if chunk >= 2 * images.count {
                    sums.zero(chunk - 2 * images.count)
                } else if chunk % 2 == 0 {
                    pad(paddedInput + offset(j) * ldIn, inp + (first + j) * h * w * ci, height: h, width: w, channels: ci)
                } else {
                    pad(paddedGrad + offset(j) * ldOut, dOut + (first + j) * h * w * co, height: h, width: w, channels: co)
                }
            }
            let jobs = wave.parts.map { p in
                let part = plan.parts[p], group = plan.groups[part.group]
                let start = plan.firstRow(of: group.lowerBound, in: wave) + part.rows.lowerBound * wp
                return WeightGradientJob(a: paddedInput + start * ldIn, aStride: ldIn, b: paddedGrad + (start + wp + 1) * ldOut,
                                         bStride: ldOut, rows: ci, columns: co,
                                         depth: (group.count - 1) * stride + part.rows.count * wp,
                                         pixels: PixelRows(length: w, period: wp, imageRows: part.rows.count, imagePeriod: stride),
                                         output: sums[p])
            }
            let inputChunks = dInput == nil ? 0 : images.count * bands
            withWeightGradientJobs(kernels, jobs, shifts: shifts) { jobs, tiles in
                pool.run(chunks: inputChunks + jobs.count * tiles) { chunk, _ in
                    guard chunk < inputChunks, let dInput, let flipped else {
                        let tile = chunk - inputChunks
                        return runTile(kernels, jobs.baseAddress! + tile / tiles, tile % tiles)
                    }
                    // dX[r] = sum over taps of dOutPadded[r + shift(8 - tap)] W[:, :, tap]: the same taps
                    // over the padded output gradient, with the flipped weight [tap', Co, Ci].
                    let j = chunk / bands, y0 = (chunk % bands) * bandRows, rows = min(bandRows, h - y0)
                    run(kernels, input: paddedGrad + (offset(j) + y0 * wp) * ldOut, inputStride: ldOut, weight: flipped,
                        weightStride: ldIn, shifts: shifts, depth: co, columns: ci, rows: rows * wp, wideWidth: wp,
                        width: w, bias: nil, output: dInput + ((first + j) * h + y0) * w * ci, accumulate: accumulateInput)
                }
            }
            sums.addInOrder(pool)
        }
        Conv2d.unpackAddWeightGradient(dWeight, dwr, g)
    }

    /// Chunks of at most `size` items that cover `count` items.
    static func chunkCount(_ count: Int, _ size: Int) -> Int {
        (count + size - 1) / size
    }

    /// Row offset of tap (ky, kx) in the padded image: ky*Wp + kx.
    static func tapShifts(_ g: Conv2dGeometry) -> [Int] {
        (0..<9).map { ($0 / 3) * (g.width + 2) + $0 % 3 }
    }

    /// Copies an image [H*W, C] into a zero-bordered one [(H+2)*Wp + 2] with rows ld(C) apart
    /// (as Conv2dShifted.pad; the ld - C floats at the end of each row are never read).
    static func pad(_ padded: UnsafeMutablePointer<Float>, _ image: UnsafePointer<Float>,
                    height: Int, width: Int, channels: Int) {
        let ld = leadingDimension(channels)
        if ld == channels {
            Conv2dShifted.pad(padded, image, height: height, width: width, channels: channels)
            return
        }
        let wp = width + 2
        VectorMath.zero(padded, count: (wp + 1) * ld)
        for y in 0..<height {
            let rowStart = padded + ((y + 1) * wp + 1) * ld
            if ld == channels {
                rowStart.update(from: image + y * width * channels, count: width * channels)
            } else {
                for x in 0..<width {
                    (rowStart + x * ld).update(from: image + (y * width + x) * channels, count: channels)
                }
            }
            VectorMath.zero(rowStart + width * ld, count: 2 * ld)
        }
        VectorMath.zero(padded + ((height + 1) * wp + 1) * ld, count: (wp + 1) * ld)
    }

    /// The part of the zero-bordered image (`pad`) that output rows `rows` read: padded rows
    /// rows.lowerBound ..< rows.upperBound + 2 (image rows one above to one below, zeros off the
    /// image), then two spare rows, so that the band's wide row r reads what row
    /// rows.lowerBound * Wp + r of the whole padded image holds.
    static func padBand(_ padded: UnsafeMutablePointer<Float>, _ image: UnsafePointer<Float>,
                        height: Int, width: Int, channels: Int, rows: Range<Int>) {
        let ld = leadingDimension(channels), wp = width + 2
        VectorMath.zero(padded, count: ld)  // the left border of the band's first row
        for (index, paddedRow) in (rows.lowerBound..<(rows.upperBound + 2)).enumerated() {
            let y = paddedRow - 1
            // Row `index` of the band starts one float row in: its left border is the previous
            // row's right border (both written as zeros here).
            let rowStart = padded + (index * wp + 1) * ld
            if y < 0 || y >= height {
                VectorMath.zero(rowStart, count: wp * ld)
                continue
            }
            if ld == channels {
                rowStart.update(from: image + y * width * channels, count: width * channels)
            } else {
                for x in 0..<width {
                    (rowStart + x * ld).update(from: image + (y * width + x) * channels, count: channels)
                }
            }
            VectorMath.zero(rowStart + width * ld, count: 2 * ld)
        }
        VectorMath.zero(padded + ((rows.count + 2) * wp + 1) * ld, count: ld)
    }

    /// `matrix` [rows, columns] with rows ld(columns) apart: itself when that is its own stride,
    /// else a copy in the workspace.
    static func strided(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int,
                        into slot: Workspace.Slot = .convStridedWeight, _ workspace: Workspace) -> UnsafePointer<Float> {
        let ld = leadingDimension(columns)
        if ld == columns { return matrix }
        let copy = workspace.floats(slot, rows * ld)
        for r in 0..<rows { (copy + r * ld).update(from: matrix + r * columns, count: columns) }
        return UnsafePointer(copy)
    }

    /// Where the rows that hold pixels lie in a weight-gradient product's depth (tap_gemm.h): runs
    /// of `length` rows, `period` apart, `imageRows` runs per image, images `imagePeriod` rows apart.
    struct PixelRows {
        var length: Int, period: Int, imageRows: Int, imagePeriod: Int
    }

    /// One weight-gradient product dW[tap] += A[shifted rows]^T B (see tap_gemm.h) before its shifts
    /// are known: the part of the depth from `a` and `b`, into `output`.
    struct WeightGradientJob {
        var a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int
        var rows: Int, columns: Int, depth: Int, pixels: PixelRows?
        var output: UnsafeMutablePointer<Float>
    }

    /// Runs `body` with the C jobs of `jobs` (all with `shifts`) and the number of row tiles each
    /// splits into (the same for all: it depends on `rows` only); `body` runs the tiles (`runTile`).
    private static func withWeightGradientJobs(_ kernels: scvae_kernels, _ jobs: [WeightGradientJob], shifts: [Int],
                                               _ body: (UnsafeBufferPointer<scvae_tap_gemm_transposed>, Int) -> Void) {
        shifts.withUnsafeBufferPointer { shiftPointer in
            let cJobs = jobs.map { job in
                scvae_tap_gemm_transposed(a: job.a, a_stride: job.aStride, b: job.b, b_stride: job.bStride,
                                          shifts: shiftPointer.baseAddress, taps: Int32(shifts.count), rows: Int32(job.rows),
                                          columns: Int32(job.columns), depth: job.depth, output: job.output,
                                          row_length: job.pixels?.length ?? 0, row_period: job.pixels?.period ?? 0,
                                          image_rows: job.pixels?.imageRows ?? 0, image_period: job.pixels?.imagePeriod ?? 0)
            }
            cJobs.withUnsafeBufferPointer { cJobs in
                guard let first = cJobs.baseAddress else { return }
                body(cJobs, scvae_tap_gemm_transposed_tiles(kernels, first))
            }
        }
    }

    private static func runTile(_ kernels: scvae_kernels, _ job: UnsafePointer<scvae_tap_gemm_transposed>, _ tile: Int) {
        scvae_tap_gemm_transposed_run_tile(kernels, job, tile)
    }

    private static func run(_ kernels: scvae_kernels, input: UnsafePointer<Float>, inputStride: Int,
                            weight: UnsafePointer<Float>, weightStride: Int, shifts: [Int], depth: Int, columns: Int,
                            rows: Int, wideWidth: Int, width: Int, bias: UnsafePointer<Float>?,
                            output: UnsafeMutablePointer<Float>, accumulate: Bool) {
        shifts.withUnsafeBufferPointer { shiftPointer in
            var job = scvae_tap_gemm(input: input, input_stride: inputStride, weight: weight, weight_stride: Int32(weightStride),
                                     shifts: shiftPointer.baseAddress, taps: Int32(shifts.count), depth: Int32(depth),
                                     columns: Int32(columns), rows: rows, wide_width: wideWidth, width: width, bias: bias,
                                     output: output, accumulate: accumulate)
            scvae_tap_gemm_run(kernels, &job)
        }
    }
}

extension Conv2dDirect {
    /// The sums of a run of a weight gradient's parts (DirectBackwardPlan): part 0 sums straight
    /// into the result, which the caller zeroes; every other part (`separate`) into a buffer of its
    /// own, zeroed by `zero`. `addInOrder` adds those to the result in part order, the same order
    /// whatever the threads.
    struct PartSums {
        let parts: Range<Int>
        let weightCount: Int
        let result: UnsafeMutablePointer<Float>
        private let buffer: UnsafeMutablePointer<Float>

        init(parts: Range<Int>, weightCount: Int, first result: UnsafeMutablePointer<Float>, _ workspace: Workspace) {
            self.parts = parts
            self.weightCount = weightCount
            self.result = result
            buffer = workspace.floats(.convPartSums, parts.count * weightCount)
        }

        /// The parts with a buffer of their own: all but part 0.
        var separate: Range<Int> { parts.clamped(to: 1..<max(1, parts.upperBound)) }

        /// Where part `p` sums to.
        subscript(p: Int) -> UnsafeMutablePointer<Float> {
            p == 0 ? result : buffer + (p - parts.lowerBound) * weightCount
        }

        /// Zeroes the sum of separate part `separate.lowerBound + index`.
        func zero(_ index: Int) {
            VectorMath.zero(self[separate.lowerBound + index], count: weightCount)
        }

        /// Zeroes every separate part's sum, on the pool.
        func zero(_ pool: ThreadPool) {
            pool.run(chunks: separate.count, label: "Conv2dDirect.backward part sums") { chunk, _ in zero(chunk) }
        }

        /// result += the sum of every separate part, in part order, on the pool in chunks of elements.
        func addInOrder(_ pool: ThreadPool) {
            guard !separate.isEmpty else { return }
            let size = ThreadPool.elementsPerChunk
            pool.run(chunks: Conv2dDirect.chunkCount(weightCount, size), label: "Conv2dDirect.backward part sums") { chunk, _ in
                let start = chunk * size, count = min(size, weightCount - start)
                for p in separate { VectorMath.add(self[p] + start, to: result + start, count: count) }
            }
        }
    }
}
