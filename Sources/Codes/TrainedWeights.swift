import Dataset
import Model
import TensorFiles
import Worker

/// Weights checked against a configuration, with the fingerprint that ties codes to them.
public struct TrainedWeights: Sendable {
    public let path: String
    public let config: ModelConfig
    public let parameters: [Float]
    /// SHA-256 of the file's bytes as 64 hex digits (what `sha256sum` prints).
    public let fingerprint: String
    /// Tensors of the file this model does not use (the authors' extras), to warn about.
    public let unknownNames: [String]

    /// Reads `path` for `config`. Weights of another configuration (a missing or mis-shaped tensor,
    /// or metadata naming another configuration) are refused naming the file.
    public init(path: String, config: ModelConfig) throws(CodesError) {
        let bytes: [UInt8]
        do { bytes = try BinaryFile.read(path) } catch { throw .weights(path: path, reason: error.description) }
        let loaded: (parameters: [Float], unknownNames: [String], metadata: [String: String])
        do {
            loaded = try WeightsFile.load(path, layout: ParameterLayout(config: config))
        } catch let error as WeightsFileError {
            switch error {
            case let .mismatch(_, reason):
                throw .weights(path: path, reason: "not weights of configuration \(config.name): \(reason)")
            case let .unreadable(_, reason), let .unsupported(_, reason):
                throw .weights(path: path, reason: reason)
            }
        } catch {
            throw .weights(path: path, reason: "\(error)")
        }
        if let named = loaded.metadata["config"], named != config.name {
            throw .weights(path: path, reason: "made for configuration \(named), not \(config.name) (--config)")
        }
        self.path = path
        // The beta the weights were trained with sets the threshold of the codes.
        self.config = config.applying(weightsMetadata: loaded.metadata)
        parameters = loaded.parameters
        unknownNames = loaded.unknownNames
        fingerprint = SHA256.hex(bytes)
    }
}
