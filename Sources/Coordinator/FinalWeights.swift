import TensorFiles
import Foundation
import Wire

/// The final weights as a safetensors file, from the named tensors rank 0 uploaded. The
/// coordinator knows no layers: names, shapes and bytes pass through as they came (the reference model's names, docs/model.md).
public enum FinalWeights {
    /// `DIR/final/model.safetensors`.
    public static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("final/model.safetensors")
    }

    /// Writes `tensors` (in layout order) with metadata step, epoch, config and the CRC32C of each
    /// tensor; returns the file's path. The write is atomic (temporary name, rename).
    @discardableResult
    public static func write(_ tensors: [NamedTensor], step: Int, epoch: Int, config: String,
                             into directory: String) throws -> String {
        let file = path(in: directory)
        let folder = (file as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw CoordinatorFailure.cannotWrite(path: folder, reason: "\(error)")
        }
        // Names came from a worker: serialised as JSON strings, whatever characters they hold.
        let checksums = JSONValue.object(tensors.map { (key: $0.name, value: .string(String(format: "%08x", $0.crc32c))) })
        let metadata = ["format": "pt", "step": "\(step)", "epoch": "\(epoch)", "config": config,
                        "crc32c": checksums.serialized()]
        do {
            try SafeTensors.write(tensors, metadata: metadata, to: file)
        } catch {
            throw CoordinatorFailure.cannotWrite(path: file, reason: "\(error)")
        }
        return file
    }
}
