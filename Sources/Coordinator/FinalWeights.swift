import TensorFiles
import Foundation
import Wire

/// The final weights as a safetensors file, from the named tensors rank 0 uploaded. The
/// coordinator knows no layers: names, shapes and bytes pass through as they came (the reference model's names, docs/model.md).
public enum FinalWeights {
    /// What the weights are the weights of: their configuration and the loss settings that change
    /// what the model computes (beta sets LISTA's threshold, so the codes), written into the
    /// file's metadata so that the tools that load it use the same.
    public struct Model: Equatable, Sendable {
        public var config: String
        public var beta: Double
        public var latentWeight: LatentWeight

        public init(config: String, beta: Double = 1, latentWeight: LatentWeight = .value(1)) {
            self.config = config
            self.beta = beta
            self.latentWeight = latentWeight
        }

        public init(_ settings: CoordinatorSettings) {
            self.init(config: settings.config, beta: settings.beta, latentWeight: settings.latentWeight)
        }

        /// The safetensors metadata entries: config, beta, latent_weight.
        public var metadata: [String: String] {
            ["config": config, "beta": "\(beta)", "latent_weight": latentWeight.description]
        }
    }

    /// `DIR/final/model.safetensors`.
    public static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("final/model.safetensors")
    }

    /// Writes `tensors` (in layout order) with metadata step, epoch, the model's (`Model.metadata`)
    /// and the CRC32C of each tensor; returns the file's path. The write is atomic (temporary
    /// name, rename).
    @discardableResult
    public static func write(_ tensors: [NamedTensor], step: Int, epoch: Int, model: Model,
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
        let metadata = ["format": "pt", "step": "\(step)", "epoch": "\(epoch)", "crc32c": checksums.serialized()]
            .merging(model.metadata) { first, _ in first }
        do {
            try SafeTensors.write(tensors, metadata: metadata, to: file)
        } catch {
            throw CoordinatorFailure.cannotWrite(path: file, reason: "\(error)")
        }
        return file
    }
}
