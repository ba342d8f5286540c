
import Foundation
import Testing

/// A one-node Slurm cluster (munged, slurmctld, slurmd) started by cluster/slurm/local-cluster.sh
/// in a folder of its own: configuration, state, spool, logs and pid files all live there, so a
/// test starts from job 1 and leaves nothing behind once `stop` has run and the folder is gone.
final class LocalSlurm {
    /// The commands local-cluster.sh and the tests run.
    static let commands = ["munged", "munge", "slurmctld", "slurmd", "scontrol", "sinfo", "squeue", "scancel", "sbatch", "srun"]

    /// Why a cluster cannot be started here, nil when it can be tried: the daemons run as root.
    static let unavailableReason: String? = {
        if getuid() != 0 { return "needs root: cluster/slurm/local-cluster.sh runs munged, slurmctld and slurmd as root" }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let missing = commands.filter { command in
            !path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(command)") }
        }
        guard missing.isEmpty else {
            return "\(missing.joined(separator: ", ")) not found on PATH; apt-get install slurmctld slurmd slurm-client munge "
                + "(scripts/setup.sh does as root)"
        }
        return nil
    }()

    static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    let folder: String
    /// What every Slurm command needs to find this cluster (and local-cluster.sh its folder).
    let environment: [String: String]
    private var commandCount = 0

    init(folder: String) {
        self.folder = folder
        environment = ["SCVAE_SLURM_DIR": "\(folder)/slurm", "SLURM_CONF": "\(folder)/slurm/slurm.conf"]
    }

    /// Starts the daemons; the script's output and the daemons' logs when they did not come up.
    func start() -> String? {
        let (status, output) = run(["bash", "\(Self.package)/cluster/slurm/local-cluster.sh", "start"], seconds: 180)
        guard status != 0 else { return nil }
        return "local-cluster.sh start exited with \(status.map(String.init) ?? "nothing (killed at the deadline)"):\n\(output)\n\(daemonLogs())"
    }

    /// Cancels the jobs still queued (waiting until their processes have ended), then ends the
    /// daemons. Records an issue when something may have been left running.
    func stop() {
        let (status, output) = run(["bash", "\(Self.package)/cluster/slurm/local-cluster.sh", "stop"], seconds: 180)
        if status != 0 || output.contains("left in the queue") {
            Issue.record("local-cluster.sh stop exited with \(status.map(String.init) ?? "nothing"):\n\(output)")
        }
    }

    /// Runs a command (found on PATH) against this cluster and waits for it, killing it at the
    /// scaled deadline (status nil). Output is stdout and stderr together.
    func run(_ arguments: [String], seconds: Double, environment extra: [String: String] = [:]) -> (status: Int32?, output: String) {
        commandCount += 1
        let log = "\(folder)/command-\(commandCount)-\(arguments[0]).log"
        guard let process = try? ChildProcess("/usr/bin/env", arguments, log: log, environment: environment.merging(extra) { $1 },
                                              absolute: true) else {
            return (nil, "could not start \(arguments.joined(separator: " "))")
        }
        let deadline = Date(timeIntervalSinceNow: Deadline.seconds(seconds))
        while process.process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.process.isRunning {
            // Bounded: Foundation sees the exit only once every holder of the child's descriptors is gone.
            kill(process.process.processIdentifier, SIGKILL)
            let grace = Date(timeIntervalSinceNow: 10)
            while process.process.isRunning && Date() < grace { Thread.sleep(forTimeInterval: 0.05) }
            return (nil, process.output)
        }
        return (process.process.terminationStatus, process.output)
    }

    /// `scontrol show job -o ID` as key -> value (JobState, Restarts, ExitCode, NumTasks, ...);
    /// empty when Slurm did not answer.
    func job(_ id: String) -> [String: String] {
        let (status, output) = run(["scontrol", "show", "job", "-o", id], seconds: 30)
        guard status == 0 else { return [:] }
        var fields: [String: String] = [:]
        for token in output.split(whereSeparator: \.isWhitespace) {
            guard let equals = token.firstIndex(of: "="), fields[String(token[..<equals])] == nil else { continue }
            fields[String(token[..<equals])] = String(token[token.index(after: equals)...])
        }
        return fields
    }

    /// Polls the job about once a second until `condition` holds; the last record seen.
    func waitForJob(_ id: String, seconds: Double, until condition: ([String: String]) -> Bool) -> [String: String] {
        let deadline = Date(timeIntervalSinceNow: Deadline.seconds(seconds))
        var fields = job(id)
        while !condition(fields) && Date() < deadline {
            Thread.sleep(forTimeInterval: 1)
            fields = job(id)
        }
        return fields
    }

    /// States in which a job will not run again by itself.
    static let finalStates: Set<String> = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                                           "BOOT_FAIL", "DEADLINE", "PREEMPTED"]

    /// The daemons' logs, for failure messages.
    func daemonLogs() -> String {
        ["slurmctld.log", "slurmd.log", "munged.log"].map { name in
            "== \(name)\n" + String(((try? String(contentsOfFile: "\(folder)/slurm/\(name)", encoding: .utf8)) ?? "").suffix(1500))
        }.joined(separator: "\n")
    }
}
