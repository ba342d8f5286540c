import Model

/// A model with its weights that turns images into codes and codes into images, a batch at a time.
///
/// Images are NCHW floats in [-1, 1] ([n, 3, S, S]), codes dense [n * P, K] with rows in
/// (image, y, x) order, P = s * s latent positions. Batches are cut in order, `batchSize` images
/// each, the way `scvae reconstruct` cuts them. Not thread-safe.
public final class CodeModel {
    public let weights: TrainedWeights
    public let batchSize: Int
    private let model: SCVAEModel

    public init(weights: TrainedWeights, batchSize: Int = 8) {
        precondition(batchSize >= 1)
        self.weights = weights
        self.batchSize = batchSize
        model = SCVAEModel(config: weights.config, maxBatch: batchSize)
    }

    public var config: ModelConfig { weights.config }
    /// Latent positions per image (P).
    public var positions: Int { config.latentSize * config.latentSize }
    /// Floats per image (3 * S * S).
    public var imageFloats: Int { 3 * config.imageSize * config.imageSize }
    /// Floats of one image's codes (P * K).
    public var codeFloats: Int { positions * config.atoms }

    /// The codes of `images.count / imageFloats` images.
    public func encode(_ images: [Float]) -> [Float] {
        precondition(images.count % imageFloats == 0, "encode: \(images.count) floats are not whole images")
        let count = images.count / imageFloats
        var codes = [Float](repeating: 0, count: count * codeFloats)
        weights.parameters.withUnsafeBufferPointer { parameters in
            images.withUnsafeBufferPointer { x in
                codes.withUnsafeMutableBufferPointer { z in
                    inBatches(count) { first, batch in
                        _ = model.encode(parameters: parameters, images: x.baseAddress! + first * imageFloats, batch: batch,
                                         codes: z.baseAddress! + first * codeFloats)
                    }
                }
            }
        }
        return codes
    }

    /// The images decoded from `codes.count / codeFloats` images' codes.
    public func decode(_ codes: [Float]) -> [Float] {
        precondition(codes.count % codeFloats == 0, "decode: \(codes.count) floats are not whole images' codes")
        let count = codes.count / codeFloats
        var images = [Float](repeating: 0, count: count * imageFloats)
        weights.parameters.withUnsafeBufferPointer { parameters in
            codes.withUnsafeBufferPointer { z in
                images.withUnsafeMutableBufferPointer { x in
                    inBatches(count) { first, batch in
                        model.decode(parameters: parameters, codes: z.baseAddress! + first * codeFloats, batch: batch,
                                     reconstruction: x.baseAddress! + first * imageFloats)
                    }
                }
            }
        }
        return images
    }

    /// Calls `body(first, batch)` for consecutive batches of at most `batchSize` of `count` images.
    private func inBatches(_ count: Int, _ body: (Int, Int) -> Void) {
        for first in stride(from: 0, to: count, by: batchSize) { body(first, min(batchSize, count - first)) }
    }
}
