/// The patch matrix of Conv2d and its adjoint.
///
/// Legend as in Conv2d.swift: R = B*OH*OW output pixels, P = k*k*Ci patch width; a patch row's
/// columns run (ky, kx, ci). For one ky, the kx taps that fall inside the image read adjacent
/// input pixels, i.e. one contiguous run of NHWC memory, so a row is k runs (plus zeros where
/// the patch reaches into padding) rather than k*k separate copies.
extension Conv2d {
    /// The taps kx in `valid` of output column `ox` fall inside the image (ix = ox*stride - padBefore + kx).
    @inline(__always)
    static func validTaps(_ ox: Int, _ g: Conv2dGeometry) -> Range<Int> {
        let first = ox * g.stride - g.padBefore
        let lower = min(max(0, -first), g.kernel)
        return lower..<max(lower, min(g.kernel, g.width - first))
    }

    /// Fills columns[r - rows.lowerBound, :] with the (ky, kx, ci) patch of output pixel r; zeros
    /// where the patch reaches into padding.
    static func im2col(_ columns: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                       _ g: Conv2dGeometry, rows: Range<Int>) {
        let (oh, ow, k, ci) = (g.outHeight, g.outWidth, g.kernel, g.inChannels)
        let width = g.patchWidth
        let tapRun = k * ci
        for r in rows {
            let b = r / (oh * ow)
            let oy = (r / ow) % oh
            let ox = r % ow
            let valid = validTaps(ox, g)
            let ixFirst = ox * g.stride - g.padBefore
            var dst = columns + (r - rows.lowerBound) * width
            for ky in 0..<k {
                let iy = oy * g.stride - g.padBefore + ky
                if iy < 0 || iy >= g.height || valid.isEmpty {
                    VectorMath.zero(dst, count: tapRun)
                } else {
                    VectorMath.zero(dst, count: valid.lowerBound * ci)
                    let source = inp + ((b * g.height + iy) * g.width + ixFirst + valid.lowerBound) * ci
                    (dst + valid.lowerBound * ci).update(from: source, count: valid.count * ci)
                    VectorMath.zero(dst + valid.upperBound * ci, count: (k - valid.upperBound) * ci)
                }
                dst += tapRun
            }
        }
    }

    /// The adjoint of im2col: adds every patch gradient back onto the input pixels it came from.
    static func col2imAdd(_ dInput: UnsafeMutablePointer<Float>, _ columns: UnsafePointer<Float>,
                          _ g: Conv2dGeometry, rows: Range<Int>) {
        let (oh, ow, k, ci) = (g.outHeight, g.outWidth, g.kernel, g.inChannels)
        let width = g.patchWidth
        for r in rows {
            let b = r / (oh * ow)
            let oy = (r / ow) % oh
            let ox = r % ow
            let valid = validTaps(ox, g)
            let ixFirst = ox * g.stride - g.padBefore
            var src = columns + (r - rows.lowerBound) * width
            for ky in 0..<k {
                let iy = oy * g.stride - g.padBefore + ky
                if iy >= 0 && iy < g.height && !valid.isEmpty {
                    // Taps of one ky touch distinct pixels, so the run is one elementwise add.
                    let destination = dInput + ((b * g.height + iy) * g.width + ixFirst + valid.lowerBound) * ci
                    VectorMath.add(src + valid.lowerBound * ci, to: destination, count: valid.count * ci)
                }
                src += k * ci
            }
        }
    }
}
