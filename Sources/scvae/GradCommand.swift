import Foundation
import ArgumentParser
import Data
import Model
import Worker

struct GradCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grad",
        abstract: "Write the loss and the gradient of every parameter for one batch (to check against another framework).",
        discussion: """
            The gradients go to a safetensors file with the parameter names of SCVAE.md; the loss \
            terms (loss, recon, latent, sparsity) go in its metadata as decimal strings. The loss \
            is the batch mean, as PyTorch's F.mse_loss computes it.
            """)

    @Option(help: "Model configuration: tiny, small, imagenet-f8 or imagenet-f16.")
    var config: String = "tiny"

    @Option(help: "Weights (safetensors with the names of SCVAE.md).")
    var weights: String

    @Option(help: "The batch: a float32 .npy of shape [N, 3, S, S] in [-1, 1], or a folder of S x S images.")
    var input: String

    @Option(help: "Output safetensors file for the gradients.")
    var out: String

    @Option(help: "OpenBLAS threads.")
    var threads: Int = 1

    func validate() throws {
        guard ModelConfig.named(config) != nil else {
            throw ValidationError("--config must be one of \(ModelConfig.all.map(\.name).joined(separator: ", ")); got '\(config)'.")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1.") }
    }

    func run() throws {
        BLAS.setThreads(threads)
        let model = ModelConfig.named(config)!
        let layout = ParameterLayout(config: model)
        let loaded = try WeightsFile.load(weights, layout: layout)
        if !loaded.unknownNames.isEmpty {
            printError("warning: \(weights): ignoring \(loaded.unknownNames.count) tensors this model does not use: \(loaded.unknownNames.joined(separator: ", "))")
        }
        let batch = try ImageBatch.load(input, size: model.imageSize)
        let result = BatchGradients(config: model, parameters: loaded.parameters, images: batch)
        try WeightsFile.save(result.gradients, layout: layout, to: out, metadata: result.metadata)
        print("batch \(result.batch): loss \(result.loss) (recon \(result.recon), latent \(result.latent)), sparsity \(result.sparsity)")
        print("wrote \(layout.entries.count) gradients to \(out)")
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
