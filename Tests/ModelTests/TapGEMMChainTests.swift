import Testing
@testable import Model

/// The tap-GEMM kernels' rounding contract, bit for bit, on every C variant this CPU runs: each
/// output is one chain of fused multiply-adds, starting at zero, over the taps in order and within
/// each tap over the depth in order (the forward pass and the input gradient: input channels or
/// output channels), the bias added after the chain. The weight gradient is one chain per part of
/// the batch's pixels (DirectBackwardPlan), over the part's pixels in order, and the parts' sums are
/// added in order. Terms from the zero border are in the chain (adding x * 0 to a sum that started at
/// +0 changes no bit), so a kernel that skips them, as the AVX2 variant does, must still give these
/// bits. Because the chain is written out here, the contract is checked on an AVX2-only CPU too,
/// where the AVX-512 variant cannot run beside it.
@Suite struct TapGEMMChainTests {
    /// The 3x3 and 1x1 cases of the kernel tests, and maps that cross the AVX2 variant's row blocks
    /// (216 pixel rows) inside an image row, several images per stacked group and images one row high.
    static let cases: [Conv2dGeometry] = Conv2dTests.directCases + [
        .same3x3(batch: 2, height: 9, width: 40, inChannels: 8, outChannels: 24),
        .same3x3(batch: 4, height: 1, width: 9, inChannels: 5, outChannels: 8),
    ]

    @Test(arguments: 0..<cases.count, Conv2dTests.cVariants)
    func everyOutputIsOneFMAChain(caseIndex: Int, kernels: KernelVariant) {
        let g = Self.cases[caseIndex]
        var random = KernelRandom(seed: UInt64(700 + caseIndex))
        let input = random.array(g.inputCount), weight = random.array(g.weightCount), bias = random.array(g.outChannels)
        let dOut = random.array(g.outputCount)
        let workspace = Workspace(threads: 2, kernels: kernels)

        var out = [Float](repeating: 0, count: g.outputCount)
        Conv2d.forward(out: &out, inp: input, weight: weight, bias: bias, geometry: g, workspace: workspace, method: .direct)
        var dInput = [Float](repeating: 0, count: g.inputCount), dWeight = [Float](repeating: 0, count: g.weightCount)
        // Groups of half the batch, and parts of a third of an image where a group holds one image.
        let imagesPerGroup = max(1, g.batch / 2), partPixels = max(1, g.height * g.width / 3)
        Conv2dDirect.backward(dInput: &dInput, dWeight: &dWeight, dOut: dOut, inp: input, weight: weight, geometry: g,
                              accumulateInput: false, workspace: workspace, imagesPerGroup: imagesPerGroup,
                              partPixels: partPixels)

        let chain = ChainReference(g)
        let parts = Self.parts(g, imagesPerGroup: imagesPerGroup, partPixels: partPixels)
        let expected = (chain.forward(input, weight, bias), chain.inputGradient(dOut, weight),
                        chain.weightGradient(input, dOut, parts: parts))
        for (name, got, want) in [("forward", out, expected.0), ("input gradient", dInput, expected.1),
                                  ("weight gradient", dWeight, expected.2)] {
            let differing = zip(got, want).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "\(g) \(kernels) \(name): \(differing) of \(want.count) values are not the chain's bits")
        }
    }

    /// The weight gradient's parts as ranges of the batch's pixels (b * H * W + y * W + x): for
    /// 3x3, DirectBackwardPlan's; for 1x1, runs of `partPixels`.
    static func parts(_ g: Conv2dGeometry, imagesPerGroup: Int, partPixels: Int) -> [Range<Int>] {
        let pixels = g.height * g.width
        guard g.kernel == 3 else {
            return stride(from: 0, to: g.batch * pixels, by: partPixels).map { $0..<min($0 + partPixels, g.batch * pixels) }
        }
        return DirectBackwardPlan(geometry: g, inputStride: g.inChannels, outputStride: g.outChannels,
                                  imagesPerGroup: imagesPerGroup, partPixels: partPixels).pixelRanges(g)
    }
}

/// The chains of TapGEMMChainTests for a stride-1 convolution of kernel 1 or 3 ("same" padding),
/// NHWC activations and PyTorch's [Co, Ci, k, k] weights.
private struct ChainReference {
    let g: Conv2dGeometry
    let pad: Int

    init(_ g: Conv2dGeometry) {
        self.g = g
        pad = (g.kernel - 1) / 2
    }

    /// The value at pixel (y, x) of image b, channel c, of an NHWC tensor with `channels`; zero off the map.
    private func at(_ tensor: [Float], _ b: Int, _ y: Int, _ x: Int, _ c: Int, channels: Int) -> Float {
        guard y >= 0, y < g.height, x >= 0, x < g.width else { return 0 }
        return tensor[((b * g.height + y) * g.width + x) * channels + c]
    }

    private func weightAt(_ weight: [Float], _ co: Int, _ ci: Int, _ tap: Int) -> Float {
        weight[(co * g.inChannels + ci) * g.kernel * g.kernel + tap]
    }

    private var taps: Range<Int> { 0..<(g.kernel * g.kernel) }

    /// For every pixel and channel o < `channels`: the chain over taps, then the channels c of
    /// `source` (NHWC, `sourceChannels`), of source at (pixel + the tap's offset, c) times weight(o, c, tap).
    private func tapChains(_ source: [Float], sourceChannels: Int, channels: Int,
                           weight: (_ o: Int, _ c: Int, _ tap: Int) -> Float) -> [Float] {
        var result = [Float](repeating: 0, count: g.batch * g.height * g.width * channels)
        for b in 0..<g.batch { for y in 0..<g.height { for x in 0..<g.width { for o in 0..<channels {
            var sum: Float = 0
            for tap in taps {
                let (ky, kx) = (tap / g.kernel, tap % g.kernel)
                for c in 0..<sourceChannels {
                    sum = sum.addingProduct(at(source, b, y + ky - pad, x + kx - pad, c, channels: sourceChannels),
                                            weight(o, c, tap))
                }
            }
            result[((b * g.height + y) * g.width + x) * channels + o] = sum
        } } } }
        return result
    }

    /// out = (chain over taps, then input channels) + bias.
    func forward(_ input: [Float], _ weight: [Float], _ bias: [Float]) -> [Float] {
        let chains = tapChains(input, sourceChannels: g.inChannels, channels: g.outChannels) { co, ci, tap in
            weightAt(weight, co, ci, tap)
        }
        return chains.indices.map { chains[$0] + bias[$0 % g.outChannels] }
    }

    /// dInput: the chain over the flipped taps (tap t reads the output gradient at offset (t / k, t % k)
    /// of the padded map, with the weight of tap k*k - 1 - t), then output channels.
    func inputGradient(_ dOut: [Float], _ weight: [Float]) -> [Float] {
        let last = g.kernel * g.kernel - 1
        return tapChains(dOut, sourceChannels: g.outChannels, channels: g.inChannels) { ci, co, tap in
            weightAt(weight, co, ci, last - tap)
        }
    }

    /// dWeight[co, ci, tap]: for each part (a range of the batch's pixels b * H * W + y * W + x),
    /// the chain over its pixels in order; then the parts' sums added in order.
    func weightGradient(_ input: [Float], _ dOut: [Float], parts: [Range<Int>]) -> [Float] {
        var dWeight = [Float](repeating: 0, count: g.weightCount)
        let pixels = g.height * g.width
        for tap in taps {
            let (ky, kx) = (tap / g.kernel, tap % g.kernel)
            for ci in 0..<g.inChannels { for co in 0..<g.outChannels {
                let sums = parts.map { part in
                    part.reduce(Float(0)) { sum, pixel in
                        let (b, y, x) = (pixel / pixels, pixel % pixels / g.width, pixel % g.width)
                        return sum.addingProduct(at(input, b, y + ky - pad, x + kx - pad, ci, channels: g.inChannels),
                                                 at(dOut, b, y, x, co, channels: g.outChannels))
                    }
                }
                dWeight[(co * g.inChannels + ci) * g.kernel * g.kernel + tap] = sums.dropFirst().reduce(sums[0], +)
            } }
        }
        return dWeight
    }
}
