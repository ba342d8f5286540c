import Foundation
import TensorFiles

/// The training state beside the tensors of a checkpoint: `state.json`. It holds what, with the
/// weights and the Adam moments, continues a run bit-identically.
public struct CheckpointState: Codable, Equatable, Sendable {
    /// The version of the checkpoint format this build writes and reads.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    /// Optimizer steps applied in total.
    public var step: Int
    /// Epoch of the sampler cursor.
    public var epoch: Int
    /// Sampler cursor of the next step: its epoch and its step within that epoch.
    public var cursorEpoch: Int
    public var cursorStep: Int
    /// Adam's update count t (for bias correction).
    public var optimizerStep: Int
    public var worldSize: Int
    /// Model configuration name, e.g. "tiny".
    public var config: String
    public var globalBatch: Int
    public var seed: UInt64
    public var datasetFingerprint: String
    public var codeVersion: String
    /// The training settings as JSON; opaque here.
    public var recipeJSON: String
    /// How random state is kept. Augmentation is keyed by (seed, epoch, sample), so there is no
    /// stream to save: e.g. "keyed-splitmix64".
    public var rng: String

    public init(formatVersion: Int = CheckpointState.currentFormatVersion, step: Int, epoch: Int,
                cursorEpoch: Int, cursorStep: Int, optimizerStep: Int, worldSize: Int, config: String,
                globalBatch: Int, seed: UInt64, datasetFingerprint: String, codeVersion: String,
                recipeJSON: String, rng: String) {
        self.formatVersion = formatVersion
        self.step = step
        self.epoch = epoch
        self.cursorEpoch = cursorEpoch
        self.cursorStep = cursorStep
        self.optimizerStep = optimizerStep
        self.worldSize = worldSize
        self.config = config
        self.globalBatch = globalBatch
        self.seed = seed
        self.datasetFingerprint = datasetFingerprint
        self.codeVersion = codeVersion
        self.recipeJSON = recipeJSON
        self.rng = rng
    }

    /// The first value that no run can have, described; nil when every value is possible.
    var implausibility: String? {
        let counters = [("step", step), ("epoch", epoch), ("cursorEpoch", cursorEpoch),
                        ("cursorStep", cursorStep), ("optimizerStep", optimizerStep)]
        if let negative = counters.first(where: { $0.1 < 0 }) {
            return "\(negative.0) is negative (\(negative.1))"
        }
        if worldSize < 1 { return "worldSize must be at least 1, not \(worldSize)" }
        if globalBatch < 1 { return "globalBatch must be at least 1, not \(globalBatch)" }
        if config.isEmpty { return "config is empty" }
        return nil
    }
}

/// state.json as text: pretty-printed with sorted keys, so two equal states give equal files.
enum CheckpointStateFile {
    static func encode(_ state: CheckpointState) throws(CheckpointError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            return Array(try encoder.encode(state)) + [UInt8(ascii: "\n")]
        } catch {
            throw .invalidCheckpoint(reason: "state cannot be encoded as JSON: \(error)")
        }
    }

    /// Parses and checks state.json; `path` names it in errors. The version is read first, so a
    /// newer format is reported as such rather than as malformed.
    static func decode(_ bytes: [UInt8], path: String) throws(CheckpointError) -> CheckpointState {
        struct VersionOnly: Decodable { var formatVersion: Int }
        let text = Foundation.Data(bytes)
        let decoder = JSONDecoder()
        let version: Int
        do {
            version = try decoder.decode(VersionOnly.self, from: text).formatVersion
        } catch {
            throw .malformedState(path: path, reason: reason(error))
        }
        guard version == CheckpointState.currentFormatVersion else {
            throw .unsupportedFormatVersion(path: path, version: version)
        }
        let state: CheckpointState
        do {
            state = try decoder.decode(CheckpointState.self, from: text)
        } catch {
            throw .malformedState(path: path, reason: reason(error))
        }
        if let problem = state.implausibility { throw .malformedState(path: path, reason: problem) }
        return state
    }

    /// A sentence for a person out of Foundation's decoding error.
    private static func reason(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func field(_ path: [any CodingKey]) -> String {
            path.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, _): return "field '\(key.stringValue)' is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "field '\(field(context.codingPath))' has the wrong type"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "field '\(field(context.codingPath))' is out of range"
        @unknown default: return "\(error)"
        }
    }
}
