/// Failure detection as a value (an Instance): it is told when each peer was last heard from
/// (a heartbeat, any message) and, given the current time, says who is alive, suspect or dead.
/// It reads no clock and owns no socket: the heartbeat thread or the coordinator's loop feeds
/// it, and `RingSettings.isPeerAlive` can ask it (deadlines detect dead processes; a live but
/// slow peer stays alive as long as its heartbeats arrive).
public struct LivenessTracker<Peer: Hashable & Sendable>: Sendable {
    /// Ordered: alive < suspect < dead. Legal moves: alive -> suspect -> dead as silence grows,
    /// suspect -> alive when the peer is heard again; dead is final until `forget` and `heard`.
    public enum Status: Int, Comparable, Sendable {
        /// Heard from within `suspectAfter`.
        case alive
        /// Silent longer than `suspectAfter`: reported (stall), not yet acted on.
        case suspect
        /// Silent longer than `deadAfter`: its generation must end.
        case dead

        public static func < (lhs: Status, rhs: Status) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public let suspectAfter: Duration
    public let deadAfter: Duration
    private var lastHeard: [Peer: ContinuousClock.Instant] = [:]
    private var declaredDead: Set<Peer> = []

    public init(suspectAfter: Duration, deadAfter: Duration) {
        precondition(suspectAfter <= deadAfter, "suspectAfter must not exceed deadAfter")
        self.suspectAfter = suspectAfter
        self.deadAfter = deadAfter
    }

    public var peers: [Peer] { Array(lastHeard.keys) }

    /// Records a sign of life. A peer declared dead stays dead until `forget` (a dead process
    /// that comes back rejoins through hello, in a new generation).
    public mutating func heard(from peer: Peer, at time: ContinuousClock.Instant) {
        guard !declaredDead.contains(peer) else { return }
        if let previous = lastHeard[peer], previous > time { return }
        lastHeard[peer] = time
    }

    public mutating func forget(_ peer: Peer) {
        lastHeard[peer] = nil
        declaredDead.remove(peer)
    }

    /// The status of `peer` at `now`; nil for a peer never heard from (or forgotten).
    public func status(of peer: Peer, at now: ContinuousClock.Instant) -> Status? {
        if declaredDead.contains(peer) { return .dead }
        guard let last = lastHeard[peer] else { return nil }
        let silence = last.duration(to: now)
        if silence > deadAfter { return .dead }
        if silence > suspectAfter { return .suspect }
        return .alive
    }

    /// Peers that became dead since the last sweep, each reported once, in a stable order.
    public mutating func sweep(at now: ContinuousClock.Instant) -> [Peer] {
        var newlyDead: [Peer] = []
        for peer in lastHeard.keys where !declaredDead.contains(peer) {
            if status(of: peer, at: now) == .dead { newlyDead.append(peer) }
        }
        declaredDead.formUnion(newlyDead)
        return newlyDead.sorted { "\($0)" < "\($1)" }
    }
}
