/// The decisions of a supervisor of K child ranks (`scvae-worker --nproc-per-node K`), with no
/// processes: which ranks to start again and when, and when the supervisor is done and with what
/// exit status. Each rank has its own `RestartPolicy`.
public struct RankSupervision: Sendable, Equatable {
    public enum RankState: Sendable, Equatable {
        case running
        /// Dead; to be started again at this time.
        case waiting(until: Double)
        /// Exited 0: its part of the run is done.
        case finished
        /// Exited 75: the run was stopped early (its state saved), to be resumed.
        case runStopped
        /// Dead for good (a crash loop, a refused command line, a stop).
        case abandoned
    }

    public private(set) var states: [RankState]
    private var policies: [RestartPolicy]
    public private(set) var stopping = false

    /// K ranks, all running (just started).
    public init(ranks: Int, policy: RestartPolicy) {
        states = Array(repeating: .running, count: ranks)
        policies = Array(repeating: policy, count: ranks)
    }

    /// Rank `rank` ended with `exit` at `now`: what happens to it (a stop in progress restarts
    /// nothing).
    public mutating func exited(rank: Int, _ exit: ChildExit, now: Double) -> RestartPolicy.Decision {
        if stopping {
            switch exit {
            case .exited(0): states[rank] = .finished; return .finished
            case .exited(ChildExit.runStoppedEarly): states[rank] = .runStopped; return .runStopped
            default: states[rank] = .abandoned; return .giveUp(reason: "the supervisor is stopping")
            }
        }
        let decision = policies[rank].decide(exit, now: now)
        switch decision {
        case .finished: states[rank] = .finished
        case .runStopped: states[rank] = .runStopped
        case let .restart(after, _): states[rank] = .waiting(until: now + after)
        case .giveUp: states[rank] = .abandoned
        }
        return decision
    }

    /// The ranks whose back-off is over at `now`; they count as running from here on.
    public mutating func due(now: Double) -> [Int] {
        var ranks: [Int] = []
        for (rank, state) in states.enumerated() {
            if case let .waiting(until) = state, until <= now {
                states[rank] = .running
                ranks.append(rank)
            }
        }
        return ranks
    }

    /// Rank `rank` could not be started again: it is given up.
    public mutating func failedToStart(rank: Int) {
        states[rank] = .abandoned
    }

    /// SIGTERM or SIGINT: no rank is started again; ranks waiting for a restart are given up.
    public mutating func stop() {
        stopping = true
        for (rank, state) in states.enumerated() where state.isWaiting { states[rank] = .abandoned }
    }

    /// The supervisor's exit status once no rank is running or waiting: 0 when every rank
    /// finished, 75 when the run was stopped early (every rank finished or stopped with it),
    /// else 1. Nil while any rank runs or waits.
    public var outcome: Int32? {
        guard states.allSatisfy({ $0 == .finished || $0 == .runStopped || $0 == .abandoned }) else { return nil }
        if states.allSatisfy({ $0 == .finished }) { return 0 }
        if !states.contains(.abandoned) { return ChildExit.runStoppedEarly }
        return 1
    }
}

extension RankSupervision.RankState {
    var isWaiting: Bool {
        if case .waiting = self { return true }
        return false
    }
}
