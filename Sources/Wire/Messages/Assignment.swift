/// A ring neighbour as a worker needs it to connect.
public struct RingPeer: Equatable, Sendable {
    public var rank: UInt32
    public var endpoint: String
    /// The neighbour's CURVE public key (Z85), when CURVE is on.
    public var curvePublicKey: String?

    public init(rank: UInt32, endpoint: String, curvePublicKey: String? = nil) {
        self.rank = rank
        self.endpoint = endpoint
        self.curvePublicKey = curvePublicKey
    }

    func encode(into writer: inout ByteWriter) {
        writer.write(rank)
        writer.write(endpoint)
        writer.writeOptional(curvePublicKey) { $0.write($1) }
    }

    init(from reader: inout ByteReader, field: String) throws(DecodeError) {
        rank = try reader.readUInt32(field + ".rank")
        endpoint = try reader.readString(field + ".endpoint")
        curvePublicKey = try reader.readOptional(field + ".curvePublicKey") { r throws(DecodeError) in
            try r.readString(field + ".curvePublicKey")
        }
    }
}

/// Where in the seeded permutation the next step starts (docs/decisions.md, "A fixed global batch").
public struct ShardCursor: Equatable, Sendable {
    public var epoch: UInt64
    /// The next step to run within `epoch`.
    public var step: UInt64

    public init(epoch: UInt64, step: UInt64) {
        self.epoch = epoch
        self.step = step
    }
}

/// Where a new generation's parameters and optimizer state come from.
public enum StateOrigin: UInt8, Sendable, CaseIterable {
    /// A fresh run: the state-source rank initialises the parameters from the seed.
    case seed = 1
    /// A resumed run: the coordinator sent a checkpoint's state to the state-source rank
    /// (`TensorChunk`s, then `CheckpointCommand.restore`) before this assignment.
    case checkpoint = 2
    /// A membership change: the ranks agree on the most advanced replica among them, which
    /// broadcasts its state to every rank behind it (docs/architecture.md, "Generations").
    case replicas = 3
}

/// What carries a generation's ring collectives.
public enum RingTransportKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// ZeroMQ over TCP (`RingCommunicator`): any hosts; the worker's receiver stays bound
    /// across generations.
    case tcp = 1
    /// Shared memory (`SharedMemoryRing`): every rank on one host; new segments per generation.
    case sharedMemory = 2

    public var description: String {
        switch self {
        case .tcp: "tcp"
        case .sharedMemory: "shared memory"
        }
    }

    /// As progress lines and metrics name it: "tcp" or "shm" (like --ring-transport).
    public var shortName: String {
        switch self {
        case .tcp: "tcp"
        case .sharedMemory: "shm"
        }
    }
}

/// Coordinator -> worker: the worker's place in a new generation.
public struct Assignment: WirePayload {
    public static let kind = MessageKind.assignment

    public var rank: UInt32
    public var worldSize: UInt32
    public var generation: UInt64
    /// Rank - 1 mod N: the ring receives from it.
    public var previous: RingPeer
    /// Rank + 1 mod N: the ring sends to it.
    public var next: RingPeer
    /// Model configuration name ("small", "imagenet-f16", ...).
    public var configurationName: String
    /// Training settings as a JSON object (learning rate, optimizer, ...), opaque to Wire.
    public var settingsJSON: String
    public var cursor: ShardCursor
    public var globalBatch: UInt32
    public var seed: UInt64
    /// The rank holding the most advanced replica; it broadcasts state to the others.
    public var stateSourceRank: UInt32
    /// Where the state comes from; with `.replicas` the ranks find the most advanced replica
    /// themselves and `stateSourceRank` is the coordinator's guess only.
    public var stateOrigin: StateOrigin
    /// Steps applied by the state this generation starts from (`.checkpoint`: the checkpoint's step).
    public var resumeStep: UInt64
    /// What carries this generation's ring. With `.sharedMemory`, `previous` and `next` are
    /// `shm://` endpoints and `ringEndpoint` is this rank's inbox to create.
    public var ringTransport: RingTransportKind
    /// This rank's own ring endpoint (what `previous` connects to).
    public var ringEndpoint: String

    public init(rank: UInt32, worldSize: UInt32, generation: UInt64, previous: RingPeer, next: RingPeer,
                configurationName: String, settingsJSON: String, cursor: ShardCursor,
                globalBatch: UInt32, seed: UInt64, stateSourceRank: UInt32,
                stateOrigin: StateOrigin = .seed, resumeStep: UInt64 = 0,
                ringTransport: RingTransportKind = .tcp, ringEndpoint: String = "") {
        self.ringTransport = ringTransport
        self.ringEndpoint = ringEndpoint
        self.stateOrigin = stateOrigin
        self.resumeStep = resumeStep
        self.rank = rank
        self.worldSize = worldSize
        self.generation = generation
        self.previous = previous
        self.next = next
        self.configurationName = configurationName
        self.settingsJSON = settingsJSON
        self.cursor = cursor
        self.globalBatch = globalBatch
        self.seed = seed
        self.stateSourceRank = stateSourceRank
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(rank)
        writer.write(worldSize)
        writer.write(generation)
        previous.encode(into: &writer)
        next.encode(into: &writer)
        writer.write(configurationName)
        writer.write(settingsJSON)
        writer.write(cursor.epoch)
        writer.write(cursor.step)
        writer.write(globalBatch)
        writer.write(seed)
        writer.write(stateSourceRank)
        writer.write(stateOrigin.rawValue)
        writer.write(resumeStep)
        writer.write(ringTransport.rawValue)
        writer.write(ringEndpoint)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        rank = try reader.readUInt32("assignment.rank")
        worldSize = try reader.readUInt32("assignment.worldSize")
        guard worldSize >= 1 else { throw .invalidValue(field: "assignment.worldSize", detail: "0, must be >= 1") }
        guard rank < worldSize else {
            throw .invalidValue(field: "assignment.rank", detail: "\(rank) is not below world size \(worldSize)")
        }
        generation = try reader.readUInt64("assignment.generation")
        previous = try RingPeer(from: &reader, field: "assignment.previous")
        next = try RingPeer(from: &reader, field: "assignment.next")
        configurationName = try reader.readString("assignment.configurationName")
        settingsJSON = try reader.readString("assignment.settingsJSON")
        cursor = ShardCursor(epoch: try reader.readUInt64("assignment.cursor.epoch"),
                             step: try reader.readUInt64("assignment.cursor.step"))
        globalBatch = try reader.readUInt32("assignment.globalBatch")
        guard globalBatch >= 1 else { throw .invalidValue(field: "assignment.globalBatch", detail: "0, must be >= 1") }
        seed = try reader.readUInt64("assignment.seed")
        stateSourceRank = try reader.readUInt32("assignment.stateSourceRank")
        guard stateSourceRank < worldSize else {
            throw .invalidValue(field: "assignment.stateSourceRank", detail: "\(stateSourceRank) is not below world size \(worldSize)")
        }
        stateOrigin = try reader.readEnum("assignment.stateOrigin")
        resumeStep = try reader.readUInt64("assignment.resumeStep")
        ringTransport = try reader.readEnum("assignment.ringTransport")
        ringEndpoint = try reader.readString("assignment.ringEndpoint")
        if ringTransport == .sharedMemory {
            for (field, endpoint) in [("ringEndpoint", ringEndpoint), ("previous.endpoint", previous.endpoint), ("next.endpoint", next.endpoint)]
            where SharedMemoryEndpoint.name(of: endpoint) == nil {
                throw .invalidValue(field: "assignment.\(field)", detail: "'\(endpoint)' is not a shm://NAME endpoint")
            }
        }
    }
}
