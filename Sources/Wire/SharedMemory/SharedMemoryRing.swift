#if canImport(Glibc)
import Glibc

/// The ring collectives between processes on one host, through shared memory (as NCCL does
/// within a node); ZeroMQ stays the transport for control and across hosts.
///
/// Each rank creates its *inbox*, a shared-memory segment (`shm://NAME`, see
/// `SharedMemoryEndpoint`) holding a queue of `slotCount` piece slots; the previous rank maps
/// it and writes each piece straight into a slot (one copy, from its buffer), and this rank
/// reduces from the slot into its buffer, and in the same pass into the next rank's slot when
/// the piece travels on and nothing waits ahead of it. `RingDriver` runs its collectives, as it
/// does `RingCommunicator`'s, so sums, their order (bit-identical on every rank), the run,
/// generation and sequence rules, the drops and the errors are the same. A slot holds one
/// piece (the settings' `pieceBytes`), so reading, reducing and the neighbour's writing pipeline.
///
/// Only the previous rank writes into the inbox, and only after it checked the inbox's run,
/// rank and world size; so every slot is a piece of this run. A slot that does not read as a
/// piece (an unknown collective, more elements than the slot holds) is counted as malformed
/// and fails the collective: unlike a stray ZeroMQ message it is the only copy of a piece.
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
    public var statistics: RingStatistics { core.statistics }
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
    private var isClosed = false
    var core: RingCore
    /// The doorbells of this rank's inbox and the next rank's, read at the top of a pass.
    private var bells = DoorbellValues(inbox: 0, outbox: 0)

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
        core = RingCore(runID: runID, settings: settings)
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
                core.statistics.stalls += 1
                settings.onStall?(nextRank, waited)
            }
        }
    }

    /// Sums `buffer` over all ranks in place; every rank ends with the same bytes. All ranks
    /// call it with the same length and generation. The buffer is free again on return.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64) throws(RingError) {
        try RingDriver.allReduce(self, buffer, generation: generation)
    }

    /// Copies `root`'s buffer into every rank's `buffer` (same length everywhere).
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int, generation: UInt64) throws(RingError) {
        try RingDriver.broadcast(self, buffer, root: root, generation: generation)
    }

    /// The all-reduce schedule without adding (benchmarks only); the buffer is undefined after.
    public func allReduceSendsOnly(_ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64) throws(RingError) {
        try RingDriver.allReduce(self, buffer, generation: generation, appliesPieces: false)
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

    // MARK: - Pieces

    private var hasPiece: Bool { inbox.published.pointee.load(ordering: .acquiring) > received }

    private func hasRoom(in outbox: Inbox) -> Bool {
        sent - outbox.consumed.pointee.load(ordering: .acquiring) < UInt64(outbox.layout.slotCount)
    }

    /// Makes the piece just written into slot `sent` visible to the next rank.
    private func publishSent(to outbox: Inbox) {
        sent += 1
        outbox.published.pointee.store(sent, ordering: .releasing)
        outbox.doorbell.ring()
    }

    /// Tells both neighbours this rank left the ring (they fail at once instead of at the deadline).
    private func leaveRing() {
        inbox.ownerClosed.pointee.store(1, ordering: .releasing)
        inbox.doorbell.ring()
        outbox?.producerClosed.pointee.store(1, ordering: .releasing)
        outbox?.doorbell.ring()
    }

    /// Doorbell values read at the top of a pass: a ring after them ends the next wait at once.
    struct DoorbellValues {
        var inbox: UInt32
        var outbox: UInt32
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
extension SharedMemoryRing: RingLink {
    var spinBeforeBlocking: Duration { .microseconds(50) }

    func prepareCollective() throws(RingError) {
        guard !isBroken, !isClosed, outbox != nil else {
            throw .transport(rank: nextRank, error: .call(operation: "send to rank \(nextRank)", errno: ENOTCONN,
                                                          text: isBroken ? "ring broken earlier; make a new ring" : "not connected"))
        }
    }

    func beginPass() {
        bells = DoorbellValues(inbox: inbox.doorbell.value, outbox: outbox?.doorbell.value ?? 0)
    }

    /// Copies the piece into the next free slot of the next rank's inbox; false when all are taken.
    func post(_ send: RingMachine.Send, identity: CollectiveIdentity,
              from buffer: UnsafeMutableBufferPointer<Float>) throws(RingError) -> Bool {
        guard let outbox, hasRoom(in: outbox) else { return false }
        let data = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[send.range]))
        PieceSlot.write(outbox.slot(sent), generation: identity.generation, header: send.header, data: data)
        publishSent(to: outbox)
        return true
    }

    func receive() throws(RingError) -> RingDelivery<UInt64>? {
        guard hasPiece else { return nil }
        let piece: (generation: UInt64, header: RingChunkHeader, data: UnsafeRawBufferPointer)
        do throws(RingError) {
            piece = try PieceSlot.read(inbox.slot(received), slotBytes: inbox.layout.slotBytes, from: previousRank)
        } catch {
            let report = core.recordDrop(.malformed, reason: { "slot \(self.received): \(error)" }, endpoint: endpoint,
                                         reporting: settings.onDrops != nil)
            if let report { settings.onDrops?(report) }
            throw error
        }
        // The producer attached only after checking this inbox's run id: its pieces are of this run.
        return .piece(RingArrival(runID: runID, generation: piece.generation, header: piece.header, data: piece.data,
                                  token: received))
    }

    /// Frees the slot, unless the piece is kept: then it stays first in the inbox.
    func release(_ arrival: RingArrival<UInt64>, keep: Bool) {
        guard !keep else { return }
        received += 1
        inbox.consumed.pointee.store(received, ordering: .releasing)
        inbox.doorbell.ring()
    }

    /// Pieces are copied out of the buffer when posted.
    func isSending(from range: Range<Int>?) -> Bool { false }

    func forwardingDestination(for send: RingMachine.Send, identity: CollectiveIdentity) -> UnsafeMutablePointer<Float>? {
        guard let outbox, hasRoom(in: outbox) else { return nil }
        let slot = outbox.slot(sent)
        PieceSlot.writeHeader(slot, generation: identity.generation, header: send.header)
        return PieceSlot.data(slot).assumingMemoryBound(to: Float.self)
    }

    func publishForwarded(_ send: RingMachine.Send) {
        guard let outbox else { return }
        publishSent(to: outbox)
        piecesForwardedInOnePass += 1
    }

    /// A neighbour that left the ring is an error now, not at the silence deadline.
    func checkNeighbours(awaiting piece: RingReceive?, hasUnsent: Bool, waited: Duration) throws(RingError) {
        // Looked at again after the flag: a piece published just before leaving still counts.
        if let piece, !hasPiece, inbox.producerClosed.pointee.load(ordering: .acquiring) == 1, !hasPiece {
            throw .peerSilent(rank: previousRank, endpoint: nil, seconds: waited.inSeconds,
                              step: piece.transfer.step, piece: piece.transfer.piece)
        }
        if hasUnsent, let outbox, outbox.ownerClosed.pointee.load(ordering: .acquiring) == 1 {
            throw .sendStalled(rank: nextRank, endpoint: nextEndpoint, seconds: waited.inSeconds)
        }
    }

    /// Sleeps on both doorbells (either neighbour moving wakes this rank).
    func block(for reason: RingWaitReason, limit: Duration) -> Bool {
        Doorbell.wait((inbox.doorbell, bells.inbox), outbox.map { ($0.doorbell, bells.outbox) }, timeout: limit)
    }

    func abandon() throws(RingError) {
        isBroken = true
        leaveRing()
    }
}
#endif
