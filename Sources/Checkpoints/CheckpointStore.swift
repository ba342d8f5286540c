#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TensorFiles

/// A directory of checkpoints, one subdirectory per step (see CheckpointName), of which the newest
/// `keep` are kept. Writes are atomic: a reader (or a crash) sees a checkpoint whole or not at all.
/// One process writes a directory at a time: the one holding its `CheckpointDirectoryLock`.
public struct CheckpointStore: Sendable {
    public let directory: String
    /// How many checkpoints `write` keeps, at least 1.
    public let keep: Int
    /// Whether a rewrite of an existing step may swap it out in one step (renameat2); tests turn
    /// it off to exercise the path of systems that cannot.
    var replacesByExchange = true

    /// `keep` below 1 is taken as 1: the checkpoint just written is always kept.
    public init(directory: String, keep: Int = 3) {
        self.directory = directory
        self.keep = max(1, keep)
    }

    /// Writes DIR/step-NNNNNNNN/ atomically: its files are written into a temporary sibling
    /// (DIR/.step-NNNNNNNN.tmp-PID), each fsynced, the temporary is fsynced, renamed into place
    /// (an existing checkpoint of the same step is swapped out atomically) and DIR is fsynced.
    /// A failure throws `.writeFailed`, removes the temporary and leaves every existing checkpoint
    /// untouched. Then only the newest `keep` checkpoints are kept, never deleting the one just
    /// written. A directory holding a checkpoint of another configuration is refused
    /// (`.configMismatch`), as pruning would delete it. Returns the checkpoint's path.
    @discardableResult
    public func write(_ checkpoint: Checkpoint) throws(CheckpointError) -> String {
        try Self.validate(checkpoint)
        let state = checkpoint.state
        do {
            try FileSystem.makeDirectories(directory)
        } catch {
            throw .writeFailed(path: directory, reason: error.description)
        }
        try refuseOtherConfiguration(than: state.config)

        let target = path(of: CheckpointName.directory(step: state.step))
        try writeFolder(checkpoint, to: target, purpose: "tmp")
        try prune(sparing: target)
        return target
    }

    /// The folder of the best checkpoint a validation found (`DIR/best`).
    public var bestPath: String { path(of: CheckpointName.best) }

    /// Writes `DIR/best/` (the layout of a checkpoint, plus `summary.json` = `summary`) atomically
    /// as `write` does, replacing the previous best in one step; never pruned, and not a
    /// checkpoint a run resumes from. Returns its path.
    @discardableResult
    public func writeBest(_ checkpoint: Checkpoint, summary: [UInt8]) throws(CheckpointError) -> String {
        try Self.validate(checkpoint)
        do {
            try FileSystem.makeDirectories(directory)
        } catch {
            throw .writeFailed(path: directory, reason: error.description)
        }
        try writeFolder(checkpoint, to: bestPath, purpose: "best", extraFiles: [(CheckpointName.summary, summary)])
        return bestPath
    }

    /// Writes the checkpoint's files (and `extraFiles`) into a temporary sibling of `target`, each
    /// fsynced, then renames it into place (swapping out what was there) and fsyncs DIR.
    private func writeFolder(_ checkpoint: Checkpoint, to target: String, purpose: String,
                             extraFiles: [(name: String, bytes: [UInt8])] = []) throws(CheckpointError) {
        let state = checkpoint.state
        let temporary = path(of: CheckpointName.temporary(step: state.step, purpose: purpose, processID: getpid()))
        let replaced: String?
        do {
            try FileSystem.removeTree(temporary)  // left by a crashed process that had our id
            try FileSystem.makeDirectory(temporary)
            // One file encoded at a time, so memory holds at most one file's bytes beside the tensors.
            try FileSystem.writeNewFile(ChecksummedTensorFile.encode(checkpoint.model, state: state),
                                        to: temporary + "/" + CheckpointName.model)
            try FileSystem.writeNewFile(ChecksummedTensorFile.encode(checkpoint.optimizer, state: state),
                                        to: temporary + "/" + CheckpointName.optimizer)
            try FileSystem.writeNewFile(CheckpointStateFile.encode(state), to: temporary + "/" + CheckpointName.state)
            for (name, bytes) in extraFiles { try FileSystem.writeNewFile(bytes, to: temporary + "/" + name) }
            try FileSystem.syncDirectory(temporary)
            replaced = try moveIntoPlace(temporary, target: target, step: state.step)
            try FileSystem.syncDirectory(directory)
        } catch {
            try? FileSystem.removeTree(temporary)
            if let error = error as? CheckpointError { throw error }  // a tensor the codec refused
            throw .writeFailed(path: target, reason: "\(error)")
        }
        if let replaced { try? FileSystem.removeTree(replaced) }  // else removeTemporaries() will
    }

    /// Complete checkpoint directories (named step-NNNNNNNN), ascending by step; temporaries and
    /// anything else are ignored. Empty when the directory does not exist.
    public func checkpointPaths() -> [String] {
        checkpoints().map(\.path)
    }

    private func checkpoints() -> [(step: Int, path: String)] {
        let names = FileSystem.entries(of: directory) ?? []
        return names
            .compactMap { name in CheckpointName.step(ofDirectory: name).map { (step: $0, name: name) } }
            .filter { FileSystem.isDirectory(path(of: $0.name)) }
            .sorted { ($0.step, $0.name) < ($1.step, $1.name) }
            .map { (step: $0.step, path: path(of: $0.name)) }
    }

    /// Leftovers of interrupted writes or removals (DIR/.step-*), by name.
    public func temporaryPaths() -> [String] {
        (FileSystem.entries(of: directory) ?? []).filter(CheckpointName.isTemporary).sorted().map(path(of:))
    }

    /// The newest checkpoint that loads and verifies; each newer one that does not is skipped with
    /// a call of `warning` naming the file and the reason, as is each leftover temporary. nil when
    /// there is none.
    public func loadNewestValid(warning: (String) -> Void) -> Checkpoint? {
        loadNewestValid(warning: warning) { candidate, error in warning("checkpoint \(candidate) skipped: \(error)") }
    }

    /// The newest checkpoint that loads and verifies, as `loadNewestValid`; each newer one that does
    /// not is moved to DIR/corrupt/ (named in `warning` with the reason and where it went), so the
    /// folder holds only checkpoints that verify and a later prune never keeps a broken one in
    /// place of a good one. Only under the directory's lock.
    public func loadNewestValid(quarantining lock: CheckpointDirectoryLock, warning: (String) -> Void) -> Checkpoint? {
        precondition(lock.directory == directory && lock.isHeld, "quarantining needs the lock of \(directory)")
        return loadNewestValid(warning: warning) { candidate, error in
            let name = (candidate as NSString).lastPathComponent
            let aside = path(of: "corrupt/\(name)-\(Int(Date().timeIntervalSince1970))")
            do {
                try FileSystem.makeDirectories(path(of: "corrupt"))
                try FileSystem.rename(candidate, to: aside)
                try? FileSystem.syncDirectory(directory)
                warning("checkpoint \(candidate) skipped: \(error); moved to \(aside)")
            } catch let failure {
                warning("checkpoint \(candidate) skipped: \(error); it could not be moved aside (\(failure))")
            }
        }
    }

    private func loadNewestValid(warning: (String) -> Void, invalid: (String, CheckpointError) -> Void) -> Checkpoint? {
        for temporary in temporaryPaths() {
            warning("\(temporary): left by an interrupted checkpoint write or removal; ignored")
        }
        for candidate in checkpointPaths().reversed() {
            do {
                return try CheckpointFile.load(candidate)
            } catch {
                invalid(candidate, error)
            }
        }
        return nil
    }

    /// Removes leftover temporaries (from a crash mid-write); returns the paths it removed. Only
    /// under the directory's lock: without it, the temporaries could be another process's
    /// checkpoint being written.
    public func removeTemporaries(holding lock: CheckpointDirectoryLock) -> [String] {
        precondition(lock.directory == directory && lock.isHeld, "removeTemporaries needs the lock of \(directory)")
        return temporaryPaths().filter { (try? FileSystem.removeTree($0)) != nil }
    }

    private func path(of name: String) -> String {
        directory + "/" + name
    }

    /// Refuses, before the disk is touched, a checkpoint that could not be loaded back.
    private static func validate(_ checkpoint: Checkpoint) throws(CheckpointError) {
        let state = checkpoint.state
        guard state.formatVersion == CheckpointState.currentFormatVersion else {
            throw .invalidCheckpoint(reason: "format version \(state.formatVersion); this build writes \(CheckpointState.currentFormatVersion)")
        }
        if let problem = state.implausibility { throw .invalidCheckpoint(reason: problem) }
        if let problem = Checkpoint.optimizerMismatch(model: checkpoint.model, optimizer: checkpoint.optimizer) {
            throw .invalidCheckpoint(reason: problem)
        }
    }

    /// Refuses a directory whose checkpoints (those whose state.json reads) are of another
    /// configuration.
    private func refuseOtherConfiguration(than config: String) throws(CheckpointError) {
        for existing in checkpointPaths() {
            guard let state = try? CheckpointFile.readState(existing + "/" + CheckpointName.state) else { continue }
            if state.config != config {
                throw .configMismatch(path: existing, expected: config, found: state.config)
            }
        }
    }

    /// Renames the complete temporary to `target`. An existing checkpoint there is swapped out in
    /// one step where the system can (Linux renameat2); elsewhere it is first moved aside, so a
    /// crash in between loses only this step, never an older one. Returns where the replaced
    /// checkpoint now is, to be removed once the new one is durable.
    private func moveIntoPlace(_ temporary: String, target: String, step: Int) throws -> String? {
        guard FileSystem.isDirectory(target) else {
            try FileSystem.rename(temporary, to: target)
            return nil
        }
        if replacesByExchange, try FileSystem.exchange(temporary, target) { return temporary }
        let aside = path(of: CheckpointName.temporary(step: step, purpose: "old", processID: getpid()))
        try FileSystem.rename(target, to: aside)
        do {
            try FileSystem.rename(temporary, to: target)
        } catch {
            try? FileSystem.rename(aside, to: target)
            throw error
        }
        return aside
    }

    /// Removes all but the newest `keep` checkpoints, never `spared`. Each is first renamed to a
    /// temporary, so a crash mid-removal never leaves a partial checkpoint under a valid name.
    private func prune(sparing spared: String) throws(CheckpointError) {
        let excess = checkpoints().dropLast(keep).filter { $0.path != spared }
        var firstFailure: CheckpointError?
        for (step, old) in excess {
            let doomed = path(of: CheckpointName.temporary(step: step, purpose: "removing", processID: getpid()))
            do {
                try FileSystem.rename(old, to: doomed)
                try FileSystem.removeTree(doomed)
            } catch {
                if firstFailure == nil { firstFailure = .pruneFailed(path: old, reason: error.description) }
            }
        }
        try? FileSystem.syncDirectory(directory)
        if let firstFailure { throw firstFailure }
    }
}
