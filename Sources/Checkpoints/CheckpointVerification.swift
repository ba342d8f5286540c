import TensorFiles
/// What `scvae checkpoint verify PATH` found: PATH is one checkpoint directory, or a directory of
/// checkpoints, each of which is loaded and verified.
public struct CheckpointVerification: Equatable, Sendable {
    public struct Outcome: Equatable, Sendable {
        public var path: String
        public var result: Result<CheckpointSummary, CheckpointError>

        public var failure: CheckpointError? {
            if case .failure(let error) = result { return error }
            return nil
        }
    }

    /// True when PATH was a directory of checkpoints rather than one checkpoint.
    public var isDirectoryOfCheckpoints: Bool
    /// One per checkpoint, ascending by step.
    public var outcomes: [Outcome]
    /// Leftovers of interrupted writes in a directory of checkpoints.
    public var temporaries: [String]

    /// The checkpoint a resume would use: the newest that verified.
    public var resumePath: String? {
        outcomes.last { $0.failure == nil }?.path
    }

    /// At least one checkpoint, and every one verified.
    public var allValid: Bool {
        !outcomes.isEmpty && outcomes.allSatisfy { $0.failure == nil }
    }

    /// Verifies PATH. It is taken as one checkpoint when it is named step-NNNNNNNN or holds any of a
    /// checkpoint's files, else as a directory of checkpoints (which may hold none).
    public static func verify(_ path: String) throws(CheckpointError) -> CheckpointVerification {
        guard FileSystem.exists(path) else { throw .missingFile(path: path) }
        guard FileSystem.isDirectory(path) else { throw .notACheckpoint(path: path) }
        if isCheckpointDirectory(path) {
            return CheckpointVerification(isDirectoryOfCheckpoints: false, outcomes: [outcome(path)], temporaries: [])
        }
        let store = CheckpointStore(directory: path)
        return CheckpointVerification(isDirectoryOfCheckpoints: true,
                                      outcomes: store.checkpointPaths().map(outcome),
                                      temporaries: store.temporaryPaths())
    }

    private static func isCheckpointDirectory(_ path: String) -> Bool {
        let name = path.split(separator: "/").last ?? ""
        if CheckpointName.step(ofDirectory: name) != nil { return true }
        return [CheckpointName.model, CheckpointName.optimizer, CheckpointName.state]
            .contains { FileSystem.exists(path + "/" + $0) }
    }

    private static func outcome(_ path: String) -> Outcome {
        do {
            return Outcome(path: path, result: .success(try CheckpointFile.summary(path)))
        } catch {
            return Outcome(path: path, result: .failure(error))
        }
    }
}
