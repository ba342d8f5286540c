/// Coordinator <-> worker: checkpoint traffic. State itself travels as `TensorChunk`s.
public struct CheckpointCommand: WirePayload {
    public static let kind = MessageKind.checkpoint

    public enum Action: UInt8, Sendable, CaseIterable {
        /// Coordinator -> worker: upload parameters and optimizer state as of `step`.
        case upload = 1
        /// Coordinator -> worker: parameters and optimizer state of `step` follow; load them.
        case restore = 2
        /// Coordinator -> workers: the checkpoint of `step` is committed at `path`.
        case committed = 3
        /// Worker -> coordinator: all chunks of the upload for `step` were sent.
        case uploadComplete = 4
    }

    public var action: Action
    public var step: UInt64
    public var epoch: UInt64
    /// Checkpoint directory (for `committed`), empty otherwise.
    public var path: String
    /// Adam's update count of the state (`uploadComplete`, `restore`): it differs from `step`
    /// when non-finite steps were skipped.
    public var optimizerStep: UInt64

    public init(action: Action, step: UInt64, epoch: UInt64, path: String = "", optimizerStep: UInt64 = 0) {
        self.optimizerStep = optimizerStep
        self.action = action
        self.step = step
        self.epoch = epoch
        self.path = path
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(action.rawValue)
        writer.write(step)
        writer.write(epoch)
        writer.write(path)
        writer.write(optimizerStep)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        action = try reader.readEnum("checkpoint.action")
        step = try reader.readUInt64("checkpoint.step")
        epoch = try reader.readUInt64("checkpoint.epoch")
        path = try reader.readString("checkpoint.path")
        optimizerStep = try reader.readUInt64("checkpoint.optimizerStep")
    }
}

/// Either side: something ended the current generation or the run.
/// Coordinator -> worker: the run is over with an error; the worker exits non-zero.
/// Worker -> coordinator: `cause` says what the coordinator should do about it.
public struct Abort: WirePayload {
    public static let kind = MessageKind.abort

    /// What a worker's abort asks of the coordinator.
    public enum Cause: UInt8, Sendable, CaseIterable {
        /// This worker cannot go on (it exits); the run goes on without it.
        case workerFailed = 0
        /// The generation's ring broke (`failedRank` names the peer, when known): form a new one.
        case ringFailed = 1
        /// This worker could not set up the generation's ring transport (shared memory): give it
        /// TCP rings from now on and form a new generation.
        case ringTransportUnavailable = 2
        /// The state the assignment named did not reach this worker (a checkpoint transfer that
        /// never arrived, or no rank holding the replica): form a new generation and send it again.
        case stateMissing = 3
        /// The run itself cannot go on (non-finite losses step after step, unreadable data): the
        /// coordinator ends the run with this reason.
        case runCannotContinue = 4
        /// Coordinator -> worker: the run ended with an error.
        case runAborted = 5
        /// This worker's connection to its next rank (`failedRank`, alive per the coordinator)
        /// never came up: that rank's ring address cannot be reached from here.
        case ringUnreachable = 6
    }

    /// The rank that failed or was found dead, when one did.
    public var failedRank: UInt32?
    public var reason: String
    public var cause: Cause

    public init(failedRank: UInt32? = nil, reason: String, cause: Cause = .runAborted) {
        self.failedRank = failedRank
        self.reason = reason
        self.cause = cause
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeOptional(failedRank) { $0.write($1) }
        writer.write(reason)
        writer.write(cause.rawValue)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        failedRank = try reader.readOptional("abort.failedRank") { r throws(DecodeError) in
            try r.readUInt32("abort.failedRank")
        }
        reason = try reader.readString("abort.reason")
        cause = try reader.readEnum("abort.cause")
    }
}

/// Coordinator -> worker: finish the step under way, then stop training with the other ranks (the
/// request rides in the step's all-reduce, so every rank stops at the same step boundary). The end
/// of the run follows as a `Shutdown` once the state is saved.
public struct StopRequest: WirePayload {
    public static let kind = MessageKind.stopRequest

    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(reason)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        reason = try reader.readString("stopRequest.reason")
    }
}

/// Coordinator -> worker: exit with `exitCode` after closing sockets.
public struct Shutdown: WirePayload {
    public static let kind = MessageKind.shutdown

    public var exitCode: Int32
    public var reason: String

    public init(exitCode: Int32 = 0, reason: String) {
        self.exitCode = exitCode
        self.reason = reason
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(exitCode)
        writer.write(reason)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        exitCode = try reader.readInt32("shutdown.exitCode")
        reason = try reader.readString("shutdown.reason")
    }
}
