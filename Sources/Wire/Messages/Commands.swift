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

/// Either side: stop the current generation now. Workers drop in-flight collectives and
/// report their `WorkerStatus`; the coordinator starts a new generation or stops the run.
public struct Abort: WirePayload {
    public static let kind = MessageKind.abort

    /// The rank that failed or was found dead, when one did.
    public var failedRank: UInt32?
    public var reason: String
    /// Worker -> coordinator: the generation's ring transport (shared memory) could not be set
    /// up on this worker; the coordinator gives it TCP rings from then on.
    public var ringTransportUnavailable: Bool

    public init(failedRank: UInt32? = nil, reason: String, ringTransportUnavailable: Bool = false) {
        self.failedRank = failedRank
        self.reason = reason
        self.ringTransportUnavailable = ringTransportUnavailable
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeOptional(failedRank) { $0.write($1) }
        writer.write(reason)
        writer.write(ringTransportUnavailable)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        failedRank = try reader.readOptional("abort.failedRank") { r throws(DecodeError) in
            try r.readUInt32("abort.failedRank")
        }
        reason = try reader.readString("abort.reason")
        ringTransportUnavailable = try reader.readBool("abort.ringTransportUnavailable")
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
