import Data
import Foundation
import Wire

/// The final weights as a safetensors file, from the named tensors rank 0 uploaded. The
/// coordinator knows no layers: names, shapes and bytes pass through as they came (SCVAE.md names).
public enum FinalWeights {
    /// `DIR/final/model.safetensors`.
    public static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("final/model.safetensors")
    }

    /// Writes `tensors` (in upload order) with metadata step, epoch, config and the CRC32C of each
    /// tensor; returns the file's path. The write is atomic (temporary name, rename).
    @discardableResult
    public static func write(_ tensors: [TensorAssembler.Tensor], step: Int, epoch: Int, config: String,
                             into directory: String) throws -> String {
        let file = path(in: directory)
        let folder = (file as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw CoordinatorFailure.cannotWrite(path: folder, reason: "\(error)")
        }
        var named: [NamedTensor] = []
        var checksums: [String] = []
        for tensor in tensors.sorted(by: { $0.index < $1.index }) {
            guard tensor.dtype == .float32 else {
                throw CoordinatorFailure.upload("tensor \(tensor.name) is \(tensor.dtype), expected float32")
            }
            named.append(NamedTensor(name: tensor.name, shape: tensor.shape.map { Int($0) }, dtype: .F32, data: tensor.bytes))
            checksums.append("\"\(tensor.name)\": \"\(String(format: "%08x", crc32c(tensor.bytes)))\"")
        }
        let metadata = ["format": "pt", "step": "\(step)", "epoch": "\(epoch)", "config": config,
                        "crc32c": "{" + checksums.joined(separator: ", ") + "}"]
        do {
            try SafeTensors.write(named, metadata: metadata, to: file)
        } catch {
            throw CoordinatorFailure.cannotWrite(path: file, reason: "\(error)")
        }
        return file
    }
}
