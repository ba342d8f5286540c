import ArgumentParser
import CommandOptions
import Codes
import Images
import TensorFiles

/// The options every tool on the codes shares: configuration, BLAS threads, weights, logging.
struct WeightsOptions: ParsableArguments {
    @OptionGroup var model: ModelOptions

    @Option(help: "Weights (safetensors with the reference model's tensor names, docs/model.md); codes are tied to them by their SHA-256.")
    var weights: String

    @OptionGroup var logging: LoggingOptions

    /// Starts logging and reads the weights, checked against --config; unused tensors are warned about.
    func load() throws -> TrainedWeights {
        logging.bootstrap()
        let loaded = try TrainedWeights(path: weights, config: model.prepare())
        if !loaded.unknownNames.isEmpty {
            printError("warning: \(weights): ignoring tensors this model does not use: \(loaded.unknownNames.joined(separator: ", "))")
        }
        return loaded
    }
}

/// Writes a model image (CHW floats in [-1, 1], side x side) as PNG.
func writePNG(_ image: [Float], side: Int, to path: String) throws {
    let picture = image.withUnsafeBufferPointer { RGBImage(chwSigned: $0, width: side, height: side) }
    try BinaryFile.writeAtomically(try encodePNG(picture), to: path)
}

/// Writes a picture as PNG.
func writePNG(_ picture: RGBImage, to path: String) throws {
    try BinaryFile.writeAtomically(try encodePNG(picture), to: path)
}
