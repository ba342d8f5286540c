import Foundation
import Images
import TensorFiles

/// A batch of images as the model takes them: float32 NCHW, `count` x 3 x size x size, in [-1, 1].
public struct ImageBatch: Sendable, Equatable {
    public var count: Int
    public var size: Int
    public var values: [Float]
    /// Where each image came from (file names for a folder, `path[i]` for an .npy).
    public var sources: [String]

    /// Why a batch could not be loaded; each case names the file.
    public enum LoadError: Error, Equatable, CustomStringConvertible {
        /// The .npy is not [N, 3, S, S] for the configuration's S.
        case wrongShape(file: String, shape: [Int], expectedSize: Int)
        /// An image in the folder is not S x S.
        case wrongImageSize(file: String, width: Int, height: Int, expectedSize: Int)
        /// The folder holds no image files.
        case noImages(folder: String)
        /// Reading or decoding failed.
        case unreadable(file: String, reason: String)

        public var description: String {
            switch self {
            case let .wrongShape(file, shape, size):
                return "\(file): shape \(shape), expected [N, 3, \(size), \(size)] (float32 NCHW in [-1, 1])"
            case let .wrongImageSize(file, width, height, size):
                return "\(file): \(width)x\(height), expected \(size)x\(size) (images are used as they are, not resampled)"
            case let .noImages(folder): return "\(folder): no .jpg, .jpeg or .png files"
            case let .unreadable(file, reason): return "\(file): \(reason)"
            }
        }
    }

    /// Loads a float32 `.npy` of shape [N, 3, S, S], or every image of a folder (sorted by name,
    /// each exactly S x S, mapped x / 127.5 - 1).
    public static func load(_ path: String, size: Int) throws(LoadError) -> ImageBatch {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadable(file: path, reason: "no such file or folder")
        }
        return isDirectory.boolValue ? try loadFolder(path, size: size) : try loadNPY(path, size: size)
    }

    static func loadNPY(_ path: String, size: Int) throws(LoadError) -> ImageBatch {
        let array: NPYArray
        do { array = try NPY.read(path) } catch { throw .unreadable(file: path, reason: error.description) }
        let shape = array.shape
        guard shape.count == 4, shape[0] >= 1, shape[1] == 3, shape[2] == size, shape[3] == size else {
            throw .wrongShape(file: path, shape: shape, expectedSize: size)
        }
        return ImageBatch(count: shape[0], size: size, values: array.values,
                          sources: (0..<shape[0]).map { "\(path)[\($0)]" })
    }

    static func loadFolder(_ folder: String, size: Int) throws(LoadError) -> ImageBatch {
        let names: [String]
        do {
            names = try DatasetIndex.imageNames(inFolder: folder)
        } catch {
            throw .unreadable(file: folder, reason: "\(error)")
        }
        guard !names.isEmpty else { throw .noImages(folder: folder) }
        let decoder = ImageDecoder()
        let transform = ImageTransform(size: size, mode: .evaluation)
        var values = [Float](repeating: 0, count: names.count * transform.outputCount)
        for (i, name) in names.enumerated() {
            let file = (folder as NSString).appendingPathComponent(name)
            let image: RGBImage
            do { image = try decoder.decodeFile(atPath: file) } catch { throw .unreadable(file: file, reason: error.description) }
            guard image.width == size, image.height == size else {
                throw .wrongImageSize(file: file, width: image.width, height: image.height, expectedSize: size)
            }
            values.withUnsafeMutableBufferPointer { buffer in
                let slot = UnsafeMutableBufferPointer(rebasing: buffer[(i * transform.outputCount)..<((i + 1) * transform.outputCount)])
                transform.apply(image, seed: 0, epoch: 0, sampleIndex: i, into: slot)
            }
        }
        return ImageBatch(count: names.count, size: size, values: values,
                          sources: names.map { (folder as NSString).appendingPathComponent($0) })
    }
}
