import TensorFiles
import Images
import Dataset
import Foundation
import Model

/// Reconstructs a folder of images with a trained model and measures how close they come back
/// (`scvae reconstruct`): PSNR and SSIM on [0, 1] images, and the fraction of zero codes.
public struct Reconstruction {
    public struct Item: Sendable {
        public var source: String
        public var psnr: Double
        public var ssim: Double
    }

    public var items: [Item] = []
    /// Files that could not be decoded, with the reason; they are skipped.
    public var skipped: [(file: String, reason: String)] = []
    public var sparsity: Double = 0

    public var meanPSNR: Double { items.isEmpty ? 0 : items.map(\.psnr).reduce(0, +) / Double(items.count) }
    public var meanSSIM: Double { items.isEmpty ? 0 : items.map(\.ssim).reduce(0, +) / Double(items.count) }

    /// Every .jpg/.jpeg/.png of `inputFolder` (sorted) is resized and centre-cropped to the model's
    /// size, reconstructed, and written to `outputFolder` as NAME-original.jpg beside
    /// NAME-reconstruction.jpg.
    public init(config: ModelConfig, parameters: [Float], inputFolder: String, outputFolder: String, batchSize: Int = 8) throws {
        let fileManager = FileManager.default
        let names = try DatasetIndex.imageNames(inFolder: inputFolder)
        try fileManager.createDirectory(atPath: outputFolder, withIntermediateDirectories: true)
        let size = config.imageSize
        let transform = ImageTransform(size: size, mode: .evaluation)
        let decoder = ImageDecoder()
        let model = SCVAEModel(config: config, maxBatch: batchSize)
        var zeroCodes = 0, codes = 0

        var pending: [(name: String, values: [Float])] = []
        func flush() throws {
            guard !pending.isEmpty else { return }
            let inputs = pending.flatMap(\.values)
            var outputs = [Float](repeating: 0, count: inputs.count)
            let terms = parameters.withUnsafeBufferPointer { params in
                inputs.withUnsafeBufferPointer { x in
                    outputs.withUnsafeMutableBufferPointer { y in
                        model.forward(parameters: params, images: x.baseAddress!, batch: pending.count, reconstruction: y.baseAddress!)
                    }
                }
            }
            zeroCodes += terms.zeroCodes
            codes += terms.codeCount
            for (i, entry) in pending.enumerated() {
                let range = (i * transform.outputCount)..<((i + 1) * transform.outputCount)
                let original = Array(inputs[range]), rebuilt = Array(outputs[range])
                let stem = ((entry.name as NSString).deletingPathExtension as NSString).lastPathComponent
                for (suffix, values) in [("original", original), ("reconstruction", rebuilt)] {
                    let image = values.withUnsafeBufferPointer { RGBImage(chwSigned: $0, width: size, height: size) }
                    let path = (outputFolder as NSString).appendingPathComponent("\(stem)-\(suffix).jpg")
                    try BinaryFile.writeAtomically(try encodeJPEG(image, quality: 95), to: path)
                }
                let unit = { (v: [Float]) in v.map { (min(max($0, -1), 1) + 1) / 2 } }
                items.append(Item(source: entry.name,
                                  psnr: ImageQuality.psnr(unit(original), unit(rebuilt)),
                                  ssim: ImageQuality.ssim(unit(original), unit(rebuilt), channels: 3, height: size, width: size)))
            }
            pending.removeAll()
        }

        for name in names {
            let path = (inputFolder as NSString).appendingPathComponent(name)
            do {
                let image = try decoder.decodeFile(atPath: path, shorterSideAtLeast: size)
                pending.append((name, transform.apply(image, seed: 0, epoch: 0, sampleIndex: 0)))
            } catch {
                skipped.append((path, error.description))
            }
            if pending.count == batchSize { try flush() }
        }
        try flush()
        sparsity = codes == 0 ? 0 : Double(zeroCodes) / Double(codes)
    }
}
