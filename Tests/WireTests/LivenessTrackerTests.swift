import Testing
@testable import Wire

@Suite struct LivenessTrackerTests {
    @Test func silenceMovesAPeerFromAliveToSuspectToDeadOnce() {
        let start = ContinuousClock.now
        var tracker = LivenessTracker<Int>(suspectAfter: .seconds(1), deadAfter: .seconds(5))
        tracker.heard(from: 1, at: start)
        tracker.heard(from: 2, at: start)
        #expect(tracker.status(of: 1, at: start + .milliseconds(900)) == .alive)
        #expect(tracker.status(of: 1, at: start + .seconds(2)) == .suspect)
        tracker.heard(from: 2, at: start + .seconds(4))
        // Older news does not roll time back.
        tracker.heard(from: 2, at: start + .seconds(1))
        #expect(tracker.status(of: 2, at: start + .milliseconds(4500)) == .alive)
        #expect(tracker.status(of: 2, at: start + .seconds(6)) == .suspect)
        #expect(tracker.sweep(at: start + .seconds(6)) == [1])
        #expect(tracker.sweep(at: start + .seconds(7)) == [])
        // Dead stays dead until forgotten.
        tracker.heard(from: 1, at: start + .seconds(8))
        #expect(tracker.status(of: 1, at: start + .seconds(8)) == .dead)
        tracker.forget(1)
        #expect(tracker.status(of: 1, at: start + .seconds(8)) == nil)
        tracker.heard(from: 1, at: start + .seconds(9))
        #expect(tracker.status(of: 1, at: start + .seconds(9)) == .alive)
        #expect(tracker.status(of: 3, at: start) == nil)
        #expect(LivenessTracker<Int>.Status.alive < .suspect && LivenessTracker<Int>.Status.suspect < .dead)
    }
}
