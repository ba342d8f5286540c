import Testing
@testable import Model

/// Backward passes asked to write the input gradient (accumulateInput: false) give exactly what
/// accumulating onto zeros gives, whatever the buffer held before: callers rely on it to skip
/// zeroing scratch buffers.
@Suite struct OverwriteGradientTests {
    /// Every convolution path: im2col (same 3x3 via the transposed conv, downsample via col2im),
    /// a plain 1x1 product, the shifted GEMMs (on the fallback variant, which has no say in
    /// them), and the tap-GEMM kernel of every C variant this CPU runs.
    static let convolutions: [(Conv2dGeometry, Conv2d.Method, KernelVariant)] = [
        (.same3x3(batch: 2, height: 7, width: 5, inChannels: 3, outChannels: 5), .im2col, .fallback),
        (.downsample(batch: 2, height: 7, width: 9, channels: 3), .im2col, .fallback),
        (.pointwise(batch: 3, height: 4, width: 6, inChannels: 6, outChannels: 4), .im2col, .fallback),
        (.same3x3(batch: 2, height: 7, width: 5, inChannels: 3, outChannels: 5), .shifted, .fallback),
    ] + KernelVariant.supported.filter(\.runsOwnKernels).flatMap { kernels -> [(Conv2dGeometry, Conv2d.Method, KernelVariant)] in [
        (.same3x3(batch: 2, height: 7, width: 5, inChannels: 3, outChannels: 5), .direct, kernels),
        (.pointwise(batch: 3, height: 4, width: 6, inChannels: 6, outChannels: 4), .direct, kernels),
    ] }

    @Test(arguments: 0..<convolutions.count)
    func convolutionWritesInputGradient(caseIndex: Int) {
        let (g, method, kernels) = Self.convolutions[caseIndex]
        var random = KernelRandom(seed: UInt64(300 + caseIndex))
        let input = random.array(g.inputCount), weight = random.array(g.weightCount), dOut = random.array(g.outputCount)
        var accumulated = [Float](repeating: 0, count: g.inputCount)
        var written = random.array(g.inputCount, scale: 100)
        var dWeight = [Float](repeating: 0, count: g.weightCount), dBias = [Float](repeating: 0, count: g.outChannels)
        Conv2d.backward(dInput: &accumulated, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, weight: weight,
                        geometry: g, workspace: Workspace(kernels: kernels), method: method)
        Conv2d.backward(dInput: &written, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, weight: weight,
                        geometry: g, accumulateInput: false, workspace: Workspace(kernels: kernels), method: method)
        #expect(written.map(\.bitPattern) == accumulated.map(\.bitPattern), "\(g) \(method) \(kernels)")
    }

    @Test(arguments: [true, false], KernelVariant.supported)
    func groupNormWritesInputGradient(swish: Bool, kernels: KernelVariant) {
        let (batch, positions, channels, groups) = (2, 9, 12, 4)
        var random = KernelRandom(seed: 41)
        let input = random.array(batch * positions * channels), dOut = random.array(input.count)
        let weight = random.array(channels), bias = random.array(channels)
        var out = [Float](repeating: 0, count: input.count)
        var mean = [Float](repeating: 0, count: batch * groups), rstd = mean
        GroupNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: input, weight: weight, bias: bias, batch: batch,
                          positions: positions, channels: channels, groups: groups, epsilon: 1e-6, swish: swish,
                          kernels: kernels)
        var scratch = [Float](repeating: 0, count: batch * positions * channels)
        var dWeight = [Float](repeating: 0, count: channels), dBias = dWeight
        var accumulated = [Float](repeating: 0, count: input.count)
        var written = random.array(input.count, scale: 100)
        GroupNorm.backward(dInput: &accumulated, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, mean: mean,
                           rstd: rstd, weight: weight, bias: bias, batch: batch, positions: positions,
                           channels: channels, groups: groups, swish: swish, scratch: &scratch, kernels: kernels)
        GroupNorm.backward(dInput: &written, dWeight: &dWeight, dBias: &dBias, dOut: dOut, inp: input, mean: mean,
                           rstd: rstd, weight: weight, bias: bias, batch: batch, positions: positions,
                           channels: channels, groups: groups, swish: swish, accumulateInput: false, scratch: &scratch,
                           kernels: kernels)
        #expect(written.map(\.bitPattern) == accumulated.map(\.bitPattern))
    }

    /// Chain steps of every kind the encoder and decoder use.
    static func chainLayer(_ index: Int) -> (ChainLayer, ParameterLayout) {
        var builder = TestLayoutBuilder()
        let config = LayerGradientTests.config
        switch index {
        case 0, 1:
            let (cin, cout) = index == 0 ? (4, 8) : (8, 8)
            builder.norm("r.norm1", cin)
            builder.conv("r.conv1", cin, cout, kernel: 3)
            builder.norm("r.norm2", cout)
            builder.conv("r.conv2", cout, cout, kernel: 3)
            if cin != cout { builder.conv("r.nin_shortcut", cin, cout, kernel: 1) }
            return (ResnetBlock("r", layout: builder.layout, config: config, height: 5, width: 4, inChannels: cin,
                                outChannels: cout, maxBatch: 2, workspace: Workspace()), builder.layout)
        case 2:
            builder.norm("a.norm", 8)
            for part in ["q", "k", "v", "proj_out"] { builder.conv("a.\(part)", 8, 8, kernel: 1) }
            return (AttnBlock("a", layout: builder.layout, config: config, height: 3, width: 4, channels: 8,
                              maxBatch: 2, workspace: Workspace()), builder.layout)
        case 3:
            return (UpsampleLayer(height: 3, width: 2, channels: 3, maxBatch: 2), builder.layout)
        case 4:
            builder.conv("d", 4, 4, kernel: 3)
            return (ConvLayer("d", layout: builder.layout, geometry: .downsample(batch: 1, height: 6, width: 6, channels: 4),
                              maxBatch: 2, workspace: Workspace()), builder.layout)
        default:
            builder.norm("n", 8)
            return (GroupNormLayer("n", layout: builder.layout, config: config, positions: 6, channels: 8, swish: true,
                                   maxBatch: 2, workspace: Workspace()), builder.layout)
        }
    }

    @Test(arguments: 0..<6)
    func chainLayerWritesInputGradient(index: Int) {
        let (layer, layout) = Self.chainLayer(index)
        let batch = 2
        var random = KernelRandom(seed: UInt64(500 + index))
        let parameters = PinnedFloats(randomParameters(layout, seed: 9))
        let input = PinnedFloats(random.array(batch * layer.inputSize))
        let dOut = random.array(batch * layer.outputSize)
        _ = layer.forward(input.pointer, batch: batch, parameters: parameters.pointer)
        let gradients = PinnedFloats(zeros: max(1, layout.totalCount))
        let accumulated = PinnedFloats(zeros: batch * layer.inputSize)
        let written = PinnedFloats(random.array(batch * layer.inputSize, scale: 100))
        layer.backward(dOutput: dOut, dInput: accumulated.pointer, batch: batch, parameters: parameters.pointer,
                       gradients: gradients.pointer)
        layer.backward(dOutput: dOut, dInput: written.pointer, batch: batch, parameters: parameters.pointer,
                       gradients: gradients.pointer, accumulateInput: false)
        #expect(written.array.map(\.bitPattern) == accumulated.array.map(\.bitPattern), "\(type(of: layer))")
    }
}
