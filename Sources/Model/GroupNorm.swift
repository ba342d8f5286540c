import CKernels

/// GroupNorm (affine), optionally fused with the swish that follows it in ResnetBlock and norm_out.
///
/// Legend: B = batch, P = positions (H*W), C = channels, G = groups, Cg = C/G channels per group,
/// J = ceil(C/8) chunks of eight channels. inp/out NHWC [B, P, C]; weight (gamma), bias (beta) [C];
/// mean, rstd caches [B, G].
/// y = (x - mean) * rstd * gamma + beta; out = y, or swish(y) = y * sigmoid(y) when fused.
///
/// Each image is read twice forward (statistics, then normalise with swish) and twice backward
/// (gradient at y with its sums, then the input gradient), each pass in bands of
/// `positionsPerBand` positions that run as chunks on the pool. Statistics are one pass of per-channel
/// sums of x and x^2 in Double: x^2 of a float is exact in Double, so E[x^2] - mean^2 loses
/// nothing that matters at float precision. Channels run eight at a time in SIMD lanes, with
/// VectorMath's exp for the sigmoid; rows run in blocks of four so that the Double
/// accumulators stay in registers. Every sum has a fixed order (within a band in position order,
/// then the bands in band order): results are deterministic and independent of the threads.
/// With a kernel variant other than the fallback (KernelVariant.swift) the per-image passes run in
/// Sources/CKernels (sixteen or eight channels per register, the same maths and summation order);
/// `kernels: .fallback` keeps the Swift lanes.
/// The tests hold it against a plain scalar version (Tests/ModelTests/GroupNormReference.swift).
enum GroupNorm {
    /// Rows summed into the same accumulators before they go back to memory.
    static let rowBlock = 4

    /// Positions per band: the pool's chunks are bands of one image, so that many threads share a
    /// batch of a few large images. Each band's sums start from zero and an image's bands are
    /// added in band order, so the results depend on the band size, never on the threads.
    static let positionsPerBand = 256

    static func forward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                        batch: Int, positions: Int, channels: Int, groups: Int, epsilon: Float, swish: Bool,
                        kernels variant: KernelVariant = .selected, pool: ThreadPool = .serial,
                        positionsPerBand: Int = positionsPerBand) {
        let chunks = (channels + 7) / 8
        let count = Double(positions * (channels / groups))
        let bands = consecutiveRanges(covering: positions, size: max(1, positionsPerBand))
        let items = batch * bands.count
        // moments[item]: the band's sums of x, then of x^2 (chunks vectors each).
        var moments = [Double8](repeating: .zero, count: 2 * chunks * items)
        moments.withUnsafeMutableBufferPointer { moments in
            pool.run(chunks: items, label: "GroupNorm.forward statistics") { item, _ in
                let b = item / bands.count, rows = bands[item % bands.count]
                let block = UnsafeMutableBufferPointer(rebasing: moments[(2 * chunks * item)..<(2 * chunks * (item + 1))])
                let sums = block.baseAddress!, squares = sums + chunks
                let x = inp + (b * positions + rows.lowerBound) * channels
                if let kernels = variant.kernels {
                    withLanes(block) { lane in
                        scvae_column_moments(kernels, lane(sums), lane(squares), x, rows.count, channels, Int32(channels))
                    }
                } else {
                    accumulateMoments(x, positions: rows.count, channels: channels, sums: sums, squares: squares)
                }
            }
            // coefficients[b]: image b's scale, then shift, per channel.
            var coefficients = [Float8](repeating: .zero, count: 2 * chunks * batch)
            coefficients.withUnsafeMutableBufferPointer { coefficients in
                for b in 0..<batch {
                    let sums = moments.baseAddress! + 2 * chunks * b * bands.count
                    addBands(sums, count: bands.count, vectors: 2 * chunks)
                    let squares = sums + chunks, stats = b * groups
                    for g in 0..<groups {
                        let (sum, square) = groupTotals(sums, squares, group: g, of: groups, channels: channels)
                        let groupMean = sum / count
                        let variance = max(square / count - groupMean * groupMean, 0)
                        mean[stats + g] = Float(groupMean)
                        rstd[stats + g] = Float(1 / (variance + Double(epsilon)).squareRoot())
                    }
                    // out = x * scale + shift, per channel; lanes past C stay 0.
                    let scale = coefficients.baseAddress! + 2 * chunks * b, shift = scale + chunks
                    fillChunks(scale, channels: channels) { c in rstd[stats + c / (channels / groups)] * weight[c] }
                    fillChunks(shift, channels: channels) { c in
                        bias[c] - mean[stats + c / (channels / groups)] * scale[c / 8][c % 8]
                    }
                }
                pool.run(chunks: items, label: "GroupNorm.forward") { item, _ in
                    let b = item / bands.count, rows = bands[item % bands.count]
                    let block = UnsafeMutableBufferPointer(rebasing: coefficients[(2 * chunks * b)..<(2 * chunks * (b + 1))])
                    let scale = block.baseAddress!, shift = scale + chunks
                    let offset = (b * positions + rows.lowerBound) * channels
                    if let kernels = variant.kernels {
                        withLanes(block) { lane in
                            scvae_group_norm_apply(kernels, out + offset, inp + offset, lane(scale), lane(shift), rows.count,
                                                   Int32(channels), swish)
                        }
                    } else {
                        normalise(out + offset, inp + offset, scale: scale, shift: shift, positions: rows.count,
                                  channels: channels, swish: swish)
                    }
                }
            }
        }
    }

    /// vectors[0..<vectors] = the sum of the `count` blocks of `vectors` from `vectors`, added in
    /// block order (an image's bands, into its first band's block).
    static func addBands(_ blocks: UnsafeMutablePointer<Double8>, count: Int, vectors: Int) {
        for band in 1..<max(1, count) {
            for v in 0..<vectors { blocks[v] += blocks[band * vectors + v] }
        }
    }

    /// dInput +=, dWeight +=, dBias += from dOut; `inp`, `mean`, `rstd` as written by forward.
    /// With `accumulateInput` false, dInput = instead (callers need not zero it first).
    /// `scratch` holds B*P*C floats: with swish fused, dy (the gradient at y) is computed once
    /// there instead of re-evaluating the sigmoid in the second pass. Unused without swish.
    /// Both passes run in bands of each image on the pool; each image's sums (its bands' added in
    /// band order) give its share of dWeight and dBias, which are added in image order afterwards,
    /// as without threads.
    static func backward(dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                         dBias: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                         weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                         batch: Int, positions: Int, channels: Int, groups: Int, swish: Bool,
                         accumulateInput: Bool = true, scratch: UnsafeMutablePointer<Float>,
                         kernels variant: KernelVariant = .selected, pool: ThreadPool = .serial,
                         positionsPerBand: Int = positionsPerBand) {
        let perGroup = channels / groups
        let chunks = (channels + 7) / 8
        let count = Double(positions * perGroup)
        let bands = consecutiveRanges(covering: positions, size: max(1, positionsPerBand))
        let items = batch * bands.count
        // sums[item]: the band's sums of dy, then of dy * xhat.
        var sums = [Double8](repeating: .zero, count: 2 * chunks * items)
        sums.withUnsafeMutableBufferPointer { sums in
            pool.run(chunks: items, label: "GroupNorm.backward sums") { item, _ in
                withUnsafeTemporaryAllocation(of: Float8.self, capacity: 4 * chunks) { perChannel in
                    let b = item / bands.count, rows = bands[item % bands.count], stats = b * groups
                    let channelMean = perChannel.baseAddress!, channelRstd = channelMean + chunks
                    let gamma = channelRstd + chunks, beta = gamma + chunks
                    fillChunks(gamma, channels: channels) { weight[$0] }
                    fillChunks(beta, channels: channels) { bias[$0] }
                    fillChunks(channelMean, channels: channels) { mean[stats + $0 / perGroup] }
                    fillChunks(channelRstd, channels: channels) { rstd[stats + $0 / perGroup] }
                    let block = UnsafeMutableBufferPointer(rebasing: sums[(2 * chunks * item)..<(2 * chunks * (item + 1))])
                    let sumDy = block.baseAddress!, sumDyXhat = sumDy + chunks
                    let offset = (b * positions + rows.lowerBound) * channels
                    // dy is the gradient at y = xhat * gamma + beta (through swish when fused); it is
                    // summed in the same pass that computes it.
                    if let kernels = variant.kernels {
                        withLanes(block) { sum in
                            withLanes(perChannel) { lane in
                                scvae_group_norm_backward_sums(kernels, sum(sumDy), sum(sumDyXhat), scratch + offset,
                                                               dOut + offset, inp + offset, lane(channelMean),
                                                               lane(channelRstd), lane(gamma), lane(beta), rows.count,
                                                               Int32(channels), swish)
                            }
                        }
                    } else {
                        gradientSums(sumDy, sumDyXhat, scratch: scratch + offset, dOut: dOut + offset, inp + offset,
                                     mean: channelMean, rstd: channelRstd, gamma: gamma, beta: beta,
                                     positions: rows.count, channels: channels, swish: swish)
                    }
                }
            }
            // coefficients[b]: image b's scaleDy, slopeDx, shiftDx; partials[b]: its dBias, then dWeight.
            var coefficients = [Float8](repeating: .zero, count: 3 * chunks * batch)
            var partials = [Float](repeating: 0, count: 2 * batch * channels)
            coefficients.withUnsafeMutableBufferPointer { coefficients in
                for b in 0..<batch {
                    let sumDy = sums.baseAddress! + 2 * chunks * b * bands.count, sumDyXhat = sumDy + chunks
                    addBands(sumDy, count: bands.count, vectors: 2 * chunks)
                    for c in 0..<channels {
                        partials[2 * b * channels + c] = Float(sumDy[c / 8][c % 8])
                        partials[(2 * b + 1) * channels + c] = Float(sumDyXhat[c / 8][c % 8])
                    }
                    // dxhat = dy * gamma; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
                    // = scaleDy * dy - slopeDx * x - shiftDx, with xhat = (x - m) r.
                    let scaleDy = coefficients.baseAddress! + 3 * chunks * b, slopeDx = scaleDy + chunks
                    let shiftDx = slopeDx + chunks, stats = b * groups
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
                }
                pool.run(chunks: items, label: "GroupNorm.backward") { item, _ in
                    let b = item / bands.count, rows = bands[item % bands.count]
                    let block = UnsafeMutableBufferPointer(rebasing: coefficients[(3 * chunks * b)..<(3 * chunks * (b + 1))])
                    let scaleDy = block.baseAddress!, slopeDx = scaleDy + chunks, shiftDx = slopeDx + chunks
                    let offset = (b * positions + rows.lowerBound) * channels
                    let dy = swish ? UnsafePointer(scratch + offset) : dOut + offset
                    if let kernels = variant.kernels {
                        withLanes(block) { lane in
                            scvae_group_norm_backward_apply(kernels, dInput + offset, dy, inp + offset, lane(scaleDy),
                                                            lane(slopeDx), lane(shiftDx), rows.count, Int32(channels),
                                                            accumulateInput)
                        }
                    } else {
                        applyInputGradient(dInput + offset, dy: dy, inp + offset, scaleDy: scaleDy, slopeDx: slopeDx,
                                           shiftDx: shiftDx, positions: rows.count, channels: channels,
                                           accumulate: accumulateInput)
                    }
                }
            }
            for b in 0..<batch {
                for c in 0..<channels {
                    dBias[c] += partials[2 * b * channels + c]
                    dWeight[c] += partials[(2 * b + 1) * channels + c]
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
