import Wire

/// Why a worker stopped with an error. Each case names the peer, step or field involved.
public enum WorkerFailure: Error, CustomStringConvertible {
    /// The coordinator turned this worker away (its reason and detail).
    case refused(reason: Refuse.Reason, detail: String)
    /// Nothing came from the coordinator at `endpoint` for `seconds` while waiting for `what`.
    case coordinatorSilent(endpoint: String, seconds: Double, waitingFor: String)
    /// The coordinator sent `found` where `expected` was due.
    case unexpectedMessage(expected: String, found: String)
    /// The assignment names a configuration this worker does not know.
    case unknownConfiguration(String)
    /// The assignment's settings are unusable.
    case recipe(TrainingRecipe.Problem)
    /// The ring failed (a neighbour died or misbehaved) at `step`.
    case ring(step: Int, RingError)
    /// The control connection failed.
    case control(ZmqError)
    /// The coordinator aborted the run.
    case aborted(reason: String)
    /// Non-finite losses or gradients made `count` steps in a row skip, the last at `step`.
    case nonFinite(step: Int, count: Int)
    /// The sampler cannot cover this dataset with this global batch.
    case sampler(String)
    /// A file this worker was asked to write cannot be written.
    case cannotWrite(path: String, reason: String)
    /// CURVE keys are missing or unusable.
    case curve(String)
    /// The state the coordinator sent (a checkpoint to resume from) is unusable.
    case restore(String)
    /// No address for the ring socket (an unknown interface, no route to the coordinator), or one
    /// that may not be used without CURVE.
    case ringAddress(String)
    /// The validation set cannot be used (the reason says what to pass).
    case validation(String)

    public var description: String {
        switch self {
        case let .refused(reason, detail): "refused by the coordinator (\(reason)): \(detail)"
        case let .coordinatorSilent(endpoint, seconds, what):
            "no message from the coordinator at \(endpoint) for \(Int(seconds)) s while waiting for \(what)"
        case let .unexpectedMessage(expected, found): "expected \(expected) from the coordinator, got \(found)"
        case let .unknownConfiguration(name): "the assignment names an unknown model configuration '\(name)'"
        case let .recipe(problem): "\(problem)"
        case let .ring(step, error): "ring collective failed at step \(step): \(error)"
        case let .control(error): "control connection failed: \(error)"
        case let .aborted(reason): "the coordinator aborted the run: \(reason)"
        case let .nonFinite(step, count): "\(count) steps in a row had a non-finite loss or gradient (last: step \(step)); stopping"
        case let .sampler(reason): reason
        case let .cannotWrite(path, reason): "cannot write \(path): \(reason)"
        case let .curve(reason): "CURVE: \(reason)"
        case let .restore(reason): "cannot restore the coordinator's state: \(reason)"
        case let .ringAddress(reason): reason
        case let .validation(reason): reason
        }
    }
}
