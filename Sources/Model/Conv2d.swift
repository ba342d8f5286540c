import CKernels

/// 2-D convolution on NHWC activations via im2col and BLAS sgemm.
///
/// Legend: B = batch, H x W = input, OH x OW = output, Ci/Co = channels, k = kernel side,
/// R = B*OH*OW output pixels (GEMM rows), P = k*k*Ci patch width (GEMM depth).
/// Activations NHWC: inp [B, H, W, Ci], out [B, OH, OW, Co]. Weight PyTorch [Co, Ci, k, k], bias [Co].
///
/// The weight is repacked per call to Wr [k, k, Ci, Co] = [P, Co] so that an im2col row, whose
/// columns run (ky, kx, ci), copies whole contiguous Ci runs out of NHWC memory. The patch matrix is
/// built in row chunks so its scratch stays a few MiB whatever the image size.
enum Conv2d {
    /// How a convolution is computed. `automatic` takes the tap-GEMM kernel where it applies and
    /// the workspace's kernel variant runs it (Conv2dDirect.swift), else BLAS by shape (`blas`;
    /// docs/decisions.md, "Convolution kernels"). `direct` runs the workspace's variant, never the fallback.
    enum Method: Sendable { case automatic, blas, direct, im2col, shifted }

    /// Maps with at least this many pixels use shifted GEMMs for 3x3 stride-1 convolutions on BLAS.
    static let shiftedMinimumPixels = 64 * 64

    static func resolve(_ method: Method, _ g: Conv2dGeometry, kernels: KernelVariant = .selected) -> Method {
        switch method {
        case .automatic:
            return kernels.runsOwnKernels && Conv2dDirect.applies(to: g) ? .direct : resolve(.blas, g)
        case .blas:
            return Conv2dShifted.applies(to: g) && g.height * g.width >= shiftedMinimumPixels ? .shifted : .im2col
        case .direct:
            precondition(Conv2dShifted.applies(to: g) || g.isPlainProduct, "the tap-GEMM kernel needs a 3x3 same or a 1x1 convolution")
            precondition(kernels.runsOwnKernels, "the tap-GEMM kernel does not run with the \(kernels) kernels")
            return .direct
        case .shifted:
            precondition(Conv2dShifted.applies(to: g), "shifted GEMMs need a 3x3 stride-1 pad-1 convolution")
            return .shifted
        case .im2col:
            return .im2col
        }
    }

    /// Floats of im2col scratch per chunk (1 MiB): small enough that the patch rows are still in
    /// the L2 cache when the GEMM reads them.
    static let columnBudget = 1 << 18

    /// out = conv(inp) + bias, or out += conv(inp) + bias when `accumulate` (used for residual sums).
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                        geometry g: Conv2dGeometry, accumulate: Bool = false, workspace: Workspace,
                        rowsPerChunk chunkOverride: Int? = nil, method: Method = .automatic) {
        let co = g.outChannels
        let resolved = resolve(method, g, kernels: workspace.kernels)
        if resolved == .direct {
            Conv2dDirect.forward(out: out, inp: inp, weight: weight, bias: bias, geometry: g, accumulate: accumulate,
                                 workspace: workspace)
            return
        }
        let wr = repackedWeight(weight, g, workspace)
        if resolved == .shifted {
            Conv2dShifted.forward(out: out, inp: inp, wr: wr, bias: bias, geometry: g, accumulate: accumulate, workspace: workspace)
            return
        }
        for r in 0..<g.rows {
            let row = out + r * co
            if accumulate {
                for j in 0..<co { row[j] += bias[j] }
            } else {
                row.update(from: bias, count: co)
            }
        }
        if g.isPlainProduct {
            for rows in imageChunks(g, size: g.rows) {
                BLAS.sgemm(m: rows.count, n: co, k: g.inChannels, a: inp + rows.lowerBound * g.inChannels, lda: g.inChannels,
                           b: wr, ldb: co, beta: 1, c: out + rows.lowerBound * co, ldc: co)
            }
            return
        }
        let width = g.patchWidth
        let chunk = chunkOverride ?? rowsPerChunk(g)
        let columns = workspace.floats(.convColumns, chunk * width)
        for rows in imageChunks(g, size: chunk) {
            im2col(columns, inp, g, rows: rows)
            BLAS.sgemm(m: rows.count, n: co, k: width, a: columns, lda: width,
                       b: wr, ldb: co, beta: 1, c: out + rows.lowerBound * co, ldc: co)
        }
    }

    /// dInput += dL/dinp (skipped when nil; dInput = dL/dinp when `accumulateInput` is false, so
    /// that callers need not zero it first), dWeight += dL/dweight, dBias += dL/dbias, given
    /// dOut = dL/dout.
    static func backward(dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
                         dBias: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         geometry g: Conv2dGeometry, accumulateInput: Bool = true, workspace: Workspace,
                         rowsPerChunk chunkOverride: Int? = nil, method: Method = .automatic) {
        let resolved = resolve(method, g, kernels: workspace.kernels)
        if resolved == .direct {
            accumulateBiasGradient(dBias, dOut, rows: g.rows, channels: g.outChannels, kernels: workspace.kernels,
                                   pool: workspace.pool)
            Conv2dDirect.backward(dInput: dInput, dWeight: dWeight, dOut: dOut, inp: inp, weight: weight, geometry: g,
                                  accumulateInput: accumulateInput, workspace: workspace)
            return
        }
        let inputBeta: Float = accumulateInput ? 1 : 0
        let co = g.outChannels
        accumulateBiasGradient(dBias, dOut, rows: g.rows, channels: co, kernels: workspace.kernels)
        let wr = repackedWeight(weight, g, workspace)
        let width = g.patchWidth
        let dwr = workspace.zeroed(.convWeightGradient, width * co)
        if resolved == .shifted {
            Conv2dShifted.backward(dInput: dInput, dWr: dwr, dOut: dOut, inp: inp, wr: wr, geometry: g,
                                   accumulateInput: accumulateInput, workspace: workspace)
        } else if g.isPlainProduct {
            BLAS.sgemm(transA: true, m: width, n: co, k: g.rows, a: inp, lda: width,
                       b: dOut, ldb: co, beta: 1, c: dwr, ldc: co)
            if let dInput {
                for rows in imageChunks(g, size: g.rows) {
                    BLAS.sgemm(transB: true, m: rows.count, n: width, k: co, a: dOut + rows.lowerBound * co, lda: co,
                               b: wr, ldb: co, beta: inputBeta, c: dInput + rows.lowerBound * width, ldc: width)
                }
            }
        } else if let dInput, Conv2dShifted.applies(to: g) {
            // The input gradient of a same-size 3x3 conv is itself a same-size 3x3 conv of dOut
            // (flipped taps, in and out swapped): an im2col copy and a GEMM that accumulates
            // straight into dInput, instead of a patch-gradient matrix and a scatter-add.
            let chunk = chunkOverride ?? rowsPerChunk(g)
            let columns = workspace.floats(.convColumns, chunk * width)
            for rows in imageChunks(g, size: chunk) {
                im2col(columns, inp, g, rows: rows)
                BLAS.sgemm(transA: true, m: width, n: co, k: rows.count, a: columns, lda: width,
                           b: dOut + rows.lowerBound * co, ldb: co, beta: 1, c: dwr, ldc: co)
            }
            var t = g
            (t.inChannels, t.outChannels) = (co, g.inChannels)
            let flipped = flippedWeight(weight, g, workspace)
            let transposedChunk = chunkOverride ?? rowsPerChunk(t)
            let transposedColumns = workspace.floats(.convColumns, transposedChunk * t.patchWidth)
            for rows in imageChunks(t, size: transposedChunk) {
                im2col(transposedColumns, dOut, t, rows: rows)
                BLAS.sgemm(m: rows.count, n: t.outChannels, k: t.patchWidth, a: transposedColumns, lda: t.patchWidth,
                           b: flipped, ldb: t.outChannels, beta: inputBeta, c: dInput + rows.lowerBound * t.outChannels,
                           ldc: t.outChannels)
            }
        } else {
            // Patches overlap (stride 2 downsample): col2im always adds, onto zeros if asked to overwrite.
            if let dInput, !accumulateInput { dInput.update(repeating: 0, count: g.inputCount) }
            let chunk = chunkOverride ?? rowsPerChunk(g)
            let columns = workspace.floats(.convColumns, chunk * width)
            for rows in imageChunks(g, size: chunk) {
                im2col(columns, inp, g, rows: rows)
                BLAS.sgemm(transA: true, m: width, n: co, k: rows.count, a: columns, lda: width,
                           b: dOut + rows.lowerBound * co, ldb: co, beta: 1, c: dwr, ldc: co)
                if let dInput {
                    // The patch rows are no longer needed: reuse them for the patch gradients.
                    BLAS.sgemm(transB: true, m: rows.count, n: width, k: co, a: dOut + rows.lowerBound * co, lda: co,
                               b: wr, ldb: co, beta: 0, c: columns, ldc: width)
                    col2imAdd(dInput, columns, g, rows: rows)
                }
            }
        }
        unpackAddWeightGradient(dWeight, dwr, g)
    }

    // MARK: - Pieces

    static func rowsPerChunk(_ g: Conv2dGeometry) -> Int {
        max(1, min(g.rows, columnBudget / g.patchWidth))
    }

    /// The output rows in chunks of at most `size` rows that never cross from one image into the
    /// next, so that every GEMM over them has the same shape whatever the batch. OpenBLAS's AVX2
    /// (Haswell, Zen) sgemm rounds a row differently with the number of rows in the call, so a
    /// chunk that spans images would make an image's output depend on the batch it is in
    /// (docs/model.md, "One image, the same bits in any batch").
    static func imageChunks(_ g: Conv2dGeometry, size: Int) -> [Range<Int>] {
        let perImage = g.outHeight * g.outWidth, size = max(1, min(size, perImage))
        var chunks: [Range<Int>] = []
        chunks.reserveCapacity(g.batch * ((perImage + size - 1) / size))
        for image in 0..<g.batch {
            let end = (image + 1) * perImage
            for start in stride(from: image * perImage, to: end, by: size) { chunks.append(start..<min(start + size, end)) }
        }
        return chunks
    }

    /// Wr[(ky*k + kx)*Ci + ci, co] = W[co, ci, ky, kx].
    /// Rows are `rowStride` floats apart (Co unless a kernel asks for padded rows; the floats past
    /// Co in each row are not written).
    static func repackedWeight(_ weight: UnsafePointer<Float>, _ g: Conv2dGeometry,
                               _ workspace: Workspace, rowStride: Int? = nil) -> UnsafeMutablePointer<Float> {
        let (k, ci, co) = (g.kernel, g.inChannels, g.outChannels)
        let ld = rowStride ?? co
        let wr = workspace.floats(.convWeight, k * k * ci * ld)
        // Written in order: the scattered side is the read.
        for tap in 0..<(k * k) {
            for i in 0..<ci {
                for o in 0..<co {
                    wr[(tap * ci + i) * ld + o] = weight[(o * ci + i) * k * k + tap]
                }
            }
        }
        return wr
    }

    /// Wf[(tap'*Co + co), ci] = W[co, ci, tap] with tap' = k*k - 1 - tap: the weight, as [P', Ci],
    /// of the convolution of dOut (Co channels) that gives the input gradient of a same-size conv.
    /// Rows are `rowStride` floats apart (Ci unless a kernel asks for padded rows).
    static func flippedWeight(_ weight: UnsafePointer<Float>, _ g: Conv2dGeometry,
                              _ workspace: Workspace, rowStride: Int? = nil) -> UnsafeMutablePointer<Float> {
        let (taps, ci, co) = (g.kernel * g.kernel, g.inChannels, g.outChannels)
        let ld = rowStride ?? ci
        let wf = workspace.floats(.convFlippedWeight, taps * co * ld)
        for flippedTap in 0..<taps {
            for o in 0..<co {
                for i in 0..<ci {
                    wf[(flippedTap * co + o) * ld + i] = weight[(o * ci + i) * taps + taps - 1 - flippedTap]
                }
            }
        }
        return wf
    }

    /// dW[co, ci, ky, kx] += dWr[(ky*k + kx)*Ci + ci, co].
    static func unpackAddWeightGradient(_ dWeight: UnsafeMutablePointer<Float>, _ dwr: UnsafePointer<Float>,
                                        _ g: Conv2dGeometry) {
        let (k, ci, co) = (g.kernel, g.inChannels, g.outChannels)
        for o in 0..<co {
            for i in 0..<ci {
                for tap in 0..<(k * k) {
                    dWeight[(o * ci + i) * k * k + tap] += dwr[(tap * ci + i) * co + o]
                }
            }
        }
    }

    /// dBias[c] += sum over rows of dOut[r, c]; summed in Double in row order (deterministic),
    /// eight channels per SIMD lane group, rows in blocks so that the sums stay in registers.
    static func accumulateBiasGradient(_ dBias: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>,
                                       rows: Int, channels: Int, kernels variant: KernelVariant = .selected,
                                       pool: ThreadPool = .serial) {
        if let kernels = variant.kernels {
            // The same sums, eight or sixteen channels per register (Sources/CKernels), a chunk of
            // channels per pool task (a channel's sum does not depend on the others).
            let channelsPerChunk = 16
            withUnsafeTemporaryAllocation(of: Double.self, capacity: channels) { sums in
                pool.run(chunks: Conv2dDirect.chunkCount(channels, channelsPerChunk)) { chunk, _ in
                    let first = chunk * channelsPerChunk
                    scvae_column_moments(kernels, sums.baseAddress! + first, nil, dOut + first, rows, channels,
                                         Int32(min(channelsPerChunk, channels - first)))
                }
                for c in 0..<channels { dBias[c] += Float(sums[c]) }
            }
            return
        }
        let chunks = (channels + 7) / 8
        let rowBlock = 8
        withUnsafeTemporaryAllocation(of: Double8.self, capacity: chunks) { sums in
            sums.initialize(repeating: .zero)
            var start = 0
            while start < rows {
                let end = min(start + rowBlock, rows)
                for j in 0..<chunks {
                    let lanes = min(8, channels - 8 * j)
                    var sum = sums[j]
                    for r in start..<end { sum += Double8(VectorMath.load(dOut + r * channels + 8 * j, count: lanes)) }
                    sums[j] = sum
                }
                start = end
            }
            for c in 0..<channels { dBias[c] += Float(sums[c / 8][c % 8]) }
        }
    }
}
