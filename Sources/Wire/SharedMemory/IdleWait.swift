#if canImport(Glibc)
import Glibc

/// How a shared-memory rank waits for its neighbours: yield the core for the first
/// `spinTime` of a stretch without progress (a neighbour mid-copy is microseconds away), then
/// sleep until a neighbour rings (`block`, see Doorbell) or, where the caller cannot block,
/// nap with growing naps up to `longestNap`. The stretch is measured, so the caller learns
/// each time another `silenceDeadline` has passed and asks the liveness hook, exactly as
/// `RingCommunicator` does for a silent socket. No wait here is longer than `longestBlock`.
struct IdleWait {
    let silenceDeadline: Duration
    var spinTime: Duration = .milliseconds(2)
    var longestNap: Duration = .milliseconds(1)
    /// Yielding before a blocking wait: short, since a ring wakes the rank within microseconds
    /// and yielding keeps the core from the work beside it (a thread yielding to no one spins).
    var blockingSpinTime: Duration = .microseconds(50)
    /// The longest single blocking wait: a lost ring costs at most this.
    var longestBlock: Duration = .milliseconds(100)
    private var idleSince: ContinuousClock.Instant?
    /// Silence deadlines already reported in this stretch.
    private(set) var waited: Duration = .zero
    private var nap: Duration = .microseconds(20)
    /// The caller's blocking wait said it cannot block: yield and nap as without one.
    private var cannotBlock = false

    init(silenceDeadline: Duration) {
        self.silenceDeadline = silenceDeadline
    }

    /// Something moved: the next pause starts a new stretch.
    mutating func progressed() {
        idleSince = nil
        waited = .zero
        nap = .microseconds(20)
    }

    /// Waits a little: `block(limit)` sleeps until a neighbour moves or `limit` passes and
    /// returns false when it cannot block. Returns the stretch's length when another silence
    /// deadline has passed (the caller asks whether the peer is alive), nil otherwise.
    mutating func pause(block: ((Duration) -> Bool)? = nil) -> Duration? {
        let now = ContinuousClock.now
        guard let start = idleSince else {
            idleSince = now
            sched_yield()
            return nil
        }
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
        sleep(for: min(nap, remaining))
        nap = min(nap * 2, longestNap)
        return nil
    }

    private func sleep(for duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        nanosleep(&request, nil)
    }
}
#endif
