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

    /// Wide rows per chunk of a 3x3 forward pass or input gradient (whole image rows of one
    /// image, at least one).
    static let wideRowsPerBand = 1024

    /// out = conv(inp) + bias (out += that when `accumulate`); `weight` is PyTorch's [Co, Ci, k, k].
    /// Chunks on the workspace's threads: one per band of `wideRowsPerBand` wide rows of an image
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
        let wp = w + 2, bandRows = max(1, wideRowsPerBand / wp), bands = chunkCount(h, bandRows)
        workspace.pool.run(chunks: g.batch * bands) { chunk, slot in
            let b = chunk / bands, y0 = (chunk % bands) * bandRows, rows = min(bandRows, h - y0)
            let padded = workspace.scratch(for: slot).floats(.convColumns, ((rows + 2) * wp + 2) * ldIn)
            padBand(padded, inp + b * h * w * ci, height: h, width: w, channels: ci, rows: y0..<(y0 + rows))
            run(kernels, input: padded, inputStride: ldIn, weight: weight, weightStride: ldOut, shifts: shifts, depth: ci,
                columns: co, rows: rows * wp, wideWidth: wp, width: w, bias: bias, output: out + (b * h + y0) * w * co,
                accumulate: accumulate)
        }
    }

    /// Floats per stacked padded buffer of the backward pass (1 MiB, so that a group stays in L2
    /// between its padding and its products): small maps are stacked many images to a product,
    /// large ones go one image at a time.
    static let stackBudget = 1 << 18

    /// dWeight += dL/dweight and, when dInput is non-nil, dInput = dL/dinp (+= when `accumulateInput`),
    /// from dOut = dL/dout; `weight` is PyTorch's [Co, Ci, k, k]. The bias gradient is the caller's.
    ///
    /// Chunks on the workspace's threads: the weight gradient's row tiles (every tile sums its
    /// outputs over the whole depth in order, so it does not matter which thread runs it) and the
    /// input gradient's row bands. Groups of images run one after another, as without threads.
    static func backward(dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
                         dOut: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         geometry g: Conv2dGeometry, accumulateInput: Bool, workspace: Workspace,
                         imagesPerGroup groupOverride: Int? = nil) {
        let (h, w, ci, co) = (g.height, g.width, g.inChannels, g.outChannels)
        let (ldIn, ldOut) = (leadingDimension(ci), leadingDimension(co))
        let pool = workspace.pool, kernels = workspace.kernels.cKernels
        let dwr = workspace.zeroed(.convWeightGradient, g.weightCount)
        if g.isPlainProduct {
            // dW[ci, co] = sum over pixels of X[r, ci] dOut[r, co]; dX = dOut W with W [Co, Ci] as stored.
            let gradient = dInput == nil ? dOut : strided(dOut, rows: g.rows, columns: co, into: .convPaddedGradient, workspace)
            let transposed = dInput == nil ? weight : strided(weight, rows: co, columns: ci, workspace)
            let inputChunks = dInput == nil ? 0 : chunkCount(g.rows, plainRowsPerChunk)
            withWeightGradientJob(kernels, a: inp, aStride: ci, b: dOut, bStride: co, shifts: [0], rows: ci, columns: co,
                                  depth: g.rows, pixels: nil, output: dwr) { job, tiles in
                pool.run(chunks: inputChunks + tiles) { chunk, _ in
                    guard chunk < inputChunks, let dInput else { return runTile(kernels, job, chunk - inputChunks) }
                    let start = chunk * plainRowsPerChunk, rows = min(plainRowsPerChunk, g.rows - start)
                    run(kernels, input: gradient + start * ldOut, inputStride: ldOut, weight: transposed, weightStride: ldIn,
                        shifts: [0], depth: co, columns: ci, rows: rows, wideWidth: rows, width: rows, bias: nil,
                        output: dInput + start * ci, accumulate: accumulateInput)
                }
            }
            Conv2d.unpackAddWeightGradient(dWeight, dwr, g)
            return
        }
        // Images are padded one after another, P wide rows apart, input and output gradient alike.
        // dOut on wide rows (zeros in the two extra columns and in the border rows between images)
        // is the padded gradient one row and column on, so one product over the stacked rows gives
        // dW[tap] = sum over r of Xpad[r + shift(tap)]^T dOutWide[r] for the whole group.
        let wp = w + 2, stride = (h + 2) * wp
        let group = max(1, min(g.batch, groupOverride ?? stackBudget / (stride * max(ldIn, ldOut))))
        let paddedInput = workspace.floats(.convColumns, (group * stride + 2) * ldIn)
        let paddedGrad = workspace.floats(.convPaddedGradient, (group * stride + 2) * ldOut)
        let flipped = dInput == nil ? nil : UnsafePointer(Conv2d.flippedWeight(weight, g, workspace, rowStride: ldIn))
        let shifts = tapShifts(g)
        let bandRows = max(1, wideRowsPerBand / wp), bands = chunkCount(h, bandRows)
        var first = 0
        while first < g.batch {
            let count = min(group, g.batch - first)
            pool.run(chunks: 2 * count, label: "Conv2dDirect.backward padding") { chunk, _ in
                let j = chunk / 2
                if chunk % 2 == 0 {
                    pad(paddedInput + j * stride * ldIn, inp + (first + j) * h * w * ci, height: h, width: w, channels: ci)
                } else {
                    pad(paddedGrad + j * stride * ldOut, dOut + (first + j) * h * w * co, height: h, width: w, channels: co)
                }
            }
            let inputChunks = dInput == nil ? 0 : count * bands
            withWeightGradientJob(kernels, a: paddedInput, aStride: ldIn, b: paddedGrad + (wp + 1) * ldOut, bStride: ldOut,
                                  shifts: shifts, rows: ci, columns: co, depth: (count - 1) * stride + h * wp,
                                  pixels: PixelRows(length: w, period: wp, imageRows: h, imagePeriod: stride),
                                  output: dwr) { job, tiles in
                pool.run(chunks: inputChunks + tiles) { chunk, _ in
                    guard chunk < inputChunks, let dInput, let flipped else { return runTile(kernels, job, chunk - inputChunks) }
                    // dX[r] = sum over taps of dOutPadded[r + shift(8 - tap)] W[:, :, tap]: the same taps
                    // over the padded output gradient, with the flipped weight [tap', Co, Ci].
                    let j = chunk / bands, y0 = (chunk % bands) * bandRows, rows = min(bandRows, h - y0)
                    run(kernels, input: paddedGrad + (j * stride + y0 * wp) * ldOut, inputStride: ldOut, weight: flipped,
                        weightStride: ldIn, shifts: shifts, depth: co, columns: ci, rows: rows * wp, wideWidth: wp,
                        width: w, bias: nil, output: dInput + ((first + j) * h + y0) * w * ci, accumulate: accumulateInput)
                }
            }
            first += count
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

    /// Runs `body` with the weight-gradient product dW[tap] += A[shifted rows]^T B (see tap_gemm.h)
    /// and its number of row tiles; `body` runs the tiles (`runTile`). `pixels` says which depth
    /// rows hold pixels (the others are zeros in B); nil when every row does.
    private static func withWeightGradientJob(_ kernels: scvae_kernels, a: UnsafePointer<Float>, aStride: Int,
                                              b: UnsafePointer<Float>, bStride: Int, shifts: [Int], rows: Int,
                                              columns: Int, depth: Int, pixels: PixelRows?,
                                              output: UnsafeMutablePointer<Float>,
                                              _ body: (UnsafePointer<scvae_tap_gemm_transposed>, Int) -> Void) {
        shifts.withUnsafeBufferPointer { shiftPointer in
            var job = scvae_tap_gemm_transposed(a: a, a_stride: aStride, b: b, b_stride: bStride, shifts: shiftPointer.baseAddress,
                                                taps: Int32(shifts.count), rows: Int32(rows), columns: Int32(columns),
                                                depth: depth, output: output, row_length: pixels?.length ?? 0,
                                                row_period: pixels?.period ?? 0, image_rows: pixels?.imageRows ?? 0,
                                                image_period: pixels?.imagePeriod ?? 0)
            withUnsafePointer(to: &job) { body($0, scvae_tap_gemm_transposed_tiles(kernels, $0)) }
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
