import Testing
@testable import Model

/// An image's codes and reconstruction are the same bits alone and in any batch, on every kernel
/// variant this CPU runs (docs/model.md, "One image, the same bits in any batch"). OpenBLAS's AVX2
/// sgemm (Haswell, Zen) rounds a row differently with the number of rows in the call, so this
/// holds only because no GEMM of the forward pass spans two images; scripts/test.sh runs it on
/// those kernels on an AVX-512 machine too.
@Suite struct BatchInvarianceTests {
    @Test(arguments: [ModelConfig.tiny, ModelConfig.small], KernelVariant.supported)
    func anImageGivesTheSameCodesAndReconstructionInAnyBatch(config: ModelConfig, kernels: KernelVariant) {
        let count = 3
        let parameters = SCVAEModelTests.parameters(config, seed: 21)
        let images = SCVAEModelTests.images(config, count: count, seed: 22)
        let model = SCVAEModel(config: config, maxBatch: count, kernels: kernels)
        let imageFloats = 3 * config.imageSize * config.imageSize
        let codeFloats = config.latentSize * config.latentSize * config.atoms
        parameters.withUnsafeBufferPointer { parameters in
            // The whole batch: codes, and the reconstruction decoded from them.
            var codes = [Float](repeating: .nan, count: count * codeFloats)
            var decoded = [Float](repeating: .nan, count: count * imageFloats)
            _ = model.encode(parameters: parameters, images: images, batch: count, codes: &codes)
            model.decode(parameters: parameters, codes: codes, batch: count, reconstruction: &decoded)
            var reconstruction = [Float](repeating: .nan, count: count * imageFloats)
            _ = model.forward(parameters: parameters, images: images, batch: count, reconstruction: &reconstruction)
            #expect(reconstruction == decoded, "\(config.name), \(kernels): decoding the codes differs from forward")
            // Each image alone, and the last two as a batch of two (other rows, other offsets).
            for image in 0..<count {
                let pixels = Array(images[(image * imageFloats)..<((image + 1) * imageFloats)])
                var alone = [Float](repeating: .nan, count: codeFloats)
                _ = model.encode(parameters: parameters, images: pixels, batch: 1, codes: &alone)
                let inBatch = Array(codes[(image * codeFloats)..<((image + 1) * codeFloats)])
                #expect(alone == inBatch, "\(config.name), \(kernels): image \(image)'s codes differ alone and in a batch of \(count)")
                var aloneImage = [Float](repeating: .nan, count: imageFloats)
                _ = model.forward(parameters: parameters, images: pixels, batch: 1, reconstruction: &aloneImage)
                #expect(aloneImage == Array(reconstruction[(image * imageFloats)..<((image + 1) * imageFloats)]),
                        "\(config.name), \(kernels): image \(image)'s reconstruction differs alone and in a batch of \(count)")
            }
            var pair = [Float](repeating: .nan, count: 2 * imageFloats)
            model.decode(parameters: parameters, codes: Array(codes[codeFloats...]), batch: 2, reconstruction: &pair)
            #expect(pair == Array(decoded[imageFloats...]), "\(config.name), \(kernels): decoding two of the codes differs")
        }
    }
}
