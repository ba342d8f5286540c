import Foundation

/// Buffer ranges that libzmq is still reading from (zero-copy sends not yet released).
/// Written by the ring's thread (begin) and by libzmq's I/O thread (end), hence the lock.
final class InFlightSends: @unchecked Sendable {
    private let lock = NSLock()
    private var active: [Int: Range<Int>] = [:]
    private var nextToken = 0

    func begin(_ range: Range<Int>) -> Int {
        lock.lock()
        defer { lock.unlock() }
        nextToken += 1
        active[nextToken] = range
        return nextToken
    }

    func end(_ token: Int) {
        lock.lock()
        active[token] = nil
        lock.unlock()
    }

    func overlaps(_ range: Range<Int>?) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let range else { return !active.isEmpty }
        return active.values.contains { $0.overlaps(range) }
    }

    /// Waits until no in-flight send overlaps `range` (nil: until none at all), or the deadline.
    func waitUntilReleased(_ range: Range<Int>?, deadline: ContinuousClock.Instant) -> Bool {
        var pause = 20   // microseconds, doubling to 1 ms
        while overlaps(range) {
            if ContinuousClock.now >= deadline { return false }
            usleep(UInt32(pause))
            pause = min(pause * 2, 1000)
        }
        return true
    }

    /// Waits up to `within` for `waitUntilReleased`; throws `.bufferStillInUse` if libzmq still
    /// holds an overlapping buffer then.
    func requireReleased(_ range: Range<Int>?, within: Duration) throws(RingError) {
        guard waitUntilReleased(range, deadline: .now + within) else { throw .bufferStillInUse(seconds: within.inSeconds) }
    }
}
