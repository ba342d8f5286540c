import ArgumentParser
import CommandOptions
import Foundation
import Model
import Worker

struct ReconstructCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct",
        abstract: "Reconstruct a folder of images; write each reconstruction beside its original and print PSNR, SSIM and code sparsity.")

    @OptionGroup var model: ModelOptions

    @OptionGroup var loss: LossOptions

    @Option(help: "Weights (safetensors with the reference model's tensor names, docs/model.md).")
    var weights: String

    @Option(help: "Folder of images (.jpg, .jpeg, .png); each is resized and centre-cropped to the model's size.")
    var input: String

    @Option(help: "Output folder for NAME-original.jpg and NAME-reconstruction.jpg.")
    var out: String

    @Option(help: "Images per forward pass.")
    var batch: Int = 8

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1.") }
    }

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let base = model.prepare()
        let loaded = try WeightsFile.load(weights, layout: ParameterLayout(config: base))
        // The weights' own beta and latent weight, unless given here.
        let config = try loss.apply(to: base.applying(weightsMetadata: loaded.metadata))
        if !loaded.unknownNames.isEmpty {
            printError("warning: \(weights): ignoring tensors this model does not use: \(loaded.unknownNames.joined(separator: ", "))")
        }
        let result = try Reconstruction(config: config, parameters: loaded.parameters, inputFolder: input,
                                        outputFolder: out, batchSize: batch)
        for (file, reason) in result.skipped { printError("warning: skipped \(file): \(reason)") }
        for item in result.items {
            print("\(item.source): PSNR \(String(format: "%.2f", item.psnr)) dB, SSIM \(String(format: "%.4f", item.ssim))")
        }
        print("\(result.items.count) images: mean PSNR \(String(format: "%.2f", result.meanPSNR)) dB, mean SSIM \(String(format: "%.4f", result.meanSSIM)), code sparsity \(String(format: "%.4f", result.sparsity)); written to \(out)")
    }
}
