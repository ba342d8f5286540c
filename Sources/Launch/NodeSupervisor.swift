import Foundation
import Logging

/// `scvae-worker --nproc-per-node K`: starts K child ranks of one executable, each pinned to its
/// own CPUs, starts a rank again when it dies (`RankSupervision` decides), and on SIGTERM or
/// SIGINT stops them all: SIGTERM to each, then SIGKILL to any still running after `stopGrace`.
/// Blocks the calling thread until every rank is done; returns the exit status.
/// Used by one thread at a time: `run` (or `runOnOwnThread`) owns it until it returns.
public final class NodeSupervisor: @unchecked Sendable {
    public struct Rank: Sendable, Equatable {
        public var id: String
        public var arguments: [String]
        public var cpus: [Int]

        public init(id: String, arguments: [String], cpus: [Int]) {
            self.id = id
            self.arguments = arguments
            self.cpus = cpus
        }
    }

    /// Each rank: at most 5 restarts in 10 minutes, waiting 1, 2, 4, 8, 16 s.
    public static let defaultPolicy = RestartPolicy(limit: 5, window: 600, firstBackOff: 1, longestBackOff: 30)

    let executable: String
    let ranks: [Rank]
    let environment: [String: String]
    let stopGrace: Duration
    let logger: Logger
    let policy: RestartPolicy
    private var supervision: RankSupervision
    private var processes: [Int: Process] = [:]
    private let start = ContinuousClock.now

    public init(executable: String, ranks: [Rank], environment: [String: String], policy: RestartPolicy = defaultPolicy,
                stopGrace: Duration = .seconds(10), logger: Logger) {
        self.executable = executable
        self.ranks = ranks
        self.stopGrace = stopGrace
        self.logger = logger
        self.policy = policy
        supervision = RankSupervision(ranks: ranks.count, policy: policy)
        var environment = environment
        // The ranks ignore SIGINT (a Ctrl-C reaches the whole process group; this process stops
        // them) and end when this process is gone (they watch their parent).
        environment["SCVAE_LOCAL_CHILD"] = "1"
        environment["SCVAE_LOCAL_PARENT"] = "\(getpid())"
        self.environment = environment
    }

    private var now: Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    public func run(stopSignal: StopSignal) -> Int32 {
        for rank in ranks.indices where !launch(rank) { supervision.failedToStart(rank: rank) }
        var killAt: ContinuousClock.Instant?
        var killed = false
        while true {
            if stopSignal.requests > 0 && killAt == nil {
                let name = stopSignal.lastSignal == SIGINT ? "SIGINT" : "SIGTERM"
                logger.notice("\(name): stopping \(processes.count) rank(s) (SIGTERM, SIGKILL after \(stopGrace))")
                supervision.stop()
                for process in processes.values { kill(process.processIdentifier, SIGTERM) }
                killAt = ContinuousClock.now + stopGrace
            }
            if let killAt, !killed, ContinuousClock.now >= killAt, !processes.isEmpty {
                logger.warning("\(processes.count) rank(s) still running \(stopGrace) after SIGTERM: killing them")
                for process in processes.values { kill(process.processIdentifier, SIGKILL) }
                killed = true
            }
            reapExited()
            for rank in supervision.due(now: now) where !launch(rank) { supervision.failedToStart(rank: rank) }
            if processes.isEmpty, let outcome = supervision.outcome {
                if outcome == 0 {
                    logger.info("all \(ranks.count) ranks finished")
                } else if outcome == ChildExit.runStoppedEarly {
                    logger.notice("the run was stopped early: \(summary); exiting \(outcome) so that it is resumed")
                    return outcome
                } else if killAt != nil {
                    logger.notice("stopped: \(summary)")
                } else {
                    logger.error("not every rank finished: \(summary)")
                }
                if outcome == 0 || killAt == nil { return outcome }
                return 128 + (stopSignal.lastSignal ?? SIGTERM)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// `run` on a thread of its own (it blocks), for an async caller.
    public func runOnOwnThread(stopSignal: StopSignal) async -> Int32 {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: self.run(stopSignal: stopSignal)) }
            thread.name = "scvae-supervisor"
            thread.start()
        }
    }

    private var summary: String {
        zip(ranks, supervision.states).map { rank, state in
            "\(rank.id) \(state == .finished ? "finished" : state == .runStopped ? "stopped with the run" : "did not finish")"
        }
            .joined(separator: ", ")
    }

    private func reapExited() {
        for (rank, process) in processes where !process.isRunning {
            processes[rank] = nil
            let exit = ChildLauncher.exit(of: process)
            let id = ranks[rank].id
            if supervision.stopping {
                logger.notice("rank \(id) \(exit)")
                _ = supervision.exited(rank: rank, exit, now: now)
                continue
            }
            switch supervision.exited(rank: rank, exit, now: now) {
            case .finished:
                logger.info("rank \(id) finished")
            case .runStopped:
                logger.notice("rank \(id) stopped with the run (status \(ChildExit.runStoppedEarly)): the run is to be resumed")
            case let .restart(after, attempt):
                logger.warning("rank \(id) \(exit); starting it again in \(formatSeconds(after)) (restart \(attempt) of at most \(policy.limit) in \(Int(policy.window)) s)")
            case let .giveUp(reason):
                logger.error("rank \(id) \(exit); not starting it again: \(reason)")
            }
        }
    }

    /// Starts rank `rank`; false (logged) when it cannot be.
    private func launch(_ rank: Int) -> Bool {
        let spec = ranks[rank]
        do {
            processes[rank] = try ChildLauncher.start(executable, arguments: spec.arguments, environment: environment, cpus: spec.cpus)
            logger.info("started rank \(spec.id) (pid \(processes[rank]!.processIdentifier), CPUs \(cpuList(spec.cpus)))")
            return true
        } catch {
            logger.error("cannot start rank \(spec.id) (\(executable)): \(error)")
            return false
        }
    }
}

private func formatSeconds(_ value: Double) -> String {
    value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
}

/// What each of `count` ranks on a node gets: the id `BASE-i`, its BLAS threads (`threadsPerRank`
/// when given, else the process's `processThreads` shared out, at least 1 each) and its slice of
/// the process's CPUs.
public struct RankLayout: Sendable, Equatable {
    public var id: String
    public var threads: Int
    public var cpus: [Int]

    public init(id: String, threads: Int, cpus: [Int]) {
        self.id = id
        self.threads = threads
        self.cpus = cpus
    }

    public static func plan(baseID: String, count: Int, threadsPerRank: Int?, processThreads: Int, cpus: [Int]) -> [RankLayout] {
        let threads = threadsPerRank ?? max(1, processThreads / max(count, 1))
        return cpuSlices(of: cpus, ranks: count).enumerated().map { rank, slice in
            RankLayout(id: "\(baseID)-\(rank)", threads: threads, cpus: slice)
        }
    }
}

/// "0-3,8,10-11" for the log.
public func cpuList(_ cpus: [Int]) -> String {
    var parts: [String] = []
    var index = 0
    while index < cpus.count {
        var end = index
        while end + 1 < cpus.count && cpus[end + 1] == cpus[end] + 1 { end += 1 }
        parts.append(end == index ? "\(cpus[index])" : "\(cpus[index])-\(cpus[end])")
        index = end + 1
    }
    return parts.isEmpty ? "any" : parts.joined(separator: ",")
}

/// `arguments` without the options in `names` and their values, spelled `--name VALUE` or
/// `--name=VALUE` (a supervisor's own command line, re-used for its children).
public func removingOptions(_ names: Set<String>, from arguments: [String]) -> [String] {
    var kept: [String] = []
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        if argument == "--" {
            kept += arguments[index...]
            break
        }
        if names.contains(argument) {
            index += 2
            continue
        }
        if let equals = argument.firstIndex(of: "="), names.contains(String(argument[..<equals])) {
            index += 1
            continue
        }
        kept.append(argument)
        index += 1
    }
    return kept
}
