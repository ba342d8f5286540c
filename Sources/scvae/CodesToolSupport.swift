import Codes
import Images
import TensorFiles

/// Weights for a tool on the codes, checked against --config; unused tensors are warned about.
func loadWeights(_ path: String, options: ModelOptions) throws -> TrainedWeights {
    let weights = try TrainedWeights(path: path, config: options.prepare())
    if !weights.unknownNames.isEmpty {
        printError("warning: \(path): ignoring tensors this model does not use: \(weights.unknownNames.joined(separator: ", "))")
    }
    return weights
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
