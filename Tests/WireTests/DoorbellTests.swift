import Foundation
import Synchronization
import Testing
@testable import Wire

/// The shared-memory ring's blocking wait: a rank sleeps on the doorbells of its two inboxes
/// until a neighbour rings one. Words in ordinary memory here (futexes work the same).
struct DoorbellTests {
    /// Two doorbell words, each on its own cache line, for the test's lifetime.
    final class Words: @unchecked Sendable {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)
        init() { memory.initializeMemory(as: UInt8.self, repeating: 0, count: 128) }
        deinit { memory.deallocate() }
        var first: Doorbell { Doorbell(word: memory.assumingMemoryBound(to: Atomic<UInt32>.self)) }
        var second: Doorbell { Doorbell(word: (memory + 64).assumingMemoryBound(to: Atomic<UInt32>.self)) }
    }

    @Test func aWaitOnAValueAlreadyRungReturnsAtOnce() {
        let words = Words()
        let seen = words.first.value
        words.first.ring()
        #expect(words.first.value == seen &+ 1)
        let start = ContinuousClock.now
        #expect(Doorbell.wait((words.first, seen), nil, timeout: TestTiming.scaled(30)))
        #expect(Doorbell.wait((words.first, words.first.value), (words.second, words.second.value &- 1),
                              timeout: TestTiming.scaled(30)))
        #expect(ContinuousClock.now - start < TestTiming.scaled(10))
    }

    @Test func aWaitWithNoRingEndsAtItsTimeout() {
        let words = Words()
        let start = ContinuousClock.now
        #expect(Doorbell.wait((words.first, words.first.value), (words.second, words.second.value), timeout: .milliseconds(50)))
        #expect(ContinuousClock.now - start >= .milliseconds(50))
    }

    @Test(arguments: [false, true])
    func aRingOnEitherWordWakesTheSleeper(ringsSecond: Bool) {
        let words = Words()
        let woken = Mutex<ContinuousClock.Instant?>(nil)
        let (first, second) = (words.first.value, words.second.value)
        let sleeper = Thread {
            _ = Doorbell.wait((words.first, first), (words.second, second), timeout: TestTiming.scaled(60))
            woken.withLock { $0 = ContinuousClock.now }
        }
        sleeper.start()
        Thread.sleep(forTimeInterval: 0.1)
        let rung = ContinuousClock.now
        (ringsSecond ? words.second : words.first).ring()
        let deadline = ContinuousClock.now + TestTiming.scaled(30)
        while woken.withLock({ $0 }) == nil && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.005) }
        let wokenAt = woken.withLock { $0 }
        #expect(wokenAt != nil, "the sleeper was not woken")
        // Woken by the ring, long before its 60 s (scaled) timeout.
        if let wokenAt { #expect(wokenAt - rung < TestTiming.scaled(30)) }
    }
}
