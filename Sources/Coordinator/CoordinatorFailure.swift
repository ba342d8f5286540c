import Checkpoints

/// Why a run ended with an error. Each case names the worker, rank, step, file or field involved.
public enum CoordinatorFailure: Error, CustomStringConvertible {
    /// Not every worker connected within the rendezvous timeout.
    case rendezvousTimedOut(seconds: Double, connected: [String], missingRanks: [Int], expected: Int)
    /// A worker was declared down (no message within the liveness deadline) while training.
    case workerDown(workerIDs: [String], ranks: [Int], deadlineSeconds: Double, step: Int)
    /// A worker aborted: it names its reason.
    case workerAborted(workerID: String, rank: Int?, reason: String)
    /// A worker process started by --local exited before the end of the run.
    case localWorkerExited(workerID: String, status: Int32)
    /// Replicas hold different parameters (docs/decisions.md, "Bit-identical replicas").
    case replicasDiverged(String)
    /// The parameter upload from rank 0 failed or was incomplete.
    case upload(String)
    /// A file could not be written.
    case cannotWrite(path: String, reason: String)
    /// The dataset could not be prepared or indexed.
    case dataset(String)
    /// The data cannot fill one global batch, or similar planning problems.
    case plan(String)
    /// --checkpoint-dir cannot be created or written, or another coordinator holds it.
    case checkpointDirectory(CheckpointDirectoryLock.Failure)
    /// ZeroMQ failed on the control socket.
    case transport(String)
    /// --ring-transport shm, but the ranks of a generation cannot share memory.
    case ringTransport(RingTransportChoice.NotColocated)
    /// The worker executable for --local was not found.
    case workerExecutableMissing(path: String)
    /// Interrupted (SIGINT/SIGTERM) before training started.
    case interruptedBeforeTraining
    /// Interrupted a second time while stopping: ends without saving.
    case interruptedTwice
    /// Interrupted while paused with no live worker: nothing newer than the checkpoint to save.
    case interruptedWhilePaused(checkpointStep: Int?)

    public var description: String {
        switch self {
        case let .rendezvousTimedOut(seconds, connected, missing, expected):
            "timed out after \(Int(seconds)) s waiting for \(expected) workers: \(connected.count) connected (\(connected.joined(separator: ", "))); missing ranks \(missing.map(String.init).joined(separator: ", "))"
        case let .workerDown(ids, ranks, deadline, step):
            "worker \(ids.joined(separator: ", ")) (rank \(ranks.map(String.init).joined(separator: ", "))) is down: silent for more than \(deadline) s at step \(step); elastic recovery is not built yet, so the run stops"
        case let .workerAborted(id, rank, reason):
            "worker \(id)\(rank.map { " (rank \($0))" } ?? "") aborted: \(reason)"
        case let .localWorkerExited(id, status): "local worker \(id) exited with status \(status) before the end of the run"
        case let .replicasDiverged(detail): detail
        case let .upload(detail): "final parameter upload failed: \(detail)"
        case let .cannotWrite(path, reason): "cannot write \(path): \(reason)"
        case let .dataset(detail): detail
        case let .plan(detail): detail
        case let .checkpointDirectory(.held(directory, holder)):
            "--checkpoint-dir \(directory) is in use by another coordinator (\(holder.map(\.description) ?? "it has not written its pid yet")): stop that run first, or give this one another --checkpoint-dir"
        case let .checkpointDirectory(failure): "--checkpoint-dir: \(failure)"
        case let .transport(detail): "control socket: \(detail)"
        case let .ringTransport(problem): "\(problem)"
        case let .workerExecutableMissing(path): "--local needs the scvae-worker executable next to this one; not found at \(path)"
        case .interruptedBeforeTraining: "interrupted before training started"
        case .interruptedTwice: "interrupted twice; stopping without saving the weights"
        case let .interruptedWhilePaused(step):
            "interrupted while paused with no live worker: nothing newer than \(step.map { "the checkpoint of step \($0)" } ?? "the start (no checkpoint yet)") to save; the same command resumes from it"
        }
    }
}
