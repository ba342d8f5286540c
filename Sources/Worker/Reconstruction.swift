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
            let (outputs, terms) = Self.forward(model, parameters: parameters, inputs: inputs, batch: pending.count)
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
                let (a, b) = (Self.unitRange(original), Self.unitRange(rebuilt))
                items.append(Item(source: entry.name, psnr: ImageQuality.psnr(a, b),
                                  ssim: ImageQuality.ssim(a, b, channels: 3, height: size, width: size)))
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

    /// The model's reconstruction of `batch` images (CHW in [-1, 1], one after another).
    static func forward(_ model: SCVAEModel, parameters: [Float], inputs: [Float], batch: Int) -> ([Float], LossTerms) {
        var outputs = [Float](repeating: 0, count: inputs.count)
        let terms = parameters.withUnsafeBufferPointer { params in
            inputs.withUnsafeBufferPointer { x in
                outputs.withUnsafeMutableBufferPointer { y in
                    model.forward(parameters: params, images: x.baseAddress!, batch: batch, reconstruction: y.baseAddress!)
                }
            }
        }
        return (outputs, terms)
    }

    /// A picture of how a model reconstructs images: the originals (resized and centre-cropped
    /// to the model's size, as `scvae reconstruct` does) in the top row, each reconstruction
    /// below its original, 2 white pixels between; with the mean PSNR. Files that do not decode
    /// are left out.
    public static func grid(config: ModelConfig, parameters: [Float], imagePaths: [String]) throws -> (image: RGBImage, meanPSNR: Double, count: Int) {
        let size = config.imageSize
        let transform = ImageTransform(size: size, mode: .evaluation)
        let decoder = ImageDecoder()
        var inputs: [Float] = []
        for path in imagePaths {
            guard let image = try? decoder.decodeFile(atPath: path, shorterSideAtLeast: size) else { continue }
            inputs += transform.apply(image, seed: 0, epoch: 0, sampleIndex: 0)
        }
        let count = inputs.count / transform.outputCount
        guard count > 0 else { throw ImageError.corrupt(file: imagePaths.first ?? "<none>", reason: "none of the \(imagePaths.count) images decodes") }
        let (outputs, _) = forward(SCVAEModel(config: config, maxBatch: count), parameters: parameters, inputs: inputs, batch: count)
        let (image, psnr) = grid(originals: inputs, reconstructions: outputs, count: count, size: size)
        return (image, psnr, count)
    }

    /// The grid's picture from `count` images (CHW in [-1, 1], one after another) and their
    /// reconstructions: originals in the top row, reconstructions below, 2 white pixels between;
    /// with the images' mean PSNR (as `scvae reconstruct` measures it).
    public static func grid(originals inputs: [Float], reconstructions outputs: [Float], count: Int, size: Int) -> (image: RGBImage, meanPSNR: Double) {
        let imageFloats = 3 * size * size
        let gap = 2, width = count * size + (count + 1) * gap, height = 2 * size + 3 * gap
        var pixels = [UInt8](repeating: 255, count: width * height * 3)
        var psnr = 0.0
        for i in 0..<count {
            let range = (i * imageFloats)..<((i + 1) * imageFloats)
            let original = Array(inputs[range]), rebuilt = Array(outputs[range])
            psnr += ImageQuality.psnr(unitRange(original), unitRange(rebuilt))
            for (row, values) in [original, rebuilt].enumerated() {
                let tile = values.withUnsafeBufferPointer { RGBImage(chwSigned: $0, width: size, height: size) }
                let left = gap + i * (size + gap), top = gap + row * (size + gap)
                for y in 0..<size {
                    let from = y * size * 3, to = ((top + y) * width + left) * 3
                    pixels.replaceSubrange(to..<(to + size * 3), with: tile.pixels[from..<(from + size * 3)])
                }
            }
        }
        return (RGBImage(width: width, height: height, pixels: pixels), count == 0 ? 0 : psnr / Double(count))
    }

    /// Model values in [-1, 1] (clamped) as [0, 1], the range PSNR and SSIM are measured on.
    static func unitRange(_ values: [Float]) -> [Float] {
        values.map { (min(max($0, -1), 1) + 1) / 2 }
    }
}
