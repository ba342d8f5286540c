/// Worker -> coordinator: the first message of a worker, and the one it sends on reconnect.
///
/// A worker that does not know the run yet sends it with run id 0; the coordinator accepts
/// run id 0 on `hello` only, and its `welcome` frame carries the run id to use from then on.
public struct Hello: WirePayload {
    public static let kind = MessageKind.hello

    /// The protocol version the worker speaks (also in the frame header; repeated so a refusal
    /// can name it even when a future header layout changes).
    public var protocolVersion: UInt16
    /// Stable name of the worker process, unique within a run (for example "node3-0").
    public var workerID: String
    public var host: String
    /// Where the worker's ring receiver can be reached, e.g. "tcp://10.0.0.3:41000" (a socket
    /// bound to `tcp://0.0.0.0:*` reports 0.0.0.0: advertise the host's address instead).
    public var dataPlaneEndpoint: String
    /// Feature names the worker supports ("curve", "shm", ...).
    public var capabilities: [String]
    /// Hash of the sorted (relative path, byte size) list of the worker's dataset.
    public var datasetFingerprint: String
    /// The worker's CURVE public key in Z85 (40 characters), when CURVE is on.
    public var curvePublicKey: String?
    /// With the "shm" capability: which processes can share memory with this one
    /// (`SharedMemoryHost.current()`); ranks whose identities are equal may form a
    /// shared-memory ring. Empty when unknown. Since protocol version 3.
    public var sharedMemoryHost: String
    /// A random number drawn once per worker process: a hello with a live worker's id and the
    /// same instance is that worker again (on a new connection, or after losing its generation);
    /// another instance is a second process claiming the id. Since protocol version 4.
    public var instance: UInt64
    /// How many times this process has started to join (1 for its first hello): a hello with a
    /// higher count than the coordinator saw from the same instance means the worker left the
    /// generation it was in; the same count is a repeat of a hello not yet answered.
    public var joins: UInt32
    /// The replica this worker holds, if any: a new generation (under this coordinator or a
    /// restarted one) may start from it rather than from an older checkpoint. Since version 4.
    public var replica: ReplicaClaim?

    /// Longest worker id accepted: ids are names, and a peer must not make the coordinator
    /// hold megabytes per hello.
    public static let maximumWorkerIDBytes = 256
    /// Longest host name, endpoint, fingerprint or shared-memory identity accepted.
    public static let maximumFieldBytes = 1024

    public init(protocolVersion: UInt16 = FrameHeader.currentVersion, workerID: String, host: String,
                dataPlaneEndpoint: String, capabilities: [String] = [], datasetFingerprint: String,
                curvePublicKey: String? = nil, sharedMemoryHost: String = "", instance: UInt64 = 0,
                joins: UInt32 = 1, replica: ReplicaClaim? = nil) {
        self.instance = instance
        self.joins = joins
        self.replica = replica
        self.sharedMemoryHost = sharedMemoryHost
        self.protocolVersion = protocolVersion
        self.workerID = workerID
        self.host = host
        self.dataPlaneEndpoint = dataPlaneEndpoint
        self.capabilities = capabilities
        self.datasetFingerprint = datasetFingerprint
        self.curvePublicKey = curvePublicKey
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(protocolVersion)
        writer.write(workerID)
        writer.write(host)
        writer.write(dataPlaneEndpoint)
        writer.writeArray(capabilities) { $0.write($1) }
        writer.write(datasetFingerprint)
        writer.writeOptional(curvePublicKey) { $0.write($1) }
        writer.write(sharedMemoryHost)
        writer.write(instance)
        writer.write(joins)
        writer.writeOptional(replica) { $1.encode(into: &$0) }
    }

    /// The identity of the shared memory this worker can use, nil unless it lists the "shm"
    /// capability and names one.
    public var sharedMemoryIdentity: String? {
        capabilities.contains(SharedMemoryHost.capability) && !sharedMemoryHost.isEmpty ? sharedMemoryHost : nil
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        protocolVersion = try reader.readUInt16("hello.protocolVersion")
        workerID = try reader.readString("hello.workerID")
        guard !workerID.isEmpty else { throw .invalidValue(field: "hello.workerID", detail: "empty") }
        guard workerID.utf8.count <= Self.maximumWorkerIDBytes else {
            throw .invalidValue(field: "hello.workerID", detail: "\(workerID.utf8.count) bytes, at most \(Self.maximumWorkerIDBytes) allowed")
        }
        host = try reader.readString("hello.host")
        dataPlaneEndpoint = try reader.readString("hello.dataPlaneEndpoint")
        capabilities = try reader.readArray("hello.capabilities", minimumElementSize: 4) { r throws(DecodeError) in
            try r.readString("hello.capabilities[]")
        }
        datasetFingerprint = try reader.readString("hello.datasetFingerprint")
        // What the coordinator keeps of an admitted worker stays small, whoever sends it.
        for (field, value) in [("hello.host", host), ("hello.dataPlaneEndpoint", dataPlaneEndpoint),
                               ("hello.datasetFingerprint", datasetFingerprint)] where value.utf8.count > Self.maximumFieldBytes {
            throw .invalidValue(field: field, detail: "\(value.utf8.count) bytes, at most \(Self.maximumFieldBytes) allowed")
        }
        guard capabilities.count <= 32, capabilities.allSatisfy({ $0.utf8.count <= 64 }) else {
            throw .invalidValue(field: "hello.capabilities", detail: "at most 32 names of at most 64 bytes")
        }
        curvePublicKey = try reader.readOptional("hello.curvePublicKey") { r throws(DecodeError) in
            try r.readString("hello.curvePublicKey")
        }
        if let key = curvePublicKey, key.utf8.count != 40 {
            throw .invalidValue(field: "hello.curvePublicKey", detail: "\(key.utf8.count) characters, Z85 keys have 40")
        }
        sharedMemoryHost = try reader.readString("hello.sharedMemoryHost")
        guard sharedMemoryHost.utf8.count <= Self.maximumFieldBytes else {
            throw .invalidValue(field: "hello.sharedMemoryHost", detail: "\(sharedMemoryHost.utf8.count) bytes, at most \(Self.maximumFieldBytes) allowed")
        }
        instance = try reader.readUInt64("hello.instance")
        joins = try reader.readUInt32("hello.joins")
        replica = try reader.readOptional("hello.replica") { r throws(DecodeError) in try ReplicaClaim(from: &r) }
    }
}

/// What a worker says of its replica in a hello: the run lineage it belongs to and the steps it
/// has applied.
public struct ReplicaClaim: Equatable, Sendable {
    /// `RunLineage.id` of the run whose state the replica holds.
    public var lineage: UInt64
    public var step: UInt64

    public init(lineage: UInt64, step: UInt64) {
        self.lineage = lineage
        self.step = step
    }

    func encode(into writer: inout ByteWriter) {
        writer.write(lineage)
        writer.write(step)
    }

    init(from reader: inout ByteReader) throws(DecodeError) {
        lineage = try reader.readUInt64("hello.replica.lineage")
        step = try reader.readUInt64("hello.replica.step")
    }
}

/// Coordinator -> worker: admitted; an `Assignment` follows when the generation starts.
public struct Welcome: WirePayload {
    public static let kind = MessageKind.welcome

    public var workerID: String
    /// How often the worker must send heartbeats.
    public var heartbeatIntervalMilliseconds: UInt32
    /// Silence longer than this and the coordinator declares the worker dead.
    public var livenessDeadlineMilliseconds: UInt32
    /// With CURVE: the public keys (Z85) of every worker the run admits; a worker's ring socket
    /// accepts connections from these keys only (known before any neighbour connects).
    public var admittedCurveKeys: [String]

    public init(workerID: String, heartbeatIntervalMilliseconds: UInt32, livenessDeadlineMilliseconds: UInt32,
                admittedCurveKeys: [String] = []) {
        self.admittedCurveKeys = admittedCurveKeys
        self.workerID = workerID
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
        self.livenessDeadlineMilliseconds = livenessDeadlineMilliseconds
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(workerID)
        writer.write(heartbeatIntervalMilliseconds)
        writer.write(livenessDeadlineMilliseconds)
        writer.writeArray(admittedCurveKeys) { $0.write($1) }
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        workerID = try reader.readString("welcome.workerID")
        heartbeatIntervalMilliseconds = try reader.readUInt32("welcome.heartbeatIntervalMilliseconds")
        livenessDeadlineMilliseconds = try reader.readUInt32("welcome.livenessDeadlineMilliseconds")
        admittedCurveKeys = try reader.readArray("welcome.admittedCurveKeys", minimumElementSize: 4) { r throws(DecodeError) in
            try r.readString("welcome.admittedCurveKeys")
        }
    }
}

/// Coordinator -> worker: not admitted. For `notMember` and `duplicateWorkerID` the worker says
/// hello again (with backoff); for the others it logs `reason` and `detail` and exits non-zero.
public struct Refuse: WirePayload {
    public static let kind = MessageKind.refuse

    public enum Reason: UInt8, Sendable, CaseIterable {
        /// The hello's protocol version is not the coordinator's.
        case protocolVersionMismatch = 1
        /// The worker's dataset fingerprint differs from the run's.
        case datasetMismatch = 2
        /// CURVE is on and the worker's key is not in the admitted list.
        case unknownKey = 3
        /// Another live worker process already uses this worker id (the worker retries: the
        /// other may be a crashed predecessor not yet declared down).
        case duplicateWorkerID = 4
        /// The run already has all the workers it wants.
        case runFull = 5
        /// The run is finishing or aborted.
        case shuttingDown = 6
        /// The coordinator declared this worker down (silent past the deadline); it must say
        /// hello again to rejoin (its replica is kept and may still be the most advanced).
        case notMember = 7
        /// The worker advertises a ring address its neighbours cannot reach: loopback while it
        /// connects from another machine (since protocol version 4), or one its previous rank
        /// could not connect to within the ring's connect deadline (since version 5).
        case unreachableRingAddress = 8
        /// Anything else; `detail` explains.
        case other = 255
    }

    public var reason: Reason
    public var detail: String

    public init(reason: Reason, detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(reason.rawValue)
        writer.write(detail)
    }

    public init(from reader: inout ByteReader) throws(DecodeError) {
        reason = try reader.readEnum("refuse.reason")
        detail = try reader.readString("refuse.detail")
    }
}

extension ByteReader {
    /// A `UInt8`-coded enum; an unknown code is `.invalidValue` naming the field and the code.
    public mutating func readEnum<E: RawRepresentable>(_ field: String) throws(DecodeError) -> E where E.RawValue == UInt8 {
        let raw = try readUInt8(field)
        guard let value = E(rawValue: raw) else {
            throw .invalidValue(field: field, detail: "unknown code \(raw) for \(E.self)")
        }
        return value
    }
}
