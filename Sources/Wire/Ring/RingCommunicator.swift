import CZmq

/// The ZeroMQ transport of the ring collectives: one rank's PULL socket (from rank - 1) and PUSH
/// socket (to rank + 1); `RingDriver` runs the collectives over them.
///
/// **Thread:** create, use and close a communicator on one dedicated thread (a `Thread`, not
/// Swift's cooperative pool: its calls block up to the silence deadline). It is not `Sendable`.
///
/// Each piece is a two-part message: a `Frame` of kind `.ringChunk` (generation, run id,
/// `RingChunkHeader`) and the raw little-endian float32 data, sent zero-copy from the buffer.
///
/// Anyone who can reach the receiving port can write to it, and a PULL socket does not say who
/// sent a message. So whatever arrives that is not a piece of the collective in progress is
/// dropped and counted (`RingStatistics`, `RingSettings.onDrops`), never blamed on a rank:
/// bytes that are not a two-part ring piece (random bytes from a stray client become such
/// messages: libzmq reads a peer without ZeroMQ's greeting as the old ZMTP/1.0), frames of
/// another run id, pieces of an older generation or an earlier collective. The collective
/// goes on waiting for the real piece under the usual silence and liveness rules. CURVE
/// (`RingSettings.curveKeys`) keeps unknown peers out altogether.
public final class RingCommunicator {
    public private(set) var rank: Int
    public private(set) var worldSize: Int
    /// The run whose frames it accepts: that of the last `reform` (or of `init`).
    public var runID: UInt64 { core.numbering.runID }
    public let settings: RingSettings
    /// The endpoint the previous rank connects to (ZMQ_LAST_ENDPOINT of the bind).
    public let endpoint: String
    public private(set) var nextEndpoint = "(not connected)"
    public var statistics: RingStatistics { core.statistics }

    let receiver: ZmqSocket   // internal for tests
    private let context: ZmqContext
    private var sender: ZmqSocket?
    private let inFlight = InFlightSends()
    var core: RingCore
    /// True after a collective failed: the sending socket is closed; `reform` for the next generation.
    public private(set) var isBroken = false
    /// Pieces of a newer generation that arrived while an older one ran, oldest first: the
    /// next generation's collectives take them before the socket's (the previous rank moved on
    /// before this one did).
    private var early: [RingArrival<[ZmqMessage]>] = []

    /// Binds the receiving socket to `bindEndpoint` ("tcp://127.0.0.1:*", "ipc:///tmp/x").
    /// A failure here is this rank's own: `.transport(rank: rank, ...)`.
    public init(context: ZmqContext, rank: Int, worldSize: Int, runID: UInt64, bindTo bindEndpoint: String,
                settings: RingSettings = RingSettings()) throws(RingError) {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "rank \(rank) of world size \(worldSize)")
        self.rank = rank
        self.worldSize = worldSize
        self.settings = settings
        self.context = context
        core = RingCore(runID: runID, settings: settings)
        do throws(ZmqError) {
            receiver = try ZmqSocket(context, type: .pull)
            try receiver.setHighWaterMarks(send: settings.highWaterMark, receive: settings.highWaterMark)
            // No part larger than a piece is ever buffered: libzmq disconnects such a sender.
            try receiver.setMaxMessageSize(settings.maxReceivedPartBytes)
            if let keys = settings.curveKeys {
                if let authenticator = settings.curveAuthenticator {
                    do {
                        try receiver.enableCurveServer(keys, authenticatedBy: authenticator)
                    } catch {
                        throw ZmqError.call(operation: "CURVE server with ZAP", errno: EINVAL, text: "\(error)")
                    }
                } else {
                    try receiver.enableCurveServer(keys)
                }
            }
            endpoint = try receiver.bind(bindEndpoint)
            self.sender = try Self.makeSender(context, settings: settings)
        } catch {
            throw .transport(rank: rank, error: error)
        }
    }

    deinit { close() }

    /// Takes a new place in a new generation: rank `rank` of `worldSize`. The receiving socket
    /// stays bound (its endpoint is what the other ranks know), so no piece sent to it is lost
    /// between generations; the sending socket is replaced, to be connected with `connect(toNext:)`.
    /// `runID` is the run whose frames it accepts from now on (a restarted coordinator starts a new run).
    ///
    /// The numbering of collectives starts afresh: the next one is #0 of its generation, as on
    /// a rank that has just started, whatever this one ran before (a new run counts its
    /// generations from 1 again). Kept pieces of a newer generation stay for it if the run is
    /// the same; those of another run are dropped.
    public func reform(rank: Int, worldSize: Int, runID: UInt64) throws(RingError) {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "rank \(rank) of world size \(worldSize)")
        sender?.close()
        sender = nil
        do {
            try inFlight.requireReleased(nil, within: settings.silenceDeadline)
        } catch {
            throw .bufferStillInUse(seconds: settings.silenceDeadline.inSeconds)
        }
        self.rank = rank
        self.worldSize = worldSize
        if runID != core.numbering.runID {
            for kept in early {
                let report = core.recordDrop(.foreignRun, reason: { "a kept piece of run \(String(kept.runID, radix: 16)), now run \(String(runID, radix: 16))" },
                                             endpoint: endpoint, reporting: settings.onDrops != nil)
                if let report { settings.onDrops?(report) }
            }
            early.removeAll()
        }
        core.numbering.reform(runID: runID)
        nextEndpoint = "(not connected)"
        isBroken = false
        do {
            self.sender = try Self.makeSender(context, settings: settings)
        } catch {
            throw .transport(rank: rank, error: error)
        }
    }

    /// The sending socket: ZMQ_IMMEDIATE, so pieces queue only on a connection that is up.
    private static func makeSender(_ context: ZmqContext, settings: RingSettings) throws(ZmqError) -> ZmqSocket {
        let sender = try ZmqSocket(context, type: .push)
        try sender.setHighWaterMarks(send: settings.highWaterMark, receive: settings.highWaterMark)
        try sender.setOption(ZMQ_IMMEDIATE, 1, "ZMQ_IMMEDIATE")
        return sender
    }

    /// Connects to the next rank's `endpoint` and waits (at most `RingSettings.connectDeadline`) until the connection is up.
    /// With `RingSettings.curveKeys`, `curvePublicKey` is the next rank's key (from the assignment).
    public func connect(toNext endpoint: String, curvePublicKey: String? = nil) throws(RingError) {
        var connected = false
        do throws(ZmqError) {
            let sender = try liveSender()
            if let keys = settings.curveKeys {
                guard let curvePublicKey else {
                    throw ZmqError.call(operation: "connect to rank \(nextRank)", errno: EINVAL,
                                        text: "CURVE is on but the next rank's public key is missing")
                }
                try sender.enableCurveClient(keys, serverPublicKey: curvePublicKey)
            }
            try sender.connect(endpoint)
            // With ZMQ_IMMEDIATE the socket is writable only once the connection (and handshake)
            // is up: wait for that, bounded, rather than discover it as an endless silence. The
            // wait also ends as soon as the liveness hook says the peer is gone (a new
            // generation was formed without it meanwhile).
            let operation = "connect to rank \(nextRank) at \(endpoint)"
            let deadline = ContinuousClock.now + settings.connectDeadline
            while !connected, ContinuousClock.now < deadline {
                connected = try sender.wait(for: Int16(ZMQ_POLLOUT), until: min(deadline, .now + settings.silenceDeadline), operation)
                if !connected, let isPeerAlive = settings.isPeerAlive, !isPeerAlive(nextRank) {
                    throw ZmqError.call(operation: operation, errno: ECONNABORTED, text: "given up: the generation ended while connecting")
                }
            }
        } catch {
            throw .transport(rank: nextRank, error: error)
        }
        guard connected else {
            throw .unreachable(rank: nextRank, endpoint: endpoint, seconds: settings.connectDeadline.inSeconds)
        }
        nextEndpoint = endpoint
    }

    /// Closes both sockets, dropping queued pieces. Returns false if libzmq still reads a
    /// zero-copy buffer 2 s later; that only happens after a collective threw
    /// `.bufferStillInUse`, whose buffer the caller must then never free or reuse.
    @discardableResult
    public func close() -> Bool {
        sender?.close()
        sender = nil
        receiver.close()
        do {
            try inFlight.requireReleased(nil, within: .seconds(2))
            return true
        } catch {
            return false
        }
    }

    public var previousRank: Int { (rank - 1 + worldSize) % worldSize }
    public var nextRank: Int { (rank + 1) % worldSize }

    /// Sums `buffer` over all ranks in place; every rank ends with the same bytes.
    /// All ranks call it with the same length and generation.
    ///
    /// On return, normal or thrown, libzmq no longer reads `buffer`, except after
    /// `RingError.bufferStillInUse`: then it may still, and the caller must never free or
    /// reuse that buffer (keep it alive, leaked, and drop the communicator).
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64) throws(RingError) {
        try RingDriver.allReduce(self, buffer, generation: generation)
    }

    /// Copies `root`'s buffer into every rank's `buffer` (same length everywhere). Buffer
    /// ownership on return as for `allReduce`.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int, generation: UInt64) throws(RingError) {
        try RingDriver.broadcast(self, buffer, root: root, generation: generation)
    }

    /// The all-reduce schedule without the reduction: the same pieces travel, nothing is added.
    /// For benchmarks only (the ceiling of the transport); the buffer's contents are undefined after.
    public func allReduceSendsOnly(_ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64) throws(RingError) {
        try RingDriver.allReduce(self, buffer, generation: generation, appliesPieces: false)
    }

    private func liveSender() throws(ZmqError) -> ZmqSocket {
        guard let sender else { throw .call(operation: "send to rank \(nextRank)", errno: 0, text: "ring broken earlier; make a new communicator") }
        return sender
    }
}

extension RingCommunicator: RingLink {
    /// A zmq_poll wakes the rank as soon as a message is there: no yielding first.
    var spinBeforeBlocking: Duration { .zero }

    func prepareCollective() throws(RingError) {}

    func beginPass() {}

    /// The frame part is offered without waiting (no room: nothing is sent); the data part of
    /// a message whose frame went always follows, waiting up to the silence deadline.
    func post(_ send: RingMachine.Send, identity: CollectiveIdentity,
              from buffer: UnsafeMutableBufferPointer<Float>) throws(RingError) -> Bool {
        let frame = Envelope(generation: identity.generation, runID: identity.runID, message: .ringChunk(send.header)).encoded()
        let data = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[send.range]))
        do throws(ZmqError) {
            let sender = try liveSender()
            do throws(ZmqError) {
                try sender.send(frame, more: true, deadline: .now)
            } catch .timedOut {
                return false
            }
            let token = inFlight.begin(send.range)
            let inFlight = self.inFlight
            try sender.sendZeroCopy(data, deadline: .now + settings.silenceDeadline) { inFlight.end(token) }
        } catch .timedOut(_, _, let seconds) {
            throw .sendStalled(rank: nextRank, endpoint: nextEndpoint, seconds: seconds)
        } catch {
            throw .transport(rank: nextRank, error: error)
        }
        return true
    }

    func receive() throws(RingError) -> RingDelivery<[ZmqMessage]>? {
        if !early.isEmpty { return .piece(early.removeFirst()) }
        let parts: [ZmqMessage]
        do throws(ZmqError) {
            parts = try receiver.receiveParts(deadline: .now, maxParts: 2)
        } catch .timedOut {
            return nil
        } catch let .tooManyParts(_, count, _) {
            // Read to its end and discarded by the socket: no ring piece has more than two parts.
            return .malformed(reason: "a message of \(count) parts")
        } catch {
            throw .transport(rank: previousRank, error: error)
        }
        guard parts.count == 2 else { return .malformed(reason: "a message of 1 part") }
        let envelope: Envelope
        do throws(DecodeError) {
            envelope = try Envelope.decode(parts[0].bytes)
        } catch {
            return .malformed(reason: "\(error)")
        }
        guard case let .ringChunk(header) = envelope.message else {
            return .malformed(reason: "a \(envelope.message.kind) message")
        }
        // Valid while `parts` lives: the arrival carries them until the driver releases it.
        let data = parts[1].withUnsafeBytes { $0 }
        return .piece(RingArrival(runID: envelope.runID, generation: envelope.generation, header: header, data: data, token: parts))
    }

    func release(_ arrival: RingArrival<[ZmqMessage]>, keep: Bool) {
        // The kept piece goes back to the front: it came before anything still in the socket
        // and before the other kept pieces.
        if keep { early.insert(arrival, at: 0) }
    }

    func isSending(from range: Range<Int>?) -> Bool {
        inFlight.overlaps(range)
    }

    /// libzmq sends from the caller's buffer: there is no other place to write into.
    func forwardingDestination(for send: RingMachine.Send, identity: CollectiveIdentity) -> UnsafeMutablePointer<Float>? {
        nil
    }

    func publishForwarded(_ send: RingMachine.Send) {}

    /// The receiving side does not know the previous rank's address (it connects to us), and
    /// a ZeroMQ peer that left just goes silent.
    func checkNeighbours(awaiting piece: RingReceive?, hasUnsent: Bool, waited: Duration) throws(RingError) {}

    func block(for reason: RingWaitReason, limit: Duration) -> Bool {
        switch reason {
        case .piece:
            // A failing poll surfaces on the next receive.
            _ = try? receiver.wait(for: Int16(ZMQ_POLLIN), until: .now + limit, "poll the ring's receiving socket")
        case .room:
            guard let sender else { return false }
            _ = try? sender.wait(for: Int16(ZMQ_POLLOUT), until: .now + limit, "poll the ring's sending socket")
        case .release:
            // libzmq's I/O thread lets go of the bytes once they are written to the connection.
            IdleWait.sleep(for: min(limit, .microseconds(20)))
        }
        return true
    }

    /// Closes the sending socket, dropping the pieces queued for a peer that may be dead, so
    /// libzmq releases the caller's buffer. If it still holds the buffer after the silence
    /// deadline, that is what the caller must know (never reuse that buffer):
    /// `.bufferStillInUse` replaces the collective's error.
    func abandon() throws(RingError) {
        isBroken = true
        sender?.close()
        sender = nil
        try inFlight.requireReleased(nil, within: settings.silenceDeadline)
    }
}
