import Dataset
import Model

/// The loss and the gradient of every parameter for one batch, as PyTorch computes them:
/// loss = mean over the batch's pixels of (xHat - x)^2 + latentWeight * mean over its latents of
/// (h - D z)^2. This is how a user checks our maths against another framework (`scvae grad`).
public struct BatchGradients {
    public var gradients: [Float]
    /// Batch means.
    public var loss: Double
    public var recon: Double
    /// The weighted latent term (latentWeight * MSE(h, D z)).
    public var latent: Double
    public var sparsity: Double
    public var batch: Int

    /// Computes them for `images` with `parameters` of `config`.
    public init(config: ModelConfig, parameters: [Float], images: ImageBatch) {
        precondition(images.size == config.imageSize, "batch of \(images.size)px images for a \(config.imageSize)px model")
        let model = SCVAEModel(config: config, maxBatch: images.count)
        var gradients = [Float](repeating: 0, count: model.layout.totalCount)
        let terms = parameters.withUnsafeBufferPointer { params in
            images.values.withUnsafeBufferPointer { pixels in
                gradients.withUnsafeMutableBufferPointer { grads in
                    model.forwardBackward(parameters: params, images: pixels.baseAddress!, batch: images.count,
                                          gradients: grads, gradientScale: 1 / Float(images.count))
                }
            }
        }
        let n = Double(images.count)
        self.gradients = gradients
        self.loss = terms.total / n
        self.recon = terms.recon / n
        self.latent = terms.latent / n
        self.sparsity = terms.sparsity
        self.batch = images.count
    }

    /// The metadata keys of docs/model.md: `loss`, `recon`, `latent`, `sparsity` as decimal strings.
    public var metadata: [String: String] {
        ["loss": "\(loss)", "recon": "\(recon)", "latent": "\(latent)", "sparsity": "\(sparsity)",
         "batch": "\(batch)"]
    }
}
