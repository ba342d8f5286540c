import Launch
import Testing

@Suite struct RestartPolicyTests {
    static let policy = RestartPolicy(limit: 3, window: 600, firstBackOff: 1, longestBackOff: 3)

    @Test func aChildThatFinishedIsNotRestarted() {
        var policy = Self.policy
        #expect(policy.decide(.exited(0), now: 0) == .finished)
        #expect(policy.restartTimes.isEmpty)
    }

    @Test func aChildThatDiedIsRestartedWithADoublingBackOffUpToTheLongest() {
        var policy = Self.policy
        #expect(policy.decide(.signalled(9), now: 0) == .restart(after: 1, attempt: 1))
        #expect(policy.decide(.exited(1), now: 5) == .restart(after: 2, attempt: 2))
        #expect(policy.decide(.signalled(11), now: 10) == .restart(after: 3, attempt: 3), "4 s capped at 3")
    }

    @Test func tooManyRestartsInTheWindowGiveUpAndOldOnesAreForgotten() {
        var policy = Self.policy
        for time in [0.0, 1, 2] { _ = policy.decide(.exited(1), now: time) }
        guard case .giveUp = policy.decide(.exited(1), now: 3) else {
            Issue.record("a fourth death within the window is given up")
            return
        }
        #expect(policy.decide(.exited(1), now: 600.5) == .restart(after: 3, attempt: 3), "the restart at 0 left the window")
        #expect(policy.decide(.exited(1), now: 1300) == .restart(after: 1, attempt: 1), "the window moved past all of them")
    }

    @Test func aRefusedCommandLineIsNotRestarted() {
        var policy = Self.policy
        #expect(policy.decide(.exited(64), now: 0) == .giveUp(reason: "its command line was refused (status 64); a restart would be too"))
    }

    @Test func aChildOfARunStoppedEarlyIsNotRestartedHere() {
        var policy = Self.policy
        #expect(policy.decide(.exited(ChildExit.runStoppedEarly), now: 0) == .runStopped)
        #expect(policy.restartTimes.isEmpty)
    }

    @Test func withNoBackOffRestartsAreImmediate() {
        var policy = RestartPolicy(limit: 2, window: 10, firstBackOff: 0, longestBackOff: 0)
        #expect(policy.grantRestart(now: 0) == 0)
        #expect(policy.grantRestart(now: 1) == 0)
        #expect(policy.grantRestart(now: 2) == nil)
        #expect(policy.grantRestart(now: 10.5) == 0)
    }
}

@Suite struct RankSupervisionTests {
    static let policy = RestartPolicy(limit: 2, window: 600, firstBackOff: 1, longestBackOff: 30)

    @Test func ranksThatAllFinishEndWithZero() {
        var supervision = RankSupervision(ranks: 2, policy: Self.policy)
        #expect(supervision.exited(rank: 0, .exited(0), now: 1) == .finished)
        #expect(supervision.outcome == nil, "rank 1 still runs")
        #expect(supervision.exited(rank: 1, .exited(0), now: 2) == .finished)
        #expect(supervision.outcome == 0)
    }

    @Test func aKilledRankIsStartedAgainWhenItsBackOffIsOver() {
        var supervision = RankSupervision(ranks: 2, policy: Self.policy)
        #expect(supervision.exited(rank: 1, .signalled(9), now: 10) == .restart(after: 1, attempt: 1))
        #expect(supervision.due(now: 10.5) == [])
        #expect(supervision.outcome == nil, "a waiting rank is not done")
        #expect(supervision.due(now: 11) == [1])
        #expect(supervision.states == [.running, .running])
        #expect(supervision.due(now: 12) == [], "started once")
    }

    @Test func eachRankHasItsOwnBudgetAndAGivenUpRankMakesTheOutcomeOne() {
        var supervision = RankSupervision(ranks: 2, policy: Self.policy)
        _ = supervision.exited(rank: 0, .exited(1), now: 0)
        _ = supervision.due(now: 1)
        _ = supervision.exited(rank: 0, .exited(1), now: 2)
        _ = supervision.due(now: 4)
        guard case .giveUp = supervision.exited(rank: 0, .exited(1), now: 5) else {
            Issue.record("the third death of rank 0 is given up")
            return
        }
        #expect(supervision.exited(rank: 1, .exited(1), now: 5) == .restart(after: 1, attempt: 1), "rank 1's budget is its own")
        _ = supervision.due(now: 6)
        #expect(supervision.exited(rank: 1, .exited(0), now: 7) == .finished)
        #expect(supervision.outcome == 1)
    }

    @Test func aStopRestartsNothingAndDropsPendingRestarts() {
        var supervision = RankSupervision(ranks: 3, policy: Self.policy)
        _ = supervision.exited(rank: 0, .signalled(9), now: 0)
        supervision.stop()
        #expect(supervision.due(now: 100) == [])
        #expect(supervision.exited(rank: 1, .signalled(15), now: 1) == .giveUp(reason: "the supervisor is stopping"))
        #expect(supervision.outcome == nil)
        #expect(supervision.exited(rank: 2, .exited(0), now: 1) == .finished)
        #expect(supervision.outcome == 1)
    }

    /// Ranks that exit 75 with their run (stopped early, to be resumed) make the supervisor exit
    /// 75 too, so that the scheduler restarts the node's command; a rank given up makes it 1.
    @Test func ranksStoppedWithTheRunEndWithTheRunStoppedStatus() {
        var supervision = RankSupervision(ranks: 2, policy: Self.policy)
        #expect(supervision.exited(rank: 0, .exited(75), now: 1) == .runStopped)
        #expect(supervision.outcome == nil)
        #expect(supervision.exited(rank: 1, .exited(75), now: 1) == .runStopped)
        #expect(supervision.outcome == 75)
        var mixed = RankSupervision(ranks: 2, policy: Self.policy)
        _ = mixed.exited(rank: 0, .exited(75), now: 1)
        mixed.failedToStart(rank: 1)
        #expect(mixed.outcome == 1)
        var stopping = RankSupervision(ranks: 1, policy: Self.policy)
        stopping.stop()
        #expect(stopping.exited(rank: 0, .exited(75), now: 1) == .runStopped && stopping.outcome == 75)
    }

    @Test func aRankThatCannotBeStartedIsGivenUp() {
        var supervision = RankSupervision(ranks: 1, policy: Self.policy)
        supervision.failedToStart(rank: 0)
        #expect(supervision.outcome == 1)
    }
}
