import ArgumentParser
import CommandOptions
import Dataset
import Foundation
import Model
import Worker

struct GradCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grad",
        abstract: "Write the loss and the gradient of every parameter for one batch (to check against another framework).",
        discussion: """
            The gradients go to a safetensors file with the reference model's parameter names (docs/model.md); the loss \
            terms (loss, recon, latent, sparsity) go in its metadata as decimal strings. The loss \
            is the batch mean, as PyTorch's F.mse_loss computes it; --beta and --latent-weight change \
            the threshold and the weight of the latent term (the written latent is the weighted one).
            """)

    @OptionGroup var model: ModelOptions

    @OptionGroup var loss: LossOptions

    @Option(help: "Weights (safetensors with the reference model's tensor names, docs/model.md).")
    var weights: String

    @Option(help: "The batch: a float32 .npy of shape [N, 3, S, S] in [-1, 1], or a folder of S x S images.")
    var input: String

    @Option(help: "Output safetensors file for the gradients.")
    var out: String

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let base = model.prepare()
        let layout = ParameterLayout(config: base)
        let loaded = try WeightsFile.load(weights, layout: layout)
        // The weights' own beta and latent weight, unless given here.
        let config = try loss.apply(to: base.applying(weightsMetadata: loaded.metadata))
        if !loaded.unknownNames.isEmpty {
            printError("warning: \(weights): ignoring \(loaded.unknownNames.count) tensors this model does not use: \(loaded.unknownNames.joined(separator: ", "))")
        }
        let batch = try ImageBatch.load(input, size: config.imageSize)
        let result = BatchGradients(config: config, parameters: loaded.parameters, images: batch)
        try WeightsFile.save(result.gradients, layout: layout, to: out, metadata: result.metadata)
        print("batch \(result.batch): loss \(result.loss) (recon \(result.recon), latent \(result.latent)), sparsity \(result.sparsity)")
        print("wrote \(layout.entries.count) gradients to \(out)")
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
