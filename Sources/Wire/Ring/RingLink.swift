/// A message a transport took from the previous rank's direction, as `RingDriver` sees it.
enum RingDelivery<Token> {
    /// Something that decodes as a ring piece; whose it is, the driver decides.
    case piece(RingArrival<Token>)
    /// Bytes that are not a ring piece; `reason` says why (for the drop report).
    case malformed(reason: String)
}

/// A ring piece as received: the run and generation it claims, its header, and its float32
/// data, readable until the driver hands the arrival back with `RingLink.release`.
struct RingArrival<Token> {
    var runID: UInt64
    var generation: UInt64
    var header: RingChunkHeader
    var data: UnsafeRawBufferPointer
    /// What keeps `data` alive and tells the transport which message this was.
    var token: Token
}

/// What a rank that cannot move is waiting for.
enum RingWaitReason: Equatable {
    /// The next piece from the previous rank.
    case piece
    /// Room at the next rank for a piece this rank has to send.
    case room
    /// The transport to let go of buffer bytes it still sends from (ZeroMQ's zero-copy sends).
    case release
}

/// The few things in which the ring's transports differ: posting a piece, receiving the next
/// one, knowing whether buffer bytes are still being sent, and waiting for a neighbour.
/// `RingDriver` runs every collective over these, with one `RingMachine` per collective, so the
/// schedule, the order of sums, the identity rules, the drops and the liveness rules are the
/// same code for ZeroMQ (`RingCommunicator`) and shared memory (`SharedMemoryRing`).
///
/// Every call comes from the transport's own thread; none waits longer than it says.
protocol RingLink: AnyObject {
    /// What keeps a received message alive until the driver releases it.
    associatedtype Token

    var rank: Int { get }
    var worldSize: Int { get }
    /// This rank's receiving endpoint (named in drop reports).
    var endpoint: String { get }
    var nextEndpoint: String { get }
    var settings: RingSettings { get }
    /// The driver's state kept between collectives.
    var core: RingCore { get set }
    /// How long a rank yields the core before it blocks in `block(for:limit:)`.
    var spinBeforeBlocking: Duration { get }

    /// Throws when no collective can run now (shared memory: closed, broken or not connected).
    func prepareCollective() throws(RingError)
    /// Called at the top of every pass of the driver's loop, before it looks at anything: a
    /// transport whose `block` waits for a change since some value reads that value here.
    func beginPass()
    /// Sends `send` (its header and the bytes of `buffer[send.range]`) to the next rank, or
    /// returns false, having sent nothing, when the next rank has no room for it now.
    func post(_ send: RingMachine.Send, identity: CollectiveIdentity,
              from buffer: UnsafeMutableBufferPointer<Float>) throws(RingError) -> Bool
    /// The next message that arrived for this rank, nil when none has (never waits). Throws only
    /// when the transport itself fails, or a message that must have come from the previous
    /// rank cannot be read (a corrupt shared-memory slot: there is no other copy of it).
    func receive() throws(RingError) -> RingDelivery<Token>?
    /// The driver is done with `arrival`; `keep`: a piece of a newer generation, to be
    /// delivered again (first) to the collectives of that generation.
    func release(_ arrival: RingArrival<Token>, keep: Bool)
    /// Whether an earlier post may still read `range` of the buffer (nil: any of it).
    func isSending(from range: Range<Int>?) -> Bool
    /// Where the next rank reads the data of `send` from, when it can be written there directly
    /// now (shared memory: a free slot of the next rank's inbox, its header already written);
    /// nil otherwise. The driver reduces a piece straight into it, then `publishForwarded`.
    func forwardingDestination(for send: RingMachine.Send, identity: CollectiveIdentity) -> UnsafeMutablePointer<Float>?
    /// Hands the piece written through `forwardingDestination` to the next rank.
    func publishForwarded(_ send: RingMachine.Send)
    /// Nothing moved: throws at once when a neighbour is known to have left (shared memory's
    /// closed flags), instead of waiting for the silence deadline.
    func checkNeighbours(awaiting piece: RingReceive?, hasUnsent: Bool, waited: Duration) throws(RingError)
    /// Sleeps until a neighbour may have moved, or `limit` passed; false when it cannot block
    /// (the driver naps instead).
    func block(for reason: RingWaitReason, limit: Duration) -> Bool
    /// The collective failed: leave it so the caller's buffer is free (or throw
    /// `.bufferStillInUse`, which then replaces the failure) and the neighbours learn it.
    func abandon() throws(RingError)
}

/// What `RingDriver` keeps in a transport between collectives.
struct RingCore {
    var numbering: CollectiveNumbering
    var statistics = RingStatistics()
    var drops: RingDropReporter

    init(runID: UInt64, settings: RingSettings) {
        numbering = CollectiveNumbering(runID: runID)
        drops = RingDropReporter(interval: settings.dropReportInterval)
    }

    /// Counts a dropped message; returns the report due now, if `reporting` (a hook is set).
    /// The caller calls the hook after this mutation has ended (the hook may read the statistics).
    mutating func recordDrop(_ kind: RingDropKind, reason: () -> String, endpoint: String,
                             reporting: Bool) -> RingDropReport? {
        statistics.count(kind)
        guard reporting else { return nil }
        return drops.record(kind, reason: reason(), endpoint: endpoint, at: .now)
    }
}
