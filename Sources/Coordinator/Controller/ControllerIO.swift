import TensorFiles
import Checkpoints
import Logging
import Wire

/// A peer of the coordinator's control socket as the ROUTER socket names it (its routing id).
struct PeerID: Hashable, Sendable, CustomStringConvertible {
    var bytes: [UInt8]

    var description: String { bytes.prefix(8).map { String(format: "%02x", $0) }.joined() }
}

/// What the coordinator's shell tells the `RunController`. Every event comes with the time (seconds
/// since the coordinator started); the shell's loop turns at least every 50 ms, so `.tick` comes
/// often even when nothing else happens.
enum ControllerEvent: Sendable {
    /// A frame from `peer` that decoded; `address`: the peer's IP address, when the transport says.
    case received(Envelope, from: PeerID, address: String? = nil)
    /// A frame from `peer` that did not decode.
    case undecodable(DecodeError, from: PeerID)
    /// A worker process that `--local` started exited with `status`.
    case localWorkerExited(workerID: String, status: Int32)
    /// SIGINT or SIGTERM arrived (`count` in all so far).
    case stopSignal(count: Int)
    /// The checkpoint writer finished a job.
    case writer(WriterResult)
    /// The load asked for by `.loadNewestCheckpoint` finished: the newest valid checkpoint, or nil.
    case checkpointLoaded(Checkpoint?)
    /// Time passed.
    case tick
}

/// What the controller asks its shell to do, in order.
enum ControllerDirective: Sendable {
    /// Send this frame to `peer`.
    case send(Envelope, to: PeerID)
    case log(Logger.Level, String)
    /// Append to `DIR/events.jsonl`.
    case record(RunEvent)
    /// Append a line to the --metrics file.
    case metrics(StepMetrics)
    /// A rank's timeline spans (--timeline), from `workerID`, rank `rank`.
    case timeline(TimelineReport, workerID: String, rank: Int)
    /// A validation completed: its metrics line, TensorBoard figures and pictures.
    case validation(ValidationResult, isBest: Bool)
    /// Hand a checkpoint or the final state to the writer thread.
    case write(WriterJob)
    /// Load the newest valid checkpoint off the control loop (after the writer is idle) and answer
    /// with `.checkpointLoaded`.
    case loadNewestCheckpoint
    /// Start a replacement for this `--local` worker.
    case respawnLocalWorker(String)
    /// The run is over: stop the loop.
    case end(RunEnd)
}

/// What the writer thread is given.
enum WriterJob: Sendable {
    case checkpoint(Checkpoint)
    /// The final state: its checkpoint (nil when the newest checkpoint already is of this step)
    /// and the final weights, `DIR/final/model.safetensors`.
    case final(checkpoint: Checkpoint?, weights: [NamedTensor], step: Int, epoch: Int, model: FinalWeights.Model)
    /// `DIR/best/`: the checkpoint of the best validation and its summary.
    case best(Checkpoint, summary: BestSummary)
}

/// What the writer thread reports.
enum WriterResult: Sendable, Equatable {
    case written(step: Int, path: String, seconds: Double, bytes: Int)
    /// Written, but an older checkpoint could not be removed.
    case writtenWithoutPruning(step: Int, path: String, reason: String)
    case failed(step: Int, reason: String)
    /// The final weights (and their checkpoint) are on disk.
    case finalWritten(step: Int, path: String)
    case finalFailed(step: Int, reason: String)
    case bestWritten(step: Int, path: String)
    case bestFailed(step: Int, reason: String)
}

/// How the run ended.
enum RunEnd: Sendable {
    /// Trained (or stopped on request) and saved: the final weights' path, the step and epoch.
    case completed(path: String, step: Int, epoch: Int)
    case failed(CoordinatorFailure)
}
