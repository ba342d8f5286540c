import Foundation

extension CodesFile {
    /// The codes of every image of `inputs`, made by `model`'s weights.
    public static func encode(_ inputs: ImageInputs, with model: CodeModel) throws -> CodesFile {
        var codes = SparseCodes(atoms: model.config.atoms)
        try inputs.encode(with: model) { _, dense in codes.append(dense: dense) }
        return CodesFile(codes: codes, config: model.config.name, imageSize: model.config.imageSize,
                         latentSide: model.config.latentSize, files: inputs.paths,
                         weightsFingerprint: model.weights.fingerprint,
                         weightsFile: (model.weights.path as NSString).lastPathComponent)
    }

    /// Decodes the images `model.batchSize` at a time; `body` gets each image's number and its
    /// floats (CHW in [-1, 1]). The model must be the weights' the codes were checked against.
    public func decode(with model: CodeModel, _ body: (Int, [Float]) throws -> Void) rethrows {
        precondition(model.codeFloats == positions * codes.atoms, "decode: the model does not fit these codes")
        for first in stride(from: 0, to: imageCount, by: model.batchSize) {
            let count = min(model.batchSize, imageCount - first)
            let images = model.decode(codes.dense(rows: (first * positions)..<((first + count) * positions)))
            for i in 0..<count {
                try body(first + i, Array(images[(i * model.imageFloats)..<((i + 1) * model.imageFloats)]))
            }
        }
    }
}
