#if canImport(Glibc)
import Glibc

/// The ring collectives between processes on one host, through shared memory (as NCCL does
/// within a node); ZeroMQ stays the transport for control and across hosts.
///
/// Each rank creates its *inbox*, a shared-memory segment (`shm://NAME`, see
/// `SharedMemoryEndpoint`) holding a queue of `slotCount` piece slots; the previous rank maps
/// it and writes each piece straight into a slot (one copy, from its buffer), and this rank
/// reduces from the slot into its buffer, and in the same pass into the next rank's slot when
/// the piece travels on and nothing waits ahead of it. The same `RingPlan` and `RingMachine` as
/// `RingCommunicator`'s drive it, so sums, their order (bit-identical on every rank), the
/// generation and sequence rules, and the errors are the same. A slot holds one piece (the
/// settings' `pieceBytes`), so reading, reducing and the neighbour's writing pipeline.
///
/// Segments: created mode 0600; the name is removed as soon as the previous rank has mapped
/// it, so a killed process leaves nothing behind once connected (the kernel frees the memory
/// with the last mapping). A rank killed between creating its inbox and its neighbour's
/// attach leaves the name: the next ring created on this host removes such segments
/// (`SharedMemoryEndpoint.removeStaleSegments`, by the dead creator's process id).
///
/// Liveness: a neighbour that makes no progress for `silenceDeadline` is dead unless
/// `RingSettings.isPeerAlive` vouches for it (then `onStall`, and the wait goes on); a
/// neighbour that left the ring (closed, or its collective failed) is an error at once.
/// CURVE does not apply: nothing leaves the host, and only this user can map the segments.
///
/// **Thread:** create, use and close it on one dedicated thread, like `RingCommunicator`.
public final class SharedMemoryRing: RingTransport {
    public static let defaultSlotCount = 8

    public let rank: Int
    public let worldSize: Int
    public let runID: UInt64
    public let settings: RingSettings
    /// `shm://NAME` of this rank's inbox: what the previous rank connects to.
    public let endpoint: String
    public private(set) var nextEndpoint = "(not connected)"
    public private(set) var statistics = RingStatistics()
    /// Pieces reduced (or stored) straight into the next rank's slot, in one pass.
    public private(set) var piecesForwardedInOnePass = 0
    /// Stale segments of dead processes this ring removed when it was created.
    public let removedStaleSegments: [String]
    /// True after a collective failed: make a new ring for the next generation.
    public private(set) var isBroken = false

    private let inboxSegment: SharedMemorySegment
    private let inbox: Inbox
    private var outboxSegment: SharedMemorySegment?
    private var outbox: Inbox?
    /// Running numbers of pieces taken from the inbox and written to the outbox.
    private var received: UInt64 = 0
    private var sent: UInt64 = 0
    private var generation: UInt64 = 0
    private var sequence: UInt64 = 0
    private var isClosed = false

    /// Creates this rank's inbox `shm://NAME` (see `SharedMemoryEndpoint.endpoint`), first
    /// removing stale segments of dead processes. A live segment of that name is an error.
    public init(rank: Int, worldSize: Int, runID: UInt64, bindTo bindEndpoint: String,
                settings: RingSettings = RingSettings(), slotCount: Int = defaultSlotCount) throws(RingError) {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "rank \(rank) of world size \(worldSize)")
        guard let name = SharedMemoryEndpoint.name(of: bindEndpoint) else {
            throw .transport(rank: rank, error: SharedMemoryRing.badEndpoint(bindEndpoint, operation: "bind"))
        }
        self.rank = rank
        self.worldSize = worldSize
        self.runID = runID
        self.settings = settings
        self.endpoint = bindEndpoint
        removedStaleSegments = SharedMemoryEndpoint.removeStaleSegments()
        let layout = InboxLayout(slotCount: max(slotCount, 1), pieceElements: settings.pieceElements)
        do {
            inboxSegment = try SharedMemoryRing.createReplacingStale(name: name, size: layout.totalBytes)
        } catch {
            throw .transport(rank: rank, error: error.transportError)
        }
        inbox = Inbox.format(inboxSegment.base, layout: layout,
                             identity: Inbox.Identity(runID: runID, ownerRank: rank, worldSize: worldSize, ownerPID: getpid()))
    }

    deinit { close() }

    public var previousRank: Int { (rank - 1 + worldSize) % worldSize }
    public var nextRank: Int { (rank + 1) % worldSize }

    /// Maps the next rank's inbox, waiting (bounded by the silence deadline and the liveness
    /// hook) until it exists, then removes its name. `curvePublicKey` is ignored (same host).
    public func connect(toNext endpoint: String, curvePublicKey: String? = nil) throws(RingError) {
        guard let name = SharedMemoryEndpoint.name(of: endpoint) else {
            throw .transport(rank: nextRank, error: SharedMemoryRing.badEndpoint(endpoint, operation: "connect"))
        }
        guard outbox == nil, !isClosed else {
            throw .transport(rank: nextRank, error: .call(operation: "connect to \(endpoint)", errno: EISCONN,
                                                          text: "already connected to \(nextEndpoint), or closed"))
        }
        var idle = IdleWait(silenceDeadline: settings.silenceDeadline)
        while true {
            if let (segment, next) = try attach(name: name, endpoint: endpoint) {
                next.producerPID = getpid()
                sent = next.published.pointee.load(ordering: .acquiring)
                outboxSegment = segment
                outbox = next
                nextEndpoint = endpoint
                // Both ends map it now: without a name, no process death can leave it behind.
                SharedMemorySegment.unlink(name: name)
                return
            }
            if let waited = idle.pause() {
                guard let isPeerAlive = settings.isPeerAlive, isPeerAlive(nextRank) else {
                    throw .transport(rank: nextRank, error: .timedOut(operation: "attach to the inbox of rank \(nextRank)",
                                                                      endpoint: endpoint, seconds: waited.inSeconds))
                }
                statistics.stalls += 1
                settings.onStall?(nextRank, waited)
            }
        }
    }

    /// Sums `buffer` over all ranks in place; every rank ends with the same bytes. All ranks
    /// call it with the same length and generation. The buffer is free again on return.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64) throws(RingError) {
        let schedule = RingSchedule(rank: rank, worldSize: worldSize, elementCount: buffer.count,
                                    pieceElements: settings.pieceElements)
        try run(RingPlan.allReduce(schedule), buffer: buffer, generation: generation)
    }

    /// Copies `root`'s buffer into every rank's `buffer` (same length everywhere).
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int, generation: UInt64) throws(RingError) {
        let plan = RingPlan.broadcast(rank: rank, worldSize: worldSize, root: root, elementCount: buffer.count,
                                      pieceElements: settings.pieceElements)
        try run(plan, buffer: buffer, generation: generation)
    }

    /// The all-reduce schedule without adding (benchmarks only); the buffer is undefined after.
    public func allReduceSendsOnly(_ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64) throws(RingError) {
        let schedule = RingSchedule(rank: rank, worldSize: worldSize, elementCount: buffer.count,
                                    pieceElements: settings.pieceElements)
        try run(RingPlan.allReduce(schedule), buffer: buffer, generation: generation, appliesPieces: false)
    }

    /// Leaves the ring: tells both neighbours, unmaps both segments and removes this rank's
    /// inbox name if it is still there. Always true: no buffer of the caller is kept.
    @discardableResult
    public func close() -> Bool {
        guard !isClosed else { return true }
        isClosed = true
        leaveRing()
        outboxSegment?.unmap()
        outboxSegment = nil
        outbox = nil
        inboxSegment.unlinkIfOwn()
        inboxSegment.unmap()
        return true
    }

    // MARK: - The collective loop

    private func run(_ plan: RingPlan, buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64,
                     appliesPieces: Bool = true) throws(RingError) {
        guard worldSize > 1 else { return }
        guard !isBroken, !isClosed, let outbox else {
            throw .transport(rank: nextRank, error: .call(operation: "send to rank \(nextRank)", errno: ENOTCONN,
                                                          text: isBroken ? "ring broken earlier; make a new ring" : "not connected"))
        }
        if generation != self.generation {
            self.generation = generation
            sequence = 0
        }
        var machine = RingMachine(plan: plan, rank: rank, worldSize: worldSize, generation: generation,
                                  sequence: sequence, checksumsData: settings.checksumData)
        machine.appliesPieces = appliesPieces
        sequence += 1
        do throws(RingError) {
            var outgoing = machine.initialSends(buffer: UnsafeBufferPointer(buffer))
            var firstUnsent = 0
            var idle = IdleWait(silenceDeadline: settings.silenceDeadline)
            while true {
                let bells = doorbellValues()
                var moved = false
                while firstUnsent < outgoing.count, hasRoom(in: outbox) {
                    write(outgoing[firstUnsent], to: outbox, from: buffer)
                    firstUnsent += 1
                    moved = true
                }
                if firstUnsent == outgoing.count {
                    outgoing.removeAll(keepingCapacity: true)
                    firstUnsent = 0
                }
                if let expected = machine.nextReceive, hasPiece,
                   !overwritesUnsent(expected, outgoing[firstUnsent...]) {
                    // Forwarding in the same pass is possible when nothing else waits to be
                    // sent first (pieces go out in plan order) and the next rank has room.
                    let forwardsAtOnce = appliesPieces && !settings.checksumData && expected.forward != nil
                        && outgoing.isEmpty && hasRoom(in: outbox)
                    if let forward = try takePiece(&machine, expected: expected, buffer: buffer,
                                                   forwardingTo: forwardsAtOnce ? outbox : nil) {
                        outgoing.append(forward)
                    }
                    moved = true
                }
                if machine.isComplete && outgoing.isEmpty { return }
                if moved {
                    idle.progressed()
                } else {
                    try waitForNeighbours(&idle, expecting: machine.nextReceive, hasUnsent: !outgoing.isEmpty, bells: bells)
                }
            }
        } catch {
            isBroken = true
            leaveRing()
            throw error
        }
    }

    private var hasPiece: Bool { inbox.published.pointee.load(ordering: .acquiring) > received }

    private func hasRoom(in outbox: Inbox) -> Bool {
        sent - outbox.consumed.pointee.load(ordering: .acquiring) < UInt64(outbox.layout.slotCount)
    }

    /// An all-gather piece must not replace bytes that are still to be sent from the buffer.
    private func overwritesUnsent(_ expected: RingReceive, _ unsent: ArraySlice<RingMachine.Send>) -> Bool {
        expected.operation == .overwrite && unsent.contains { $0.range.overlaps(expected.transfer.range) }
    }

    private func write(_ send: RingMachine.Send, to outbox: Inbox, from buffer: UnsafeMutableBufferPointer<Float>) {
        let data = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[send.range]))
        PieceSlot.write(outbox.slot(sent), generation: generation, header: send.header, data: data)
        publishSent(to: outbox, bytes: data.count)
    }

    /// Makes the piece just written into slot `sent` visible to the next rank.
    private func publishSent(to outbox: Inbox, bytes: Int) {
        sent += 1
        outbox.published.pointee.store(sent, ordering: .releasing)
        outbox.doorbell.ring()
        statistics.piecesSent += 1
        statistics.bytesSent += bytes
    }

    /// Applies the next inbox piece (or drops a stale one) and frees its slot; returns the
    /// piece still to forward, if any. With `outbox`, a piece that is forwarded is reduced
    /// straight into the next rank's slot as well (one pass instead of apply, then copy).
    private func takePiece(_ machine: inout RingMachine, expected: RingReceive, buffer: UnsafeMutableBufferPointer<Float>,
                           forwardingTo outbox: Inbox?) throws(RingError) -> RingMachine.Send? {
        let piece = try PieceSlot.read(inbox.slot(received), slotBytes: inbox.layout.slotBytes, from: previousRank)
        // The machine checks the piece; the fused pass below applies it.
        let applies = machine.appliesPieces
        machine.appliesPieces = applies && outbox == nil
        defer { machine.appliesPieces = applies }
        let outcome = try machine.accept(generation: piece.generation, header: piece.header, data: piece.data, buffer: buffer)
        var unsent: RingMachine.Send?
        switch outcome {
        case .dropped:
            statistics.piecesDropped += 1
        case let .applied(forward):
            statistics.piecesReceived += 1
            unsent = forward
            guard let outbox else { break }
            let range = expected.transfer.range
            let incoming = UnsafeBufferPointer(start: piece.data.baseAddress?.assumingMemoryBound(to: Float.self), count: range.count)
            let target = UnsafeMutableBufferPointer(rebasing: buffer[range])
            if let forward, let source = incoming.baseAddress, let destination = target.baseAddress {
                let slot = outbox.slot(sent)
                PieceSlot.writeHeader(slot, generation: generation, header: forward.header)
                ForwardingKernel.apply(expected.operation, incoming: source, target: destination,
                                       forward: PieceSlot.data(slot).assumingMemoryBound(to: Float.self), count: range.count)
                publishSent(to: outbox, bytes: range.count * MemoryLayout<Float>.size)
                piecesForwardedInOnePass += 1
                unsent = nil
            } else {
                RingMachine.apply(expected.operation, incoming, to: target)
            }
        }
        received += 1
        inbox.consumed.pointee.store(received, ordering: .releasing)
        inbox.doorbell.ring()
        return unsent
    }

    /// Nothing moved: a neighbour that left is an error now; otherwise wait a little, and
    /// each time another silence deadline passes, ask the liveness hook about the neighbour
    /// this rank is blocked on (the previous rank when a piece is awaited).
    private func waitForNeighbours(_ idle: inout IdleWait, expecting expected: RingReceive?, hasUnsent: Bool,
                                   bells: DoorbellValues) throws(RingError) {
        let awaitsPiece = expected != nil && !hasPiece
        if awaitsPiece, let expected, inbox.producerClosed.pointee.load(ordering: .acquiring) == 1, !hasPiece {
            throw .peerSilent(rank: previousRank, endpoint: nil, seconds: idle.waited.inSeconds,
                              step: expected.transfer.step, piece: expected.transfer.piece)
        }
        if hasUnsent, let outbox, outbox.ownerClosed.pointee.load(ordering: .acquiring) == 1 {
            throw .sendStalled(rank: nextRank, endpoint: nextEndpoint, seconds: idle.waited.inSeconds)
        }
        let block = { (limit: Duration) -> Bool in
            Doorbell.wait((self.inbox.doorbell, bells.inbox), self.outbox.map { ($0.doorbell, bells.outbox) }, timeout: limit)
        }
        guard let waited = idle.pause(block: block) else { return }
        let peer = awaitsPiece ? previousRank : nextRank
        if let isPeerAlive = settings.isPeerAlive, isPeerAlive(peer) {
            statistics.stalls += 1
            settings.onStall?(peer, waited)
            return
        }
        if awaitsPiece, let expected {
            throw .peerSilent(rank: previousRank, endpoint: nil, seconds: waited.inSeconds,
                              step: expected.transfer.step, piece: expected.transfer.piece)
        }
        throw .sendStalled(rank: nextRank, endpoint: nextEndpoint, seconds: waited.inSeconds)
    }

    /// Tells both neighbours this rank left the ring (they fail at once instead of at the deadline).
    private func leaveRing() {
        inbox.ownerClosed.pointee.store(1, ordering: .releasing)
        inbox.doorbell.ring()
        outbox?.producerClosed.pointee.store(1, ordering: .releasing)
        outbox?.doorbell.ring()
    }

    /// The doorbells of this rank's inbox and the next rank's, read at the top of a pass.
    struct DoorbellValues {
        var inbox: UInt32
        var outbox: UInt32
    }

    private func doorbellValues() -> DoorbellValues {
        DoorbellValues(inbox: inbox.doorbell.value, outbox: outbox?.doorbell.value ?? 0)
    }

    // MARK: - Segments

    /// Maps `name` if its creator has finished it and it is the next rank's inbox of this run.
    private func attach(name: String, endpoint: String) throws(RingError) -> (SharedMemorySegment, Inbox)? {
        let segment: SharedMemorySegment?
        do {
            segment = try SharedMemorySegment.open(name: name, minimumSize: InboxLayout.controlBytes)
        } catch {
            throw .transport(rank: nextRank, error: error.transportError)
        }
        guard let segment, let result = Inbox.read(segment.base, size: segment.size) else { return nil }
        let refuse = { (why: String) -> RingError in
            .transport(rank: self.nextRank, error: .call(operation: "attach to \(endpoint)", errno: EPROTO, text: why))
        }
        switch result {
        case let .failure(format):
            throw refuse("\(format)")
        case let .success((next, identity)):
            guard identity.runID == runID, identity.worldSize == worldSize, identity.ownerRank == nextRank else {
                throw refuse("segment of run \(String(identity.runID, radix: 16)), rank \(identity.ownerRank) of \(identity.worldSize); " +
                             "expected run \(String(runID, radix: 16)), rank \(nextRank) of \(worldSize)")
            }
            guard next.layout.slotElements >= settings.pieceElements else {
                throw refuse("slots of \(next.layout.slotElements) elements, pieces of \(settings.pieceElements)")
            }
            return (segment, next)
        }
    }

    private static func createReplacingStale(name: String, size: Int) throws(SystemCallError) -> SharedMemorySegment {
        do {
            return try SharedMemorySegment.create(name: name, size: size)
        } catch where error.number == EEXIST {
            guard let owner = SharedMemoryEndpoint.ownerPID(ofSegment: name),
                  !SharedMemoryEndpoint.isProcessAlive(owner) else {
                throw SystemCallError("shm_open /\(name) (exists, created by a live process or not a ring segment)",
                                      errno: EEXIST)
            }
            SharedMemorySegment.unlink(name: name)
            return try SharedMemorySegment.create(name: name, size: size)
        }
    }

    private static func badEndpoint(_ endpoint: String, operation: String) -> ZmqError {
        .call(operation: "\(operation) \(endpoint)", errno: EINVAL,
              text: "not a shm://NAME endpoint (NAME: 1 to 200 of A-Z a-z 0-9 . _ -)")
    }
}
#endif
