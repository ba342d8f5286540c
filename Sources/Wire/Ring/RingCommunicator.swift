import CZmq

/// The socket shell of the ring collectives: one rank's PULL socket (from rank - 1) and PUSH
/// socket (to rank + 1), driving a `RingMachine` per collective.
///
/// **Thread:** create, use and close a communicator on one dedicated thread (a `Thread`, not
/// Swift's cooperative pool: its calls block up to the silence deadline). It is not `Sendable`.
///
/// Each piece is a two-part message: a `Frame` of kind `.ringChunk` (generation, run id,
/// `RingChunkHeader`) and the raw little-endian float32 data, sent zero-copy from the buffer.
public final class RingCommunicator {
    public private(set) var rank: Int
    public private(set) var worldSize: Int
    public private(set) var runID: UInt64
    public let settings: RingSettings
    /// The endpoint the previous rank connects to (ZMQ_LAST_ENDPOINT of the bind).
    public let endpoint: String
    public private(set) var nextEndpoint = "(not connected)"
    public private(set) var statistics = RingStatistics()

    let receiver: ZmqSocket   // internal for tests
    private let context: ZmqContext
    private var sender: ZmqSocket?
    private let inFlight = InFlightSends()
    private var generation: UInt64 = 0
    private var sequence: UInt64 = 0
    /// True after a collective failed: the sending socket is closed; `reform` for the next generation.
    public private(set) var isBroken = false
    /// Pieces of a newer generation that arrived while an older one ran: the next generation's
    /// collectives take them first (the previous rank moved on before this one did).
    private var early: [(generation: UInt64, parts: [ZmqMessage])] = []

    /// Binds the receiving socket to `bindEndpoint` ("tcp://127.0.0.1:*", "ipc:///tmp/x").
    /// A failure here is this rank's own: `.transport(rank: rank, ...)`.
    public init(context: ZmqContext, rank: Int, worldSize: Int, runID: UInt64, bindTo bindEndpoint: String,
                settings: RingSettings = RingSettings()) throws(RingError) {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "rank \(rank) of world size \(worldSize)")
        self.rank = rank
        self.worldSize = worldSize
        self.runID = runID
        self.settings = settings
        self.context = context
        do {
            receiver = try ZmqSocket(context, type: .pull)
            try receiver.setHighWaterMarks(send: settings.highWaterMark, receive: settings.highWaterMark)
            // No part larger than a piece is ever buffered: libzmq disconnects such a sender.
            try receiver.setMaxMessageSize(settings.maxReceivedPartBytes)
            if let keys = settings.curveKeys { try receiver.enableCurveServer(keys) }
            endpoint = try receiver.bind(bindEndpoint)
            let sender = try ZmqSocket(context, type: .push)
            try sender.setHighWaterMarks(send: settings.highWaterMark, receive: settings.highWaterMark)
            self.sender = sender
        } catch {
            throw .transport(rank: rank, error: error)
        }
    }

    deinit { close() }

    /// Takes a new place in a new generation: rank `rank` of `worldSize`. The receiving socket
    /// stays bound (its endpoint is what the other ranks know), so no piece sent to it is lost
    /// between generations; the sending socket is replaced, to be connected with `connect(toNext:)`.
    /// `runID` is the run whose frames it accepts from now on (a restarted coordinator starts a new run).
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
        if runID != self.runID { early.removeAll() }
        self.runID = runID
        nextEndpoint = "(not connected)"
        isBroken = false
        do {
            let sender = try ZmqSocket(context, type: .push)
            try sender.setHighWaterMarks(send: settings.highWaterMark, receive: settings.highWaterMark)
            self.sender = sender
        } catch {
            throw .transport(rank: rank, error: error)
        }
    }

    /// Connects to the next rank's `endpoint`. Pieces queue until the connection is up.
    /// With `RingSettings.curveKeys`, `curvePublicKey` is the next rank's key (from the assignment).
    public func connect(toNext endpoint: String, curvePublicKey: String? = nil) throws(RingError) {
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
        } catch {
            throw .transport(rank: nextRank, error: error)
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
        let schedule = RingSchedule(rank: rank, worldSize: worldSize, elementCount: buffer.count,
                                    pieceElements: settings.pieceElements)
        try run(RingPlan.allReduce(schedule), buffer: buffer, generation: generation)
    }

    /// Copies `root`'s buffer into every rank's `buffer` (same length everywhere). Buffer
    /// ownership on return as for `allReduce`.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int, generation: UInt64) throws(RingError) {
        let plan = RingPlan.broadcast(rank: rank, worldSize: worldSize, root: root, elementCount: buffer.count,
                                      pieceElements: settings.pieceElements)
        try run(plan, buffer: buffer, generation: generation)
    }

    /// The all-reduce schedule without the reduction: the same pieces travel, nothing is added.
    /// For benchmarks only (the ceiling of the transport); the buffer's contents are undefined after.
    public func allReduceSendsOnly(_ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64) throws(RingError) {
        let schedule = RingSchedule(rank: rank, worldSize: worldSize, elementCount: buffer.count,
                                    pieceElements: settings.pieceElements)
        try run(RingPlan.allReduce(schedule), buffer: buffer, generation: generation, appliesPieces: false)
    }

    private func run(_ plan: RingPlan, buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64,
                     appliesPieces: Bool = true) throws(RingError) {
        guard worldSize > 1 else { return }
        if generation != self.generation {
            self.generation = generation
            sequence = 0
        }
        var machine = RingMachine(plan: plan, rank: rank, worldSize: worldSize, generation: generation,
                                  sequence: sequence, checksumsData: settings.checksumData)
        machine.appliesPieces = appliesPieces
        sequence += 1
        do throws(RingError) {
            for send in machine.initialSends(buffer: UnsafeBufferPointer(buffer)) { try post(send, from: buffer) }
            while let expected = machine.nextReceive {
                if expected.operation == .overwrite {
                    try awaitRelease(expected.transfer.range)
                }
                let parts: [ZmqMessage]
                if let kept = takeEarlyPiece(generation: generation) { parts = kept } else { parts = try receivePiece(expected) }
                guard let frame = parts.first else { continue }
                let envelope: Envelope
                do throws(DecodeError) {
                    envelope = try Envelope.decode(frame.bytes, expectedRunID: runID)
                } catch .foreignRun {
                    statistics.foreignFramesDropped += 1
                    continue
                } catch {
                    throw RingError.badFrame(rank: previousRank, error: error)
                }
                if envelope.generation > generation {
                    // The previous rank is already in a newer generation: keep its piece for it.
                    early.append((envelope.generation, parts))
                    throw RingError.newerGeneration(rank: previousRank, found: envelope.generation, current: generation)
                }
                guard case let .ringChunk(header) = envelope.message, parts.count == 2 else {
                    throw RingError.unexpectedPiece(rank: previousRank, expected: "ring chunk with a data part",
                                                    found: "\(envelope.message.kind) in \(parts.count) parts")
                }
                let outcome = try parts[1].withUnsafeBytes { data throws(RingError) in
                    try machine.accept(generation: envelope.generation, header: header, data: data, buffer: buffer)
                }
                switch outcome {
                case .dropped:
                    statistics.piecesDropped += 1
                case let .applied(forward):
                    statistics.piecesReceived += 1
                    if let forward { try post(forward, from: buffer) }
                }
            }
            // The caller may reuse or free the buffer on return: wait until libzmq let go of it.
            try awaitRelease(nil)
        } catch {
            // A broken collective leaves pieces queued for a peer that may be dead: drop them
            // so libzmq releases the buffer before the caller gets it back.
            // If libzmq still holds the buffer, that is what the caller must know (it must not
            // reuse the buffer), so it replaces the original error.
            isBroken = true
            sender?.close()
            sender = nil
            try inFlight.requireReleased(nil, within: settings.silenceDeadline)
            throw error
        }
    }

    /// The oldest kept piece of `generation`, if any; kept pieces of older generations are dropped.
    private func takeEarlyPiece(generation: UInt64) -> [ZmqMessage]? {
        early.removeAll { $0.generation < generation }
        guard let index = early.firstIndex(where: { $0.generation == generation }) else { return nil }
        return early.remove(at: index).parts
    }

    private func liveSender() throws(ZmqError) -> ZmqSocket {
        guard let sender else { throw .call(operation: "send to rank \(nextRank)", errno: 0, text: "ring broken earlier; make a new communicator") }
        return sender
    }

    private func post(_ send: RingMachine.Send, from buffer: UnsafeMutableBufferPointer<Float>) throws(RingError) {
        let frame = Envelope(generation: generation, runID: runID, message: .ringChunk(send.header)).encoded()
        let data = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[send.range]))
        let deadline = ContinuousClock.now + settings.silenceDeadline
        do {
            let sender = try liveSender()
            try sender.send(frame, more: true, deadline: deadline)
            let token = inFlight.begin(send.range)
            let inFlight = self.inFlight
            try sender.sendZeroCopy(data, deadline: deadline) { inFlight.end(token) }
        } catch .timedOut(_, _, let seconds) {
            throw .sendStalled(rank: nextRank, endpoint: nextEndpoint, seconds: seconds)
        } catch {
            throw .transport(rank: nextRank, error: error)
        }
        statistics.piecesSent += 1
        statistics.bytesSent += data.count
    }

    /// Waits until libzmq has let go of the buffer `range` (nil: of every range). The next rank
    /// reads those bytes; while the liveness hook vouches for it, a slow reader is a stall.
    private func awaitRelease(_ range: Range<Int>?) throws(RingError) {
        var waited = Duration.zero
        while !inFlight.waitUntilReleased(range, deadline: .now + settings.silenceDeadline) {
            waited += settings.silenceDeadline
            guard let isPeerAlive = settings.isPeerAlive, isPeerAlive(nextRank) else {
                throw .bufferStillInUse(seconds: waited.inSeconds)
            }
            statistics.stalls += 1
            settings.onStall?(nextRank, waited)
        }
    }

    /// Receives the parts of one piece; silence past the deadline is death unless the
    /// liveness hook vouches for the peer (then it is a stall, reported, and waited for).
    private func receivePiece(_ expected: RingReceive) throws(RingError) -> [ZmqMessage] {
        var waited = Duration.zero
        while true {
            do {
                return try receiver.receiveParts(deadline: .now + settings.silenceDeadline, maxParts: 2)
            } catch .tooManyParts {
                // Discarded whole by the socket; no ring piece has more than two parts.
                statistics.malformedMessagesDropped += 1
                continue
            } catch .timedOut {
                waited += settings.silenceDeadline
                if let isPeerAlive = settings.isPeerAlive, isPeerAlive(previousRank) {
                    statistics.stalls += 1
                    settings.onStall?(previousRank, waited)
                    continue
                }
                // The receiving side does not know the previous rank's address (it connects to us).
                throw .peerSilent(rank: previousRank, endpoint: nil, seconds: waited.inSeconds,
                                  step: expected.transfer.step, piece: expected.transfer.piece)
            } catch {
                throw .transport(rank: previousRank, error: error)
            }
        }
    }
}
