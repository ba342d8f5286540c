/// Why the ring dropped a message instead of using it. The sender of a dropped message is
/// unknown: a ZeroMQ PULL socket does not say which connection a message came from, and bytes
/// written to the ring's port by any process arrive there. So a drop never blames a rank.
public enum RingDropKind: Sendable, Equatable {
    /// A piece of this run from an older generation or an earlier collective: a leftover.
    case stale
    /// A well-formed frame of another run id (an earlier coordinator, another job).
    case foreignRun
    /// Not a ring piece at all: undecodable bytes, a wrong number of parts, a data part that does
    /// not match its header, a message of another kind.
    case malformed
}

/// Messages a ring dropped since its previous report: what `RingSettings.onDrops` receives.
public struct RingDropReport: Sendable, Equatable, CustomStringConvertible {
    public var stale = 0
    public var foreignRun = 0
    public var malformed = 0
    /// Why the latest of them was dropped, e.g. "bad magic 0x8c1f20aa, expected 0x57564353".
    public var lastReason = ""
    /// Where they arrived: the receiving endpoint of the rank that dropped them.
    public var endpoint = ""

    public init(stale: Int = 0, foreignRun: Int = 0, malformed: Int = 0, lastReason: String = "", endpoint: String = "") {
        self.stale = stale
        self.foreignRun = foreignRun
        self.malformed = malformed
        self.lastReason = lastReason
        self.endpoint = endpoint
    }

    public var total: Int { stale + foreignRun + malformed }

    public var description: String {
        let kinds = [(malformed, "malformed"), (foreignRun, "of another run"), (stale, "stale")]
            .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        return "dropped \(total) message(s) on \(endpoint), sender unknown (\(kinds)); latest: \(lastReason)"
    }

    mutating func count(_ kind: RingDropKind) {
        switch kind {
        case .stale: stale += 1
        case .foreignRun: foreignRun += 1
        case .malformed: malformed += 1
        }
    }
}

/// Gathers drops into reports: the first drop is reported at once, later ones at most once per
/// `interval`, so a flood of bad messages costs one line per interval, never one per message.
/// A value with no clock: the caller says what time it is.
struct RingDropReporter: Sendable {
    let interval: Duration
    private var pending = RingDropReport()
    private var lastReport: ContinuousClock.Instant?

    init(interval: Duration) {
        self.interval = interval
    }

    var hasPending: Bool { pending.total > 0 }

    /// Counts one drop; returns the report to deliver now, if one is due.
    mutating func record(_ kind: RingDropKind, reason: String, endpoint: String, at now: ContinuousClock.Instant) -> RingDropReport? {
        pending.count(kind)
        pending.lastReason = reason
        pending.endpoint = endpoint
        return flush(at: now)
    }

    /// The drops not yet reported, if there are any and a report is due at `now`.
    mutating func flush(at now: ContinuousClock.Instant) -> RingDropReport? {
        guard hasPending else { return nil }
        if let lastReport, lastReport.duration(to: now) < interval { return nil }
        lastReport = now
        defer { pending = RingDropReport() }
        return pending
    }
}
