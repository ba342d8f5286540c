import CKernels

/// GroupNorm (affine), optionally fused with the swish that follows it in ResnetBlock and norm_out.
///
/// Legend: B = batch, P = positions (H*W), C = channels, G = groups, Cg = C/G channels per group,
/// J = ceil(C/8) chunks of eight channels. inp/out NHWC [B, P, C]; weight (gamma), bias (beta) [C];
/// mean, rstd caches [B, G].
/// y = (x - mean) * rstd * gamma + beta; out = y, or swish(y) = y * sigmoid(y) when fused.
///
/// Each image is read twice forward (statistics, then normalise with swish) and twice backward
/// (gradient at y with its sums, then the input gradient). Statistics are one pass of per-channel
/// sums of x and x^2 in Double: x^2 of a float is exact in Double, so E[x^2] - mean^2 loses
/// nothing that matters at float precision. Channels run eight at a time in SIMD lanes, with
/// VectorMath's exp for the sigmoid; rows run in blocks of four so that the Double
/// accumulators stay in registers. Every sum has a fixed order: results are deterministic.
/// With a kernel variant other than the fallback (KernelVariant.swift) the per-image passes run in
/// Sources/CKernels (sixteen or eight channels per register, the same maths and summation order);
/// `kernels: .fallback` keeps the Swift lanes.
/// The tests hold it against a plain scalar version (Tests/ModelTests/GroupNormReference.swift).
enum GroupNorm {
    /// Rows summed into the same accumulators before they go back to memory.
    static let rowBlock = 4

    static func forward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                        batch: Int, positions: Int, channels: Int, groups: Int, epsilon: Float, swish: Bool,
                        kernels variant: KernelVariant = .selected, pool: ThreadPool = .serial) {
        let chunks = (channels + 7) / 8
        let count = Double(positions * (channels / groups))
        // One chunk per image: its statistics and output are its own.
        pool.run(chunks: batch) { b, _ in
        withUnsafeTemporaryAllocation(of: Double8.self, capacity: 2 * chunks) { moments in
        withUnsafeTemporaryAllocation(of: Float8.self, capacity: 2 * chunks) { coefficients in
            let sums = moments.baseAddress!, squares = sums + chunks
            let scale = coefficients.baseAddress!, shift = scale + chunks
            let x = inp + b * positions * channels
            if let kernels = variant.kernels {
                withLanes(moments) { lane in
                    scvae_column_moments(kernels, lane(sums), lane(squares), x, positions, channels, Int32(channels))
                }
            } else {
                accumulateMoments(x, positions: positions, channels: channels, sums: sums, squares: squares)
            }
            let stats = b * groups
            for g in 0..<groups {
                let (sum, square) = groupTotals(sums, squares, group: g, of: groups, channels: channels)
                let groupMean = sum / count
                let variance = max(square / count - groupMean * groupMean, 0)
                mean[stats + g] = Float(groupMean)
                rstd[stats + g] = Float(1 / (variance + Double(epsilon)).squareRoot())
            }
            // out = x * scale + shift, per channel; lanes past C stay 0.
            fillChunks(scale, channels: channels) { c in rstd[stats + c / (channels / groups)] * weight[c] }
            fillChunks(shift, channels: channels) { c in
                bias[c] - mean[stats + c / (channels / groups)] * scale[c / 8][c % 8]
            }
            let y = out + b * positions * channels
            if let kernels = variant.kernels {
                withLanes(coefficients) { lane in
                    scvae_group_norm_apply(kernels, y, x, lane(scale), lane(shift), positions, Int32(channels), swish)
                }
            } else {
                normalise(y, x, scale: scale, shift: shift, positions: positions, channels: channels, swish: swish)
            }
        }
        }
        }
    }

    /// dInput +=, dWeight +=, dBias += from dOut; `inp`, `mean`, `rstd` as written by forward.
    /// With `accumulateInput` false, dInput = instead (callers need not zero it first).
    /// `scratch` holds P*C floats for each of min(pool threads, batch) slots: with swish fused, dy
    /// (the gradient at y) is computed once there instead of re-evaluating the sigmoid in the
    /// second pass.
    /// Images run as chunks on the pool; each leaves its share of dWeight and dBias in a partial
    /// that is added in image order afterwards, as without threads.
    static func backward(dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                         dBias: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                         weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                         batch: Int, positions: Int, channels: Int, groups: Int, swish: Bool,
                         accumulateInput: Bool = true, scratch: UnsafeMutablePointer<Float>,
                         kernels variant: KernelVariant = .selected, pool: ThreadPool = .serial) {
        let perGroup = channels / groups
        let chunks = (channels + 7) / 8
        let count = Double(positions * perGroup)
        // partials[b] = image b's dBias (C floats), then its dWeight (C floats).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * batch * channels) { partials in
        pool.run(chunks: batch) { b, slot in
        withUnsafeTemporaryAllocation(of: Double8.self, capacity: 2 * chunks) { moments in
        withUnsafeTemporaryAllocation(of: Float8.self, capacity: 7 * chunks) { perChannel in
            let sumDy = moments.baseAddress!, sumDyXhat = sumDy + chunks
            let channelMean = perChannel.baseAddress!, channelRstd = channelMean + chunks
            let gamma = channelRstd + chunks, beta = gamma + chunks
            let scaleDy = beta + chunks, slopeDx = scaleDy + chunks, shiftDx = slopeDx + chunks
            let imageScratch = scratch + slot * positions * channels
            fillChunks(gamma, channels: channels) { weight[$0] }
            fillChunks(beta, channels: channels) { bias[$0] }
            let x = inp + b * positions * channels
            let stats = b * groups
            fillChunks(channelMean, channels: channels) { mean[stats + $0 / perGroup] }
            fillChunks(channelRstd, channels: channels) { rstd[stats + $0 / perGroup] }
            let dOutSample = dOut + b * positions * channels
            let dy = swish ? UnsafePointer(imageScratch) : dOutSample
            // dy is the gradient at y = xhat * gamma + beta (through swish when fused); it is
            // summed in the same pass that computes it.
            if let kernels = variant.kernels {
                withLanes(moments) { sum in
                    withLanes(perChannel) { lane in
                        scvae_group_norm_backward_sums(kernels, sum(sumDy), sum(sumDyXhat), imageScratch, dOutSample, x,
                                                       lane(channelMean), lane(channelRstd), lane(gamma), lane(beta),
                                                       positions, Int32(channels), swish)
                    }
                }
            } else {
                gradientSums(sumDy, sumDyXhat, scratch: imageScratch, dOut: dOutSample, x, mean: channelMean,
                             rstd: channelRstd, gamma: gamma, beta: beta, positions: positions, channels: channels,
                             swish: swish)
            }
            let partial = partials.baseAddress! + 2 * b * channels
            for c in 0..<channels {
                partial[c] = Float(sumDy[c / 8][c % 8])
                partial[channels + c] = Float(sumDyXhat[c / 8][c % 8])
            }
            // dxhat = dy * gamma; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
            // = scaleDy * dy - slopeDx * x - shiftDx, with xhat = (x - m) r.
            for g in 0..<groups {
                var meanDxhat = 0.0, meanDxhatXhat = 0.0
                for c in (g * perGroup)..<((g + 1) * perGroup) {
                    meanDxhat += Double(weight[c]) * sumDy[c / 8][c % 8]
                    meanDxhatXhat += Double(weight[c]) * sumDyXhat[c / 8][c % 8]
                }
                meanDxhat /= count
                meanDxhatXhat /= count
                let r = rstd[stats + g], m = mean[stats + g]
                for c in (g * perGroup)..<((g + 1) * perGroup) {
                    let slope = r * r * Float(meanDxhatXhat)
                    scaleDy[c / 8][c % 8] = r * weight[c]
                    slopeDx[c / 8][c % 8] = slope
                    shiftDx[c / 8][c % 8] = r * Float(meanDxhat) - m * slope
                }
            }
            let dx = dInput + b * positions * channels
            if let kernels = variant.kernels {
                withLanes(perChannel) { lane in
                    scvae_group_norm_backward_apply(kernels, dx, dy, x, lane(scaleDy), lane(slopeDx), lane(shiftDx), positions,
                                                    Int32(channels), accumulateInput)
                }
            } else {
                applyInputGradient(dx, dy: dy, x, scaleDy: scaleDy, slopeDx: slopeDx, shiftDx: shiftDx,
                                   positions: positions, channels: channels, accumulate: accumulateInput)
            }
        }
        }
        }
        for b in 0..<batch {
            let partial = partials.baseAddress! + 2 * b * channels
            for c in 0..<channels {
                dBias[c] += partial[c]
                dWeight[c] += partial[channels + c]
            }
        }
        }
    }

    // MARK: - Pieces

    /// sums[j], squares[j] = per-channel sums of x and x^2 over the P rows of one image, in Double.
    static func accumulateMoments(_ x: UnsafePointer<Float>, positions: Int, channels: Int,
                                  sums: UnsafeMutablePointer<Double8>, squares: UnsafeMutablePointer<Double8>) {
        let chunks = (channels + 7) / 8
        for j in 0..<chunks {
            sums[j] = .zero
            squares[j] = .zero
        }
        var p = 0
        while p < positions {
            let rows = min(rowBlock, positions - p)
            for j in 0..<chunks {
                let lanes = min(8, channels - 8 * j)
                var sum = sums[j], square = squares[j]
                for row in p..<(p + rows) {
                    let v = Double8(VectorMath.load(x + row * channels + 8 * j, count: lanes))
                    sum += v
                    square += v * v
                }
                sums[j] = sum
                squares[j] = square
            }
            p += rows
        }
    }

    /// The totals of group `group`'s channels, summed in channel order.
    static func groupTotals(_ sums: UnsafePointer<Double8>, _ squares: UnsafePointer<Double8>,
                            group: Int, of groups: Int, channels: Int) -> (sum: Double, square: Double) {
        let perGroup = channels / groups
        var sum = 0.0, square = 0.0
        for c in (group * perGroup)..<((group + 1) * perGroup) {
            sum += sums[c / 8][c % 8]
            square += squares[c / 8][c % 8]
        }
        return (sum, square)
    }

    /// y = x * scale + shift per channel, then swish when asked (the Swift lanes of scvae_group_norm_apply).
    static func normalise(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, scale: UnsafePointer<Float8>,
                          shift: UnsafePointer<Float8>, positions: Int, channels: Int, swish: Bool) {
        for p in 0..<positions {
            let source = x + p * channels, destination = y + p * channels
            for j in 0..<((channels + 7) / 8) {
                let lanes = min(8, channels - 8 * j)
                let v = VectorMath.load(source + 8 * j, count: lanes) * scale[j] + shift[j]
                let result = swish ? v / (Float8(repeating: 1) + VectorMath.exp(-v)) : v
                VectorMath.store(result, to: destination + 8 * j, count: lanes)
            }
        }
    }

    /// sumDy[j], sumDyXhat[j] = per-channel sums of g and g * xhat over the P rows of one image, in
    /// Double, where g is the gradient at y = xhat * gamma + beta (through swish when fused, then
    /// also written to `scratch`). The Swift lanes of scvae_group_norm_backward_sums.
    static func gradientSums(_ sumDy: UnsafeMutablePointer<Double8>, _ sumDyXhat: UnsafeMutablePointer<Double8>,
                             scratch: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                             mean: UnsafePointer<Float8>, rstd: UnsafePointer<Float8>, gamma: UnsafePointer<Float8>,
                             beta: UnsafePointer<Float8>, positions: Int, channels: Int, swish: Bool) {
        let chunks = (channels + 7) / 8
        for j in 0..<chunks {
            sumDy[j] = .zero
            sumDyXhat[j] = .zero
        }
        var p = 0
        while p < positions {
            let rows = min(rowBlock, positions - p)
            for j in 0..<chunks {
                let lanes = min(8, channels - 8 * j)
                var dySum = sumDy[j], dyXhatSum = sumDyXhat[j]
                for row in p..<(p + rows) {
                    let offset = row * channels + 8 * j
                    let xhat = (VectorMath.load(x + offset, count: lanes) - mean[j]) * rstd[j]
                    var g = VectorMath.load(dOut + offset, count: lanes)
                    if swish {
                        let y = xhat * gamma[j] + beta[j]
                        let sigmoid = VectorMath.sigmoid(y)
                        g = g * sigmoid * (Float8(repeating: 1) + y * (Float8(repeating: 1) - sigmoid))
                        VectorMath.store(g, to: scratch + offset, count: lanes)
                    }
                    dySum += Double8(g)
                    dyXhatSum += Double8(g * xhat)
                }
                sumDy[j] = dySum
                sumDyXhat[j] = dyXhatSum
            }
            p += rows
        }
    }

    /// dx (+)= scaleDy * dy - slopeDx * x - shiftDx per channel (the Swift lanes of
    /// scvae_group_norm_backward_apply).
    static func applyInputGradient(_ dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                   scaleDy: UnsafePointer<Float8>, slopeDx: UnsafePointer<Float8>,
                                   shiftDx: UnsafePointer<Float8>, positions: Int, channels: Int, accumulate: Bool) {
        for p in 0..<positions {
            for j in 0..<((channels + 7) / 8) {
                let lanes = min(8, channels - 8 * j)
                let offset = p * channels + 8 * j
                let update = scaleDy[j] * VectorMath.load(dy + offset, count: lanes)
                    - slopeDx[j] * VectorMath.load(x + offset, count: lanes) - shiftDx[j]
                let result = accumulate ? VectorMath.load(dx + offset, count: lanes) + update : update
                VectorMath.store(result, to: dx + offset, count: lanes)
            }
        }
    }

    /// Runs `body` with a block of SIMD vectors seen as its scalars, for the C passes: `lane(v)` is
    /// where vector v of the block starts (lanes past the last channel included).
    @inline(__always)
    static func withLanes<Vector: SIMD, R>(_ block: UnsafeMutableBufferPointer<Vector>,
                                           _ body: ((UnsafeMutablePointer<Vector>) -> UnsafeMutablePointer<Vector.Scalar>) -> R) -> R {
        let base = block.baseAddress!
        return base.withMemoryRebound(to: Vector.Scalar.self, capacity: Vector.scalarCount * block.count) { scalars in
            body { scalars + Vector.scalarCount * ($0 - base) }
        }
    }

    /// vectors[c / 8][c % 8] = value(c) for every channel; lanes past the last channel are 0.
    @inline(__always)
    static func fillChunks(_ vectors: UnsafeMutablePointer<Float8>, channels: Int, _ value: (Int) -> Float) {
        for j in 0..<((channels + 7) / 8) { vectors[j] = .zero }
        for c in 0..<channels { vectors[c / 8][c % 8] = value(c) }
    }
}
