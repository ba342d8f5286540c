import Testing
@testable import Model

/// The im2col + sgemm convolution against the naive direct reference, in every variant the model uses.
@Suite struct Conv2dTests {
    static let cases: [(String, Conv2dGeometry, Int?)] = [
        ("3x3 same, odd map, batch 2", .same3x3(batch: 2, height: 7, width: 5, inChannels: 3, outChannels: 5), nil),
        ("3x3 same, chunked rows", .same3x3(batch: 3, height: 6, width: 6, inChannels: 4, outChannels: 6), 7),
        ("1x1", .pointwise(batch: 3, height: 4, width: 6, inChannels: 6, outChannels: 4), nil),
        ("downsample 8x8", .downsample(batch: 2, height: 8, width: 8, channels: 5), nil),
        ("downsample odd 7x9, chunked", .downsample(batch: 2, height: 7, width: 9, channels: 3), 5),
        ("3x3 stride 2 symmetric pad", Conv2dGeometry(batch: 1, height: 6, width: 5, inChannels: 2, outChannels: 3,
                                                      kernel: 3, stride: 2, padBefore: 1, padAfter: 1), nil),
    ]

    /// `automatic` takes the tap-GEMM kernel where it runs; `blas` keeps the BLAS paths tested everywhere.
    static let methods: [Conv2d.Method] = [.automatic, .blas]

    @Test(arguments: 0..<cases.count, methods)
    func forwardMatchesReference(caseIndex: Int, method: Conv2d.Method) {
        let (name, g, chunk) = Self.cases[caseIndex]
        var random = KernelRandom(seed: UInt64(caseIndex + 1))
        let input = random.array(g.inputCount), weight = random.array(g.weightCount), bias = random.array(g.outChannels)
        var expected = [Float](repeating: 0, count: g.outputCount)
        Conv2dReference.forward(out: &expected, inp: input, weight: weight, bias: bias, geometry: g)
        let workspace = Workspace()
        var fast = [Float](repeating: 0, count: g.outputCount)
        Conv2d.forward(out: &fast, inp: input, weight: weight, bias: bias, geometry: g, workspace: workspace, rowsPerChunk: chunk,
                       method: method)
        let diff = maxAbsDifference(fast, expected)
        #expect(diff < 1e-4, "\(name) \(g) \(method): max diff \(diff); first \(Array(fast.prefix(4))) vs \(Array(expected.prefix(4)))")
        // accumulate: out += conv + bias.
        var accumulated = random.array(g.outputCount)
        let before = accumulated
        Conv2d.forward(out: &accumulated, inp: input, weight: weight, bias: bias, geometry: g, accumulate: true,
                       workspace: workspace, rowsPerChunk: chunk, method: method)
        let sum = zip(before, expected).map { $0 + $1 }
        #expect(maxAbsDifference(accumulated, sum) < 1e-4, "\(name): accumulate")
    }

    @Test(arguments: 0..<cases.count, methods)
    func backwardMatchesReference(caseIndex: Int, method: Conv2d.Method) {
        let (name, g, chunk) = Self.cases[caseIndex]
        var random = KernelRandom(seed: UInt64(100 + caseIndex))
        let input = random.array(g.inputCount), weight = random.array(g.weightCount)
        let dOut = random.array(g.outputCount)
        // Start from non-zero gradients: backward must accumulate.
        let dInput0 = random.array(g.inputCount), dWeight0 = random.array(g.weightCount), dBias0 = random.array(g.outChannels)
        var (dInputRef, dWeightRef, dBiasRef) = (dInput0, dWeight0, dBias0)
        Conv2dReference.backward(dInput: &dInputRef, dWeight: &dWeightRef, dBias: &dBiasRef, dOut: dOut,
                                 inp: input, weight: weight, geometry: g)
        var (dInput, dWeight, dBias) = (dInput0, dWeight0, dBias0)
        Conv2d.backward(dInput: &dInput, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, weight: weight,
                        geometry: g, workspace: Workspace(), rowsPerChunk: chunk, method: method)
        let diffs = [maxAbsDifference(dInput, dInputRef), maxAbsDifference(dWeight, dWeightRef), maxAbsDifference(dBias, dBiasRef)]
        #expect(diffs.allSatisfy { $0 < 1e-4 },
                "\(name) \(g) \(method): max diff dInput/dWeight/dBias \(diffs); dWeight first \(Array(dWeight.prefix(4))) vs \(Array(dWeightRef.prefix(4)))")
    }

    static let shiftedCases: [Conv2dGeometry] = [
        .same3x3(batch: 2, height: 7, width: 5, inChannels: 3, outChannels: 5),
        .same3x3(batch: 2, height: 33, width: 33, inChannels: 3, outChannels: 4),   // more wide rows than one block
        .same3x3(batch: 1, height: 1, width: 1, inChannels: 2, outChannels: 2),
    ]

    /// The shifted-GEMM path (used automatically on large maps) against the reference, forced on small ones.
    @Test(arguments: 0..<shiftedCases.count)
    func shiftedMatchesReference(caseIndex: Int) {
        var random = KernelRandom(seed: UInt64(200 + caseIndex))
        Self.expectMatchesReference(Self.shiftedCases[caseIndex], method: .shifted, random: &random)
    }

    /// Forward, accumulate, and every gradient of one method against the reference; returns the
    /// reference gradients (dInput, dWeight) with the inputs, for further checks.
    @discardableResult
    static func expectMatchesReference(_ g: Conv2dGeometry, method: Conv2d.Method, kernels: KernelVariant = .selected,
                                       random: inout KernelRandom)
        -> (input: [Float], weight: [Float], dOut: [Float], start: ([Float], [Float]), reference: ([Float], [Float])) {
        let input = random.array(g.inputCount), weight = random.array(g.weightCount), bias = random.array(g.outChannels)
        var expected = [Float](repeating: 0, count: g.outputCount)
        Conv2dReference.forward(out: &expected, inp: input, weight: weight, bias: bias, geometry: g)
        let workspace = Workspace(kernels: kernels)
        var fast = random.array(g.outputCount)
        Conv2d.forward(out: &fast, inp: input, weight: weight, bias: bias, geometry: g, workspace: workspace, method: method)
        #expect(maxAbsDifference(fast, expected) < 1e-4, "\(g) \(method) forward: first \(Array(fast.prefix(4))) vs \(Array(expected.prefix(4)))")
        var accumulated = random.array(g.outputCount)
        let before = accumulated
        Conv2d.forward(out: &accumulated, inp: input, weight: weight, bias: bias, geometry: g, accumulate: true,
                       workspace: workspace, method: method)
        #expect(maxAbsDifference(accumulated, zip(before, expected).map { $0 + $1 }) < 1e-4, "\(g) \(method) accumulate")

        let dOut = random.array(g.outputCount)
        let dInput0 = random.array(g.inputCount), dWeight0 = random.array(g.weightCount), dBias0 = random.array(g.outChannels)
        var (dInputRef, dWeightRef, dBiasRef) = (dInput0, dWeight0, dBias0)
        Conv2dReference.backward(dInput: &dInputRef, dWeight: &dWeightRef, dBias: &dBiasRef, dOut: dOut,
                                 inp: input, weight: weight, geometry: g)
        var (dInput, dWeight, dBias) = (dInput0, dWeight0, dBias0)
        Conv2d.backward(dInput: &dInput, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, weight: weight,
                        geometry: g, workspace: workspace, method: method)
        let diffs = [maxAbsDifference(dInput, dInputRef), maxAbsDifference(dWeight, dWeightRef), maxAbsDifference(dBias, dBiasRef)]
        #expect(diffs.allSatisfy { $0 < 2e-4 }, "\(g) \(method) backward: max diff dInput/dWeight/dBias \(diffs)")
        return (input, weight, dOut, (dInput0, dWeight0), (dInputRef, dWeightRef))
    }

    @Test func blasMethodPicksShiftedOnlyForLargeSame3x3Maps() {
        #expect(Conv2d.resolve(.blas, .same3x3(batch: 1, height: 64, width: 64, inChannels: 1, outChannels: 1)) == .shifted)
        #expect(Conv2d.resolve(.blas, .same3x3(batch: 1, height: 32, width: 32, inChannels: 1, outChannels: 1)) == .im2col)
        #expect(Conv2d.resolve(.blas, .downsample(batch: 1, height: 64, width: 64, channels: 1)) == .im2col)
    }

    @Test func automaticMethodTakesTheKernelForSame3x3And1x1Only() {
        let downsample = Conv2dGeometry.downsample(batch: 1, height: 64, width: 64, channels: 1)
        #expect(Conv2d.resolve(.automatic, downsample) == .im2col)
        let wide = Conv2dGeometry.same3x3(batch: 1, height: 16, width: 16, inChannels: 512, outChannels: 512)
        #expect(Conv2d.resolve(.automatic, wide) == .im2col, "512 channels go to BLAS")
        for g in [Conv2dGeometry.same3x3(batch: 1, height: 8, width: 8, inChannels: 1, outChannels: 1),
                  .pointwise(batch: 1, height: 8, width: 8, inChannels: 1, outChannels: 1)] {
            for kernels in KernelVariant.allCases {
                #expect(Conv2d.resolve(.automatic, g, kernels: kernels) == (kernels == .fallback ? Conv2d.resolve(.blas, g) : .direct))
            }
        }
    }

    /// Channel counts around the kernels' vectors and column tiles (AVX-512: 16 floats, 32 columns;
    /// AVX2: 8 floats, 16 columns; masked tails), maps narrower than a row tile and wider than a
    /// row block (224 and 216 rows), 1x1 products, and multiples of 128 channels (padded strides).
    static let directCases: [Conv2dGeometry] = [
        .same3x3(batch: 3, height: 7, width: 5, inChannels: 3, outChannels: 5),
        .same3x3(batch: 1, height: 1, width: 1, inChannels: 2, outChannels: 17),
        .same3x3(batch: 2, height: 9, width: 13, inChannels: 33, outChannels: 40),
        .same3x3(batch: 1, height: 20, width: 23, inChannels: 16, outChannels: 32),
        .same3x3(batch: 1, height: 6, width: 6, inChannels: 40, outChannels: 3),
        .pointwise(batch: 3, height: 9, width: 11, inChannels: 19, outChannels: 33),
        .pointwise(batch: 1, height: 1, width: 3, inChannels: 4, outChannels: 16),
        // Columns ending inside the second vector of an AVX2 tile (29 = 16 + 13, 12 < 16).
        .same3x3(batch: 2, height: 5, width: 6, inChannels: 12, outChannels: 29),
        // Multiples of 128 channels: rows and weights at padded strides.
        .same3x3(batch: 2, height: 3, width: 4, inChannels: 128, outChannels: 40),
        .pointwise(batch: 2, height: 3, width: 5, inChannels: 40, outChannels: 128),
    ]

    /// The variants of the C kernels this CPU runs (none on a CPU without AVX2 and FMA).
    static let cVariants = KernelVariant.supported.filter(\.runsOwnKernels)

    /// The tap-GEMM kernel of every variant this CPU runs against the reference: forward,
    /// accumulate, and every gradient.
    @Test(arguments: 0..<directCases.count, cVariants)
    func directMatchesReference(caseIndex: Int, kernels: KernelVariant) {
        let g = Self.directCases[caseIndex]
        var random = KernelRandom(seed: UInt64(400 + caseIndex))
        let checked = Self.expectMatchesReference(g, method: .direct, kernels: kernels, random: &random)

        // Padded in smaller groups than the whole batch (3 images: a group of 2, then 1).
        var (dInput, dWeight) = checked.start
        checked.dOut.withUnsafeBufferPointer { dOut in
            Conv2dDirect.backward(dInput: &dInput, dWeight: &dWeight, dOut: dOut.baseAddress!, inp: checked.input,
                                  weight: checked.weight, geometry: g, accumulateInput: true,
                                  workspace: Workspace(kernels: kernels), imagesPerGroup: max(1, g.batch - 1))
        }
        let diffs = [maxAbsDifference(dInput, checked.reference.0), maxAbsDifference(dWeight, checked.reference.1)]
        #expect(diffs.allSatisfy { $0 < 2e-4 }, "\(g) \(kernels) backward in smaller groups: max diff dInput/dWeight \(diffs)")
    }

    /// The C variants sum every output in the same order, so they agree bit for bit: forward
    /// (overwriting and accumulating), input, weight and bias gradients, on two threads too.
    @Test(.enabled(if: cVariants.count > 1, "this CPU runs at most one variant of the C kernels"),
          arguments: 0..<directCases.count)
    func directVariantsAgreeBitForBit(caseIndex: Int) {
        let g = Self.directCases[caseIndex]
        var random = KernelRandom(seed: UInt64(500 + caseIndex))
        let input = random.array(g.inputCount), weight = random.array(g.weightCount), bias = random.array(g.outChannels)
        let dOut = random.array(g.outputCount), start = random.array(g.outputCount)
        let dInputStart = random.array(g.inputCount), dWeightStart = random.array(g.weightCount)
        func results(_ kernels: KernelVariant, threads: Int) -> [UInt32] {
            let workspace = Workspace(threads: threads, kernels: kernels)
            var out = [Float](repeating: 0, count: g.outputCount), accumulated = start
            Conv2d.forward(out: &out, inp: input, weight: weight, bias: bias, geometry: g, workspace: workspace, method: .direct)
            Conv2d.forward(out: &accumulated, inp: input, weight: weight, bias: bias, geometry: g, accumulate: true,
                           workspace: workspace, method: .direct)
            var dInput = dInputStart, dWeight = dWeightStart, dBias = [Float](repeating: 0, count: g.outChannels)
            Conv2d.backward(dInput: &dInput, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, weight: weight,
                            geometry: g, workspace: workspace, method: .direct)
            return (out + accumulated + dInput + dWeight + dBias).map(\.bitPattern)
        }
        let first = results(Self.cVariants[0], threads: 1)
        for kernels in Self.cVariants {
            for threads in [1, 2] {
                let other = results(kernels, threads: threads)
                let differing = zip(first, other).filter { $0 != $1 }.count
                #expect(differing == 0, "\(g): \(kernels) on \(threads) thread(s) differs from \(Self.cVariants[0]) in \(differing) values")
            }
        }
    }

    /// The bias gradient sums rows in Double in row order, so every variant gives the same bits.
    @Test func biasGradientPathsAgreeBitForBit() {
        let (rows, channels) = (37, 20)
        var random = KernelRandom(seed: 9)
        let dOut = random.array(rows * channels), start = random.array(channels)
        let expected = (0..<channels).map { c in start[c] + Float((0..<rows).reduce(0.0) { $0 + Double(dOut[$1 * channels + c]) }) }
        for kernels in KernelVariant.supported {
            var dBias = start
            Conv2d.accumulateBiasGradient(&dBias, dOut, rows: rows, channels: channels, kernels: kernels)
            #expect(dBias.map(\.bitPattern) == expected.map(\.bitPattern), "\(kernels): \(dBias.prefix(4)) vs \(expected.prefix(4))")
        }
    }

    @Test func outputShapes() {
        #expect(Conv2dGeometry.downsample(batch: 1, height: 32, width: 32, channels: 4).outHeight == 16)
        #expect(Conv2dGeometry.downsample(batch: 1, height: 7, width: 7, channels: 4).outWidth == 3)
        #expect(Conv2dGeometry.same3x3(batch: 1, height: 5, width: 9, inChannels: 1, outChannels: 1).outWidth == 9)
    }

    /// The reference itself, by central differences of sum(dOut * conv(x)), on the downsample case.
    @Test func referenceBackwardMatchesFiniteDifferences() {
        let g = Conv2dGeometry.downsample(batch: 2, height: 5, width: 5, channels: 3)
        var random = KernelRandom(seed: 7)
        let input = PinnedFloats(random.array(g.inputCount)), weight = PinnedFloats(random.array(g.weightCount))
        let bias = PinnedFloats(random.array(g.outChannels))
        let dOut = random.array(g.outputCount)
        var out = [Float](repeating: 0, count: g.outputCount)
        func loss() -> Double {
            Conv2d.forward(out: &out, inp: input.pointer, weight: weight.pointer, bias: bias.pointer, geometry: g, workspace: Workspace())
            return zip(out, dOut).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        var dInput = [Float](repeating: 0, count: g.inputCount), dWeight = [Float](repeating: 0, count: g.weightCount)
        var dBias = [Float](repeating: 0, count: g.outChannels)
        Conv2dReference.backward(dInput: &dInput, dWeight: &dWeight, dBias: &dBias, dOut: dOut,
                                 inp: input.pointer, weight: weight.pointer, geometry: g)
        var checks: [GradientCheck] = []
        for i in stride(from: 0, to: g.inputCount, by: 7) {
            checks.append(GradientCheck(name: "input", index: i, analytic: Double(dInput[i]),
                                        numeric: centralDifference(input.pointer + i, epsilon: 1e-2, loss)))
        }
        for i in stride(from: 0, to: g.weightCount, by: 5) {
            checks.append(GradientCheck(name: "weight", index: i, analytic: Double(dWeight[i]),
                                        numeric: centralDifference(weight.pointer + i, epsilon: 1e-2, loss)))
        }
        for i in 0..<g.outChannels {
            checks.append(GradientCheck(name: "bias", index: i, analytic: Double(dBias[i]),
                                        numeric: centralDifference(bias.pointer + i, epsilon: 1e-2, loss)))
        }
        let bad = gradientMismatches(checks, relative: 1e-3, absolute: 1e-3)
        #expect(bad.isEmpty, "\(bad.count) of \(checks.count) mismatched; first: \(bad.prefix(3))")
    }
}
