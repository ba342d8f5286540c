/// Every message of the system, coordinator and workers alike.
public enum Message: Equatable, Sendable {
    case hello(Hello)
    case welcome(Welcome)
    case refuse(Refuse)
    case assignment(Assignment)
    case heartbeat(Heartbeat)
    case stepReport(StepReport)
    case workerStatus(WorkerStatus)
    case tensorChunk(TensorChunk)
    case checkpoint(CheckpointCommand)
    case abort(Abort)
    case shutdown(Shutdown)
    case ringChunk(RingChunkHeader)
    case stopRequest(StopRequest)
    case validationReport(ValidationReport)
    case timelineReport(TimelineReport)

    public var kind: MessageKind {
        switch self {
        case .hello: .hello
        case .welcome: .welcome
        case .refuse: .refuse
        case .assignment: .assignment
        case .heartbeat: .heartbeat
        case .stepReport: .stepReport
        case .workerStatus: .workerStatus
        case .tensorChunk: .tensorChunk
        case .checkpoint: .checkpoint
        case .abort: .abort
        case .shutdown: .shutdown
        case .ringChunk: .ringChunk
        case .stopRequest: .stopRequest
        case .validationReport: .validationReport
        case .timelineReport: .timelineReport
        }
    }

    public func encodedPayload() -> [UInt8] {
        switch self {
        case let .hello(body): body.encodedPayload()
        case let .welcome(body): body.encodedPayload()
        case let .refuse(body): body.encodedPayload()
        case let .assignment(body): body.encodedPayload()
        case let .heartbeat(body): body.encodedPayload()
        case let .stepReport(body): body.encodedPayload()
        case let .workerStatus(body): body.encodedPayload()
        case let .tensorChunk(body): body.encodedPayload()
        case let .checkpoint(body): body.encodedPayload()
        case let .abort(body): body.encodedPayload()
        case let .shutdown(body): body.encodedPayload()
        case let .ringChunk(body): body.encodedPayload()
        case let .stopRequest(body): body.encodedPayload()
        case let .validationReport(body): body.encodedPayload()
        case let .timelineReport(body): body.encodedPayload()
        }
    }

    public static func decode(kind: MessageKind, payload: [UInt8]) throws(DecodeError) -> Message {
        switch kind {
        case .hello: .hello(try .decodePayload(payload))
        case .welcome: .welcome(try .decodePayload(payload))
        case .refuse: .refuse(try .decodePayload(payload))
        case .assignment: .assignment(try .decodePayload(payload))
        case .heartbeat: .heartbeat(try .decodePayload(payload))
        case .stepReport: .stepReport(try .decodePayload(payload))
        case .workerStatus: .workerStatus(try .decodePayload(payload))
        case .tensorChunk: .tensorChunk(try .decodePayload(payload))
        case .checkpoint: .checkpoint(try .decodePayload(payload))
        case .abort: .abort(try .decodePayload(payload))
        case .shutdown: .shutdown(try .decodePayload(payload))
        case .ringChunk: .ringChunk(try .decodePayload(payload))
        case .stopRequest: .stopRequest(try .decodePayload(payload))
        case .validationReport: .validationReport(try .decodePayload(payload))
        case .timelineReport: .timelineReport(try .decodePayload(payload))
        }
    }
}

/// A message with the header fields every frame carries.
public struct Envelope: Equatable, Sendable {
    public var generation: UInt64
    public var runID: UInt64
    public var message: Message

    public init(generation: UInt64, runID: UInt64, message: Message) {
        self.generation = generation
        self.runID = runID
        self.message = message
    }

    /// The complete frame bytes.
    public func encoded() -> [UInt8] {
        Frame.encode(kind: message.kind, generation: generation, runID: runID, payload: message.encodedPayload())
    }

    /// Decodes a frame and its message. Never traps: any bad input is a `DecodeError`.
    /// With `expectedRunID`, a frame of another job is `.foreignRun`.
    public static func decode(_ bytes: [UInt8], limits: DecodeLimits = .default,
                              expectedRunID: UInt64? = nil) throws(DecodeError) -> Envelope {
        let (header, payload) = try Frame.decode(bytes, limits: limits)
        if let expectedRunID, header.runID != expectedRunID {
            throw .foreignRun(found: header.runID, expected: expectedRunID)
        }
        let message = try Message.decode(kind: header.kind, payload: payload)
        return Envelope(generation: header.generation, runID: header.runID, message: message)
    }
}
