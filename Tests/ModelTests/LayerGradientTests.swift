import Testing
@testable import Model

/// Finite-difference checks of each layer's backward on small shapes.
///
/// Loss L = sum(out * R) for a fixed random R, so dL/dout = R. Central differences in float32,
/// compared in Double; ~12 entries per tensor (the largest-gradient entry plus random ones).
@Suite struct LayerGradientTests {
    /// GroupNorm with 2 channels per group on 8 channels (tiny would give one channel per group).
    static var config: ModelConfig {
        var config = ModelConfig.tiny
        config.maxGroups = 4
        return config
    }

    /// Runs the check for `layer` and returns the mismatches plus the number of checks made.
    static func check(_ layer: ChainLayer, layout: ParameterLayout, batch: Int, seed: UInt64,
                      inputScale: Float = 1, epsilon: Float = 1e-2, perTensor: Int = 12,
                      relative: Double = 2e-2, absoluteFraction: Double = 2e-3) -> (bad: [GradientCheck], count: Int) {
        var random = KernelRandom(seed: seed)
        let parameters = PinnedFloats(randomParameters(layout, seed: seed &+ 1))
        let input = PinnedFloats(random.array(batch * layer.inputSize, scale: inputScale))
        let weights = random.array(batch * layer.outputSize)
        func loss() -> Double {
            let out = layer.forward(input.pointer, batch: batch, parameters: parameters.pointer)
            var sum = 0.0
            for i in 0..<weights.count { sum += Double(out[i]) * Double(weights[i]) }
            return sum
        }
        _ = loss()
        let gradients = PinnedFloats(zeros: max(1, layout.totalCount))
        let dInput = PinnedFloats(zeros: batch * layer.inputSize)
        layer.backward(dOutput: weights, dInput: dInput.pointer, batch: batch, parameters: parameters.pointer,
                       gradients: gradients.pointer)
        let analytic = gradients.array, dIn = dInput.array
        var checks: [GradientCheck] = []
        func sample(_ name: String, _ range: Range<Int>, _ grads: [Float], _ base: UnsafeMutablePointer<Float>) {
            var picks = Set<Int>()
            if let largest = range.max(by: { abs(grads[$0]) < abs(grads[$1]) }) { picks.insert(largest) }
            while picks.count < min(perTensor, range.count) { picks.insert(range.lowerBound + random.index(range.count)) }
            for i in picks.sorted() {
                checks.append(GradientCheck(name: name, index: i - range.lowerBound, analytic: Double(grads[i]),
                                            numeric: centralDifference(base + i, epsilon: epsilon, loss)))
            }
        }
        for entry in layout.entries { sample(entry.name, entry.range, analytic, parameters.pointer) }
        sample("input", 0..<dIn.count, dIn, input.pointer)
        let scale = Double(max(maxAbs(analytic), maxAbs(dIn)))
        return (gradientMismatches(checks, relative: relative, absolute: absoluteFraction * scale), checks.count)
    }

    static func report(_ result: (bad: [GradientCheck], count: Int)) -> Comment {
        "\(result.bad.count) of \(result.count) mismatched; first: \(result.bad.prefix(4))"
    }

    @Test(arguments: [true, false])
    func groupNorm(swish: Bool) {
        var builder = TestLayoutBuilder()
        builder.norm("n", 8)
        let layer = GroupNormLayer("n", layout: builder.layout, config: Self.config, positions: 6, channels: 8,
                                   swish: swish, maxBatch: 2, workspace: Workspace())
        let result = Self.check(layer, layout: builder.layout, batch: 2, seed: 11, inputScale: 2)
        #expect(result.bad.isEmpty && result.count >= 10, Self.report(result))
    }

    @Test func swishAlone() {
        var random = KernelRandom(seed: 5)
        let input = PinnedFloats(random.array(40, scale: 4))
        let weights = random.array(40)
        var out = [Float](repeating: 0, count: 40)
        func loss() -> Double {
            Swish.forward(out: &out, inp: input.pointer, count: 40)
            return zip(out, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        var dInput = [Float](repeating: 0, count: 40)
        Swish.backward(dInput: &dInput, dOut: weights, inp: input.pointer, count: 40)
        let checks = (0..<40).map {
            GradientCheck(name: "input", index: $0, analytic: Double(dInput[$0]),
                          numeric: centralDifference(input.pointer + $0, epsilon: 1e-2, loss))
        }
        let bad = gradientMismatches(checks, relative: 1e-2, absolute: 1e-3)
        #expect(bad.isEmpty, "\(bad.count) mismatched: \(bad.prefix(4))")
    }

    @Test func upsample() {
        let layer = UpsampleLayer(height: 3, width: 2, channels: 3, maxBatch: 2)
        let result = Self.check(layer, layout: TestLayoutBuilder().layout, batch: 2, seed: 3)
        #expect(result.bad.isEmpty && result.count >= 10, Self.report(result))
    }

    @Test func downsampleConvLayer() {
        var builder = TestLayoutBuilder()
        builder.conv("d", 4, 4, kernel: 3)
        let layer = ConvLayer("d", layout: builder.layout, geometry: .downsample(batch: 1, height: 6, width: 6, channels: 4),
                              maxBatch: 2, workspace: Workspace())
        let result = Self.check(layer, layout: builder.layout, batch: 2, seed: 4)
        #expect(result.bad.isEmpty && result.count >= 10, Self.report(result))
    }

    @Test(arguments: [(4, 8), (8, 8)])
    func resnetBlock(inChannels: Int, outChannels: Int) {
        var builder = TestLayoutBuilder()
        builder.norm("r.norm1", inChannels)
        builder.conv("r.conv1", inChannels, outChannels, kernel: 3)
        builder.norm("r.norm2", outChannels)
        builder.conv("r.conv2", outChannels, outChannels, kernel: 3)
        if inChannels != outChannels { builder.conv("r.nin_shortcut", inChannels, outChannels, kernel: 1) }
        let layer = ResnetBlock("r", layout: builder.layout, config: Self.config, height: 5, width: 4,
                                inChannels: inChannels, outChannels: outChannels, maxBatch: 2, workspace: Workspace())
        let result = Self.check(layer, layout: builder.layout, batch: 2, seed: 21)
        #expect(result.bad.isEmpty && result.count >= 10, Self.report(result))
    }

    @Test func attentionBlock() {
        var builder = TestLayoutBuilder()
        builder.norm("a.norm", 8)
        for part in ["q", "k", "v", "proj_out"] { builder.conv("a.\(part)", 8, 8, kernel: 1) }
        let layer = AttnBlock("a", layout: builder.layout, config: Self.config, height: 3, width: 4, channels: 8,
                              maxBatch: 2, workspace: Workspace())
        // Larger weights than Xavier make the softmax far from uniform, so its backward matters.
        let result = Self.check(layer, layout: builder.layout, batch: 2, seed: 31, inputScale: 2)
        #expect(result.bad.isEmpty && result.count >= 10, Self.report(result))
    }
}
