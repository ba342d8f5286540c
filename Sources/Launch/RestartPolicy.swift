/// How a child process ended.
public enum ChildExit: Sendable, Equatable, CustomStringConvertible {
    /// It called exit with this status.
    case exited(Int32)
    /// A signal ended it (SIGKILL from the OOM killer or a person, SIGSEGV).
    case signalled(Int32)

    /// Exit status 64 (EX_USAGE): the command line was refused, and will be again.
    static let usageError: Int32 = 64
    /// Exit status 75 (EX_TEMPFAIL): the run was stopped before its end (a signal to the
    /// coordinator) with its state saved; the same command resumes it. What the coordinator and
    /// its workers exit with then, so that schedulers restart them rather than count them done.
    public static let runStoppedEarly: Int32 = 75

    public var description: String {
        switch self {
        case let .exited(status): "exited with status \(status)"
        case let .signalled(signal): "was killed by signal \(signal)"
        }
    }
}

/// When a child that died is started again: not when it finished (status 0) or its command line
/// was refused (a restart would be refused too); otherwise after a back-off that doubles with
/// each restart in the last `window` seconds, until `limit` restarts in that window, when it is
/// given up (a crash loop). A value with no clock: callers pass the time.
public struct RestartPolicy: Sendable, Equatable {
    /// Restarts allowed within `window` seconds.
    public var limit: Int
    public var window: Double
    /// Wait before the first restart in a window; each further one waits twice as long.
    public var firstBackOff: Double
    public var longestBackOff: Double
    /// When the restarts within the window were granted.
    public private(set) var restartTimes: [Double] = []

    public init(limit: Int, window: Double, firstBackOff: Double, longestBackOff: Double) {
        self.limit = limit
        self.window = window
        self.firstBackOff = firstBackOff
        self.longestBackOff = longestBackOff
    }

    public enum Decision: Sendable, Equatable {
        /// The child finished its work: nothing to do.
        case finished
        /// The run was stopped before its end (status 75): not started again here; whoever
        /// resumes the run starts it again.
        case runStopped
        /// Start it again `after` seconds from now (the `attempt`th restart in the window).
        case restart(after: Double, attempt: Int)
        /// Leave it dead, for `reason` (a sentence for the log).
        case giveUp(reason: String)
    }

    /// What to do about a child that ended with `exit` at `now`.
    public mutating func decide(_ exit: ChildExit, now: Double) -> Decision {
        switch exit {
        case .exited(0):
            return .finished
        case .exited(ChildExit.runStoppedEarly):
            return .runStopped
        case .exited(ChildExit.usageError):
            return .giveUp(reason: "its command line was refused (status \(ChildExit.usageError)); a restart would be too")
        default:
            guard let backOff = grantRestart(now: now) else {
                return .giveUp(reason: "\(limit) restarts in the last \(Int(window)) s")
            }
            return .restart(after: backOff, attempt: restartTimes.count)
        }
    }

    /// Grants one more restart at `now` and returns its back-off, or nil when `limit` restarts
    /// have been granted in the last `window` seconds.
    public mutating func grantRestart(now: Double) -> Double? {
        restartTimes.removeAll { now - $0 >= window }
        guard restartTimes.count < limit else { return nil }
        let backOff = firstBackOff * Double(1 << min(restartTimes.count, 30))
        restartTimes.append(now)
        return min(backOff, longestBackOff)
    }
}
