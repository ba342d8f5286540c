#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a rank with nothing to do waits for its neighbours, and how long it has waited: yield
/// the core for the first `spinTime` of a stretch without progress (a neighbour mid-copy is
/// microseconds away), then sleep until a neighbour moves (`block`: a doorbell, a socket poll)
/// or, where the caller cannot block, nap with growing naps up to `longestNap`. The stretch is
/// measured, so the caller learns each time another `silenceDeadline` has passed and asks the
/// liveness hook. No single wait here is longer than `longestBlock`.
///
/// Only progress (a piece applied or sent) ends a stretch: messages that are dropped do not, so
/// a peer that floods the ring with junk cannot hide that the real neighbour went silent.
struct IdleWait {
    let silenceDeadline: Duration
    var spinTime: Duration = .milliseconds(2)
    var longestNap: Duration = .milliseconds(1)
    /// Yielding before a blocking wait: short, since a neighbour wakes the rank within
    /// microseconds and yielding keeps the core from the work beside it.
    var blockingSpinTime: Duration = .microseconds(50)
    /// The longest single blocking wait: a lost wake-up costs at most this.
    var longestBlock: Duration = .milliseconds(100)
    private var idleSince: ContinuousClock.Instant?
    /// Silence deadlines already reported in this stretch.
    private(set) var waited: Duration = .zero
    private var nap: Duration = .microseconds(20)
    /// The caller's blocking wait said it cannot block: yield and nap as without one.
    private var cannotBlock = false

    init(silenceDeadline: Duration, blockingSpinTime: Duration = .microseconds(50)) {
        self.silenceDeadline = silenceDeadline
        self.blockingSpinTime = blockingSpinTime
    }

    /// Something moved: the next pause starts a new stretch.
    mutating func progressed() {
        idleSince = nil
        waited = .zero
        nap = .microseconds(20)
    }

    /// Without waiting: the stretch's length when another silence deadline has passed since the
    /// last report (starting the stretch if none runs), nil otherwise.
    mutating func deadlinePassed() -> Duration? {
        let now = ContinuousClock.now
        guard let start = idleSince else {
            idleSince = now
            return nil
        }
        guard now - start >= waited + silenceDeadline else { return nil }
        waited += silenceDeadline
        return waited
    }

    /// Waits a little: `block(limit)` sleeps until a neighbour moves or `limit` passes and
    /// returns false when it cannot block. Returns the stretch's length when another silence
    /// deadline has passed (the caller asks whether the peer is alive), nil otherwise.
    mutating func pause(block: ((Duration) -> Bool)? = nil) -> Duration? {
        let now = ContinuousClock.now
        // A new stretch starts at zero: it yields first unless the caller blocks without
        // spinning (a socket poll: yielding on a busy host can give away a whole time slice).
        let start = idleSince ?? now
        idleSince = start
        let idle = now - start
        if idle >= waited + silenceDeadline {
            waited += silenceDeadline
            return waited
        }
        let blocks = block != nil && !cannotBlock
        if idle < (blocks ? blockingSpinTime : spinTime) {
            sched_yield()
            return nil
        }
        let remaining = waited + silenceDeadline - idle
        if blocks, let block {
            if block(min(remaining, longestBlock)) { return nil }
            cannotBlock = true
        }
        IdleWait.sleep(for: min(nap, remaining))
        nap = min(nap * 2, longestNap)
        return nil
    }

    static func sleep(for duration: Duration) {
        let (seconds, attoseconds) = max(duration, .zero).components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        nanosleep(&request, nil)
    }
}
