/// 3x3 stride-1 pad-1 convolution as nine shifted GEMMs ("implicit GEMM"), no im2col matrix.
///
/// Legend: H x W = map, Hp = H+2, Wp = W+2 (zero-padded), Ci/Co = channels, tap = ky*3 + kx.
/// Per image the input is copied once into Xpad [Hp*Wp + 2, Ci] (zero border, two spare rows).
/// Output pixels are computed on "wide" rows r = y*Wp + x (x < Wp; the two extra columns are
/// discarded), because then the input pixel under tap (ky, kx) is simply row r + ky*Wp + kx of
/// Xpad: each tap is one GEMM over a contiguous block of rows, accumulating into the same
/// output block, which stays in cache across the nine taps (row blocks of `blockRows`).
/// docs/decisions.md: this beats im2col on 64x64 maps; im2col stays better on small maps.
enum Conv2dShifted {
    static let blockRows = 1024

    static func applies(to g: Conv2dGeometry) -> Bool {
        g.kernel == 3 && g.stride == 1 && g.padBefore == 1 && g.padAfter == 1
    }

    /// Copies image rows into a zero-bordered padded buffer [Hp*Wp + 2, channels]; only the
    /// border is zeroed (the right border of one row and the left of the next are adjacent).
    static func pad(_ padded: UnsafeMutablePointer<Float>, _ image: UnsafePointer<Float>,
                    height: Int, width: Int, channels: Int) {
        let wp = width + 2
        VectorMath.zero(padded, count: (wp + 1) * channels)
        for y in 0..<height {
            let rowStart = padded + ((y + 1) * wp + 1) * channels
            rowStart.update(from: image + y * width * channels, count: width * channels)
            VectorMath.zero(rowStart + width * channels, count: 2 * channels)
        }
        VectorMath.zero(padded + ((height + 1) * wp + 1) * channels, count: (wp + 1) * channels)
    }

    /// out = conv(inp) + bias (or out += that when `accumulate`); `wr` is the repacked [9, Ci, Co] weight.
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, wr: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>, geometry g: Conv2dGeometry, accumulate: Bool, workspace: Workspace) {
        let (h, w, ci, co) = (g.height, g.width, g.inChannels, g.outChannels)
        let wp = w + 2
        let wideRows = h * wp
        let padded = workspace.floats(.convColumns, ((h + 2) * wp + 2) * ci)
        let wide = workspace.floats(.convWide, wideRows * co)
        for b in 0..<g.batch {
            pad(padded, inp + b * h * w * ci, height: h, width: w, channels: ci)
            var start = 0
            while start < wideRows {
                let count = min(blockRows, wideRows - start)
                for r in start..<(start + count) { (wide + r * co).update(from: bias, count: co) }
                for tap in 0..<9 {
                    let shift = (tap / 3) * wp + tap % 3
                    BLAS.sgemm(m: count, n: co, k: ci, a: padded + (start + shift) * ci, lda: ci,
                               b: wr + tap * ci * co, ldb: co, beta: 1, c: wide + start * co, ldc: co)
                }
                start += count
            }
            let image = out + b * h * w * co
            for y in 0..<h {
                let src = wide + y * wp * co, dst = image + y * w * co
                if accumulate {
                    for i in 0..<(w * co) { dst[i] += src[i] }
                } else {
                    dst.update(from: src, count: w * co)
                }
            }
        }
    }

    /// dInput += (when non-nil; = when not `accumulateInput`), dWr += (repacked [9, Ci, Co]); the
    /// bias gradient is the caller's.
    static func backward(dInput: UnsafeMutablePointer<Float>?, dWr: UnsafeMutablePointer<Float>,
                         dOut: UnsafePointer<Float>, inp: UnsafePointer<Float>, wr: UnsafePointer<Float>,
                         geometry g: Conv2dGeometry, accumulateInput: Bool = true, workspace: Workspace) {
        let (h, w, ci, co) = (g.height, g.width, g.inChannels, g.outChannels)
        let wp = w + 2
        let wideRows = h * wp
        let padded = workspace.floats(.convColumns, ((h + 2) * wp + 2) * ci)
        let paddedGrad = workspace.floats(.convPaddedGradient, ((h + 2) * wp + 2) * co)
        let wideGrad = workspace.floats(.convWide, wideRows * ci)
        for b in 0..<g.batch {
            pad(padded, inp + b * h * w * ci, height: h, width: w, channels: ci)
            pad(paddedGrad, dOut + b * h * w * co, height: h, width: w, channels: co)
            // dOut on wide rows with zeros in the two extra columns is paddedGrad shifted by one row and column.
            let dOutWide = paddedGrad + (wp + 1) * co
            var start = 0
            while start < wideRows {
                let count = min(blockRows, wideRows - start)
                for tap in 0..<9 {
                    let shift = (tap / 3) * wp + tap % 3
                    // dWr[tap] += Xpad[r + shift]^T dOutWide[r].
                    BLAS.sgemm(transA: true, m: ci, n: co, k: count, a: padded + (start + shift) * ci, lda: ci,
                               b: dOutWide + start * co, ldb: co, beta: 1, c: dWr + tap * ci * co, ldc: co)
                }
                if dInput != nil {
                    // dX[r] = sum over taps of dOutPadded[r + (2-ky)*Wp + (2-kx)] Wr[tap]^T.
                    for tap in 0..<9 {
                        let shift = (2 - tap / 3) * wp + (2 - tap % 3)
                        BLAS.sgemm(transB: true, m: count, n: ci, k: co, a: paddedGrad + (start + shift) * co, lda: co,
                                   b: wr + tap * ci * co, ldb: co, beta: tap == 0 ? 0 : 1, c: wideGrad + start * ci, ldc: ci)
                    }
                }
                start += count
            }
            if let dInput {
                let image = dInput + b * h * w * ci
                for y in 0..<h {
                    let src = wideGrad + y * wp * ci, dst = image + y * w * ci
                    if accumulateInput {
                        VectorMath.add(src, to: dst, count: w * ci)
                    } else {
                        dst.update(from: src, count: w * ci)
                    }
                }
            }
        }
    }
}
