/// Settings of a ring communicator, with usable defaults.
public struct RingSettings: Sendable {
    /// Bytes per pipelined piece; 1 MiB lets sending and reducing overlap.
    public var pieceBytes: Int
    /// How long the previous rank may stay silent (or the next refuse data) before the ring
    /// fails with `RingError.peerSilent` / `.sendStalled`.
    public var silenceDeadline: Duration
    /// Whether every piece carries a CRC32C of its data, checked on receipt. Off by default:
    /// measured here it cut a 64 MiB, N=2 all-reduce from ~1.4 to ~0.45 GB/s, while TCP
    /// already checksums segments and replicas compare parameter checksums every few steps
    /// (docs/decisions.md, "Bit-identical replicas"). The small frame before each piece is always checksummed.
    public var checksumData: Bool
    /// Liveness from outside the ring (the worker's heartbeat view): when the silence deadline
    /// passes and this says the peer rank is alive, the ring keeps waiting and reports a stall
    /// (docs/decisions.md: deadlines detect dead processes, not slow steps). Nil: silence is death.
    public var isPeerAlive: (@Sendable (_ rank: Int) -> Bool)?
    /// Called when a live peer has been silent for another `silenceDeadline` (stall detector).
    public var onStall: (@Sendable (_ rank: Int, _ waited: Duration) -> Void)?
    /// ZeroMQ high-water marks of the data sockets, in messages.
    public var highWaterMark: Int32
    /// CURVE for ring traffic: this rank's keys (its receiving socket is the CURVE server).
    /// The next rank's public key is given to `RingCommunicator.connect(toNext:curvePublicKey:)`.
    public var curveKeys: CurveKeyPair?
    /// With `curveKeys`: the ZAP handler that decides which clients the receiving socket admits
    /// (the previous rank's key). Without one, any client that knows this rank's public key may
    /// connect (libzmq's behaviour when no handler is bound).
    public var curveAuthenticator: ZapAuthenticator?
    /// Called on the ring's thread with the messages dropped since its previous call (stale
    /// pieces, frames of another run, malformed messages; `RingStatistics` counts them all):
    /// right after the first drop, then at most once per `dropReportInterval`, so a flood of bad
    /// messages makes one log line per interval. A drop never fails a collective, and its sender
    /// is unknown (a PULL socket cannot tell), so the report names this rank's endpoint, not a rank.
    public var onDrops: (@Sendable (RingDropReport) -> Void)?
    /// The least time between two calls of `onDrops`.
    public var dropReportInterval: Duration
    /// How long `connect(toNext:)` waits for the connection to the next rank (TCP and, with
    /// CURVE, the handshake): nobody listening there, a firewall or keys that do not match fail
    /// the generation after this long instead of leaving both neighbours waiting.
    public var connectDeadline: Duration

    public init(pieceBytes: Int = 1 << 20, silenceDeadline: Duration = .seconds(5), checksumData: Bool = false,
                isPeerAlive: (@Sendable (Int) -> Bool)? = nil, onStall: (@Sendable (Int, Duration) -> Void)? = nil,
                highWaterMark: Int32 = 10_000, curveKeys: CurveKeyPair? = nil, curveAuthenticator: ZapAuthenticator? = nil,
                onDrops: (@Sendable (RingDropReport) -> Void)? = nil, dropReportInterval: Duration = .seconds(10),
                connectDeadline: Duration = .seconds(30)) {
        self.connectDeadline = connectDeadline
        self.curveAuthenticator = curveAuthenticator
        self.onDrops = onDrops
        self.dropReportInterval = max(dropReportInterval, .zero)
        self.pieceBytes = max(pieceBytes, 4)
        self.silenceDeadline = silenceDeadline
        self.checksumData = checksumData
        self.isPeerAlive = isPeerAlive
        self.onStall = onStall
        self.highWaterMark = highWaterMark
        self.curveKeys = curveKeys
    }

    /// Elements per piece, at most 2^28 (1 GiB) so a piece always fits the header's `UInt32` count.
    var pieceElements: Int { min(max(pieceBytes / MemoryLayout<Float>.size, 1), 1 << 28) }

    /// ZMQ_MAXMSGSIZE of the receiving socket: one piece's data plus room for the frame part
    /// and CURVE's overhead.
    var maxReceivedPartBytes: Int { pieceElements * MemoryLayout<Float>.size + ZmqSocket.messageSizeMargin }
}

/// Counters of one ring transport, over its whole life.
public struct RingStatistics: Sendable, Equatable {
    public var bytesSent = 0
    public var piecesSent = 0
    /// Pieces applied to a collective.
    public var piecesReceived = 0
    /// Pieces of this run from an older generation, or from an earlier collective of the
    /// generation, ignored (`RingDropKind.stale`).
    public var piecesDropped = 0
    /// Well-formed frames of another run id, ignored (`RingDropKind.foreignRun`).
    public var foreignFramesDropped = 0
    /// Messages that are not ring pieces, ignored (`RingDropKind.malformed`): a frame that does not
    /// decode (bad magic, version, checksum, length, unknown kind), another kind of message, a
    /// wrong number of parts, a data part that does not hold the elements its header announces.
    /// Shared memory counts a corrupt slot here too, but fails the collective as well: a slot is
    /// the only copy of its piece.
    public var malformedMessagesDropped = 0
    /// Times a live but silent peer was waited for again.
    public var stalls = 0

    public init() {}

    /// Every message dropped, of any kind.
    public var messagesDropped: Int { piecesDropped + foreignFramesDropped + malformedMessagesDropped }

    mutating func count(_ kind: RingDropKind) {
        switch kind {
        case .stale: piecesDropped += 1
        case .foreignRun: foreignFramesDropped += 1
        case .malformed: malformedMessagesDropped += 1
        }
    }
}
