import ArgumentParser
import Foundation
import WireBenchmarks

/// Where benchmark ranks run: `--launcher` and `--hosts` (see `RankPlacement`).
struct RankPlacementOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Command prefix that starts rank K, {rank} standing for K (split at spaces), e.g. 'ip netns exec scvae-w{rank}'.",
                               valueName: "prefix"))
    var launcher: String?

    @Option(help: ArgumentHelp("Comma-separated addresses, rank K binds on the K-th (tcp; default 127.0.0.1 for all).",
                               valueName: "addresses"))
    var hosts: String?

    /// The placement, or a `ValidationError` saying what is wrong with the options.
    func placement() throws -> RankPlacement {
        do {
            return try RankPlacement(launcher: launcher, hosts: hosts)
        } catch {
            throw ValidationError("--hosts: \(error)")
        }
    }

    func check(worldSize: Int) throws {
        do {
            try placement().check(worldSize: worldSize)
        } catch let problem as RankPlacement.Problem {
            throw ValidationError("--hosts: \(problem)")
        }
    }

    var isLocal: Bool { (try? placement())?.isLocal ?? true }

    /// " under 'LAUNCHER' on HOSTS" for the header line; empty when local.
    var summary: String {
        guard let placement = try? placement(), !placement.isLocal else { return "" }
        return (placement.launcher.isEmpty ? "" : " under '\(placement.launcher.joined(separator: " "))'") +
            (placement.hosts.isEmpty ? "" : " on \(placement.hosts.joined(separator: ", "))")
    }
}

/// CPU time of this process (all its threads: the rank's and libzmq's) against wall time since `init`.
struct ProcessUsage {
    private let startCPU = ProcessUsage.cpuSeconds()
    private let startWall = ContinuousClock.now

    /// CPU seconds over wall seconds since `init`: 1.0 is one core busy all the time.
    func cpuShare() -> Double {
        let wall = (ContinuousClock.now - startWall).inSeconds
        return wall > 0 ? (Self.cpuSeconds() - startCPU) / wall : .nan
    }

    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let seconds = { (time: timeval) in Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
