@testable import Model
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The plain scalar GroupNorm (two-pass statistics, libm expf), kept beside the vectorised
/// kernel of GroupNorm.swift as the reference its tests compare with. Same contract, caches and
/// legend as `GroupNorm`.
enum GroupNormReference {
    static func forward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                        batch: Int, positions: Int, channels: Int, groups: Int, epsilon: Float, swish: Bool) {
        let perGroup = channels / groups
        let count = Double(positions * perGroup)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: channels) { channelSums in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * channels) { scaleShift in
            let scale = scaleShift.baseAddress!, shift = scale + channels
            for b in 0..<batch {
                let x = inp + b * positions * channels
                // Two passes (mean, then centred squares) for accuracy.
                channelSums.initialize(repeating: 0)
                for p in 0..<positions {
                    let row = x + p * channels
                    for c in 0..<channels { channelSums[c] += Double(row[c]) }
                }
                for g in 0..<groups {
                    var sum = 0.0
                    for c in (g * perGroup)..<((g + 1) * perGroup) { sum += channelSums[c] }
                    mean[b * groups + g] = Float(sum / count)
                }
                channelSums.initialize(repeating: 0)
                // `scale` briefly holds each channel's group mean.
                for c in 0..<channels { scale[c] = mean[b * groups + c / perGroup] }
                for p in 0..<positions {
                    let row = x + p * channels
                    for c in 0..<channels {
                        let d = Double(row[c] - scale[c])
                        channelSums[c] += d * d
                    }
                }
                for g in 0..<groups {
                    var sum = 0.0
                    for c in (g * perGroup)..<((g + 1) * perGroup) { sum += channelSums[c] }
                    rstd[b * groups + g] = Float(1 / (sum / count + Double(epsilon)).squareRoot())
                }
                for c in 0..<channels {
                    let g = b * groups + c / perGroup
                    scale[c] = rstd[g] * weight[c]
                    shift[c] = bias[c] - mean[g] * scale[c]
                }
                let y = out + b * positions * channels
                for p in 0..<positions {
                    let src = x + p * channels, dst = y + p * channels
                    if swish {
                        for c in 0..<channels {
                            let v = src[c] * scale[c] + shift[c]
                            dst[c] = v / (1 + expf(-v))
                        }
                    } else {
                        for c in 0..<channels { dst[c] = src[c] * scale[c] + shift[c] }
                    }
                }
            }
        }
        }
    }

    /// dInput +=, dWeight +=, dBias += from dOut; `inp`, `mean`, `rstd` as written by forward.
    /// `scratch` holds P*C floats: with swish fused, dy (the gradient at y) is computed once there
    /// instead of re-evaluating the sigmoid in the second pass.
    static func backward(dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                         dBias: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                         weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                         batch: Int, positions: Int, channels: Int, groups: Int, swish: Bool,
                         scratch: UnsafeMutablePointer<Float>) {
        let perGroup = channels / groups
        let count = Double(positions * perGroup)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * channels) { sums in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 5 * channels) { perChannel in
            let sumDy = sums.baseAddress!, sumDyXhat = sumDy + channels
            let channelMean = perChannel.baseAddress!, channelRstd = channelMean + channels
            let shiftDx = channelRstd + channels, slopeDx = shiftDx + channels, scaleDy = slopeDx + channels
            for b in 0..<batch {
                let x = inp + b * positions * channels
                let stats = b * groups
                for c in 0..<channels {
                    channelMean[c] = mean[stats + c / perGroup]
                    channelRstd[c] = rstd[stats + c / perGroup]
                }
                // dy is the gradient at y = xhat * gamma + beta (through swish when fused); it is
                // summed in the same pass that computes it.
                let dy: UnsafePointer<Float>
                for c in 0..<(2 * channels) { sums[c] = 0 }
                if swish {
                    let dOutSample = dOut + b * positions * channels
                    for p in 0..<positions {
                        let row = p * channels
                        for c in 0..<channels {
                            let xhat = (x[row + c] - channelMean[c]) * channelRstd[c]
                            let y = xhat * weight[c] + bias[c]
                            let sigmoid = 1 / (1 + expf(-y))
                            let g = dOutSample[row + c] * sigmoid * (1 + y * (1 - sigmoid))
                            scratch[row + c] = g
                            sumDy[c] += Double(g)
                            sumDyXhat[c] += Double(g * xhat)
                        }
                    }
                    dy = UnsafePointer(scratch)
                } else {
                    dy = dOut + b * positions * channels
                    for p in 0..<positions {
                        let row = p * channels
                        for c in 0..<channels {
                            let g = dy[row + c]
                            let xhat = (x[row + c] - channelMean[c]) * channelRstd[c]
                            sumDy[c] += Double(g)
                            sumDyXhat[c] += Double(g * xhat)
                        }
                    }
                }
                for c in 0..<channels {
                    dBias[c] += Float(sumDy[c])
                    dWeight[c] += Float(sumDyXhat[c])
                }
                // dxhat = dy * gamma; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
                for g in 0..<groups {
                    var meanDxhat = 0.0, meanDxhatXhat = 0.0
                    for c in (g * perGroup)..<((g + 1) * perGroup) {
                        meanDxhat += Double(weight[c]) * sumDy[c]
                        meanDxhatXhat += Double(weight[c]) * sumDyXhat[c]
                    }
                    meanDxhat /= count
                    meanDxhatXhat /= count
                    for c in (g * perGroup)..<((g + 1) * perGroup) {
                        let r = channelRstd[c]
                        scaleDy[c] = r * weight[c]
                        // dx = scaleDy * dy - r * meanDxhat - r * xhat * meanDxhatXhat, with xhat = (x - m) r.
                        slopeDx[c] = r * r * Float(meanDxhatXhat)
                        shiftDx[c] = r * Float(meanDxhat) - channelMean[c] * slopeDx[c]
                    }
                }
                let dx = dInput + b * positions * channels
                for p in 0..<positions {
                    let row = p * channels
                    for c in 0..<channels {
                        dx[row + c] += scaleDy[c] * dy[row + c] - slopeDx[c] * x[row + c] - shiftDx[c]
                    }
                }
            }
        }
        }
    }
}
