import Dataset
import Foundation
import Images

/// The images a tool reads: every .jpg/.jpeg/.png of a folder (sorted by name), or one file;
/// each decoded, resized and centre-cropped to the model's size as `scvae reconstruct` does.
public struct ImageInputs: Sendable {
    /// Paths, in the order the tool processes them.
    public let paths: [String]

    /// `path` is a folder or one image file.
    public init(path: String) throws(CodesError) {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw .image(path: path, reason: "no such file or folder")
        }
        if isFolder.boolValue {
            let names: [String]
            do { names = try DatasetIndex.imageNames(inFolder: path) } catch {
                throw .image(path: path, reason: "cannot list the folder: \(error)")
            }
            paths = names.map { (path as NSString).appendingPathComponent($0) }
            guard !paths.isEmpty else { throw .noImages(path: path) }
        } else {
            paths = [path]
        }
    }

    public init(paths: [String]) {
        self.paths = paths
    }

    /// One image as the model's input (CHW floats in [-1, 1], S x S); an unreadable or undecodable
    /// file is an error naming it.
    public static func load(_ path: String, size: Int, decoder: ImageDecoder = ImageDecoder()) throws(CodesError) -> [Float] {
        let image: RGBImage
        do { image = try decoder.decodeFile(atPath: path, shorterSideAtLeast: size) } catch {
            throw .image(path: path, reason: error.description)
        }
        return ImageTransform(size: size, mode: .evaluation).apply(image, seed: 0, epoch: 0, sampleIndex: 0)
    }

    /// Encodes the images `batchSize` at a time, handing each batch's dense codes to `body` with
    /// the range of image numbers they belong to.
    public func encode(with model: CodeModel, _ body: (Range<Int>, [Float]) throws -> Void) throws {
        let decoder = ImageDecoder()
        for first in stride(from: 0, to: paths.count, by: model.batchSize) {
            let range = first..<min(first + model.batchSize, paths.count)
            var inputs: [Float] = []
            inputs.reserveCapacity(range.count * model.imageFloats)
            for i in range { inputs += try Self.load(paths[i], size: model.config.imageSize, decoder: decoder) }
            try body(range, model.encode(inputs))
        }
    }
}
