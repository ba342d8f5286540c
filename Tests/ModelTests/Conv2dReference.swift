@testable import Model
/// Naive direct convolution, the reference the fast kernels are tested against.
///
/// Legend: B = batch, H x W = input, OH x OW = output, Ci/Co = channels, k = kernel side.
/// Activations NHWC [B, H, W, Ci] -> [B, OH, OW, Co]; weight PyTorch [Co, Ci, k, k]; bias [Co].
/// Sums in Double so tests measure the fast kernel's rounding, not this one's.
public enum Conv2dReference {
    /// out = conv(inp, weight) + bias (overwrites out).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, geometry g: Conv2dGeometry) {
        let (oh, ow, k) = (g.outHeight, g.outWidth, g.kernel)
        for b in 0..<g.batch {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for co in 0..<g.outChannels {
                        var sum = Double(bias[co])
                        for ky in 0..<k {
                            let iy = oy * g.stride - g.padBefore + ky
                            if iy < 0 || iy >= g.height { continue }
                            for kx in 0..<k {
                                let ix = ox * g.stride - g.padBefore + kx
                                if ix < 0 || ix >= g.width { continue }
                                let pixel = ((b * g.height + iy) * g.width + ix) * g.inChannels
                                for ci in 0..<g.inChannels {
                                    sum += Double(inp[pixel + ci]) * Double(weight[((co * g.inChannels + ci) * k + ky) * k + kx])
                                }
                            }
                        }
                        out[((b * oh + oy) * ow + ox) * g.outChannels + co] = Float(sum)
                    }
                }
            }
        }
    }

    /// dInput +=, dWeight +=, dBias += the gradients of sum(dOut * conv(inp)).
    public static func backward(dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
                                dBias: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, geometry g: Conv2dGeometry) {
        let (oh, ow, k) = (g.outHeight, g.outWidth, g.kernel)
        var dw = [Double](repeating: 0, count: g.weightCount)
        var db = [Double](repeating: 0, count: g.outChannels)
        var dx = [Double](repeating: 0, count: g.inputCount)
        for b in 0..<g.batch {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for co in 0..<g.outChannels {
                        let grad = Double(dOut[((b * oh + oy) * ow + ox) * g.outChannels + co])
                        db[co] += grad
                        for ky in 0..<k {
                            let iy = oy * g.stride - g.padBefore + ky
                            if iy < 0 || iy >= g.height { continue }
                            for kx in 0..<k {
                                let ix = ox * g.stride - g.padBefore + kx
                                if ix < 0 || ix >= g.width { continue }
                                let pixel = ((b * g.height + iy) * g.width + ix) * g.inChannels
                                for ci in 0..<g.inChannels {
                                    let w = ((co * g.inChannels + ci) * k + ky) * k + kx
                                    dw[w] += grad * Double(inp[pixel + ci])
                                    dx[pixel + ci] += grad * Double(weight[w])
                                }
                            }
                        }
                    }
                }
            }
        }
        for i in 0..<g.weightCount { dWeight[i] += Float(dw[i]) }
        for i in 0..<g.outChannels { dBias[i] += Float(db[i]) }
        if let dInput { for i in 0..<g.inputCount { dInput[i] += Float(dx[i]) } }
    }
}
