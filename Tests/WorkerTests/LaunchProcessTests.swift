import Foundation
import Testing

/// `scvae-worker --nproc-per-node`: one command starts the ranks of a node, starts again one that
/// is killed, and stops them all on SIGTERM. A coordinator on port 0 and one supervisor. And a
/// malformed environment variable stops a command at once, naming the variable.
extension ProcessTests {
    /// A coordinator that waits for separately started workers, and its endpoint.
    static func separateCoordinator(_ arguments: [String], folder: String) throws -> (ChildProcess, String) {
        let run = try coordinator(arguments, folder: folder, local: false)
        let endpointFile = "\(folder)/endpoint"
        let deadline = Date(timeIntervalSinceNow: Deadline.seconds(60))
        while !FileManager.default.fileExists(atPath: endpointFile) && Date() < deadline && run.process.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let endpoint = try #require(try? String(contentsOfFile: endpointFile, encoding: .utf8),
                                    "the coordinator wrote no endpoint:\n\(run.output.suffix(3000))")
        return (run, endpoint)
    }

    static func supervisor(endpoint: String, folder: String) throws -> ChildProcess {
        try ChildProcess("scvae-worker", ["--coordinator", endpoint, "--nproc-per-node", "2", "--threads", "1", "--worker-id", "node",
                                          "--cache-dir", Scratch.cache, "--reconnect-timeout", "\(Deadline.seconds(60))"],
                         log: "\(folder)/node.log")
    }

    /// The pid the supervisor logged for the latest start of rank `id`.
    static func pid(ofRank id: String, in output: String) -> Int32? {
        let marker = "started rank \(id) (pid "
        guard let range = output.range(of: marker, options: .backwards) else { return nil }
        return Int32(output[range.upperBound...].prefix { $0.isNumber })
    }

    @Test func nprocPerNodeStartsTwoRanksThatCompleteTheRun() throws {
        let folder = try Scratch.folder("nproc")
        let (run, endpoint) = try Self.separateCoordinator(["--workers", "2", "--steps", "4", "--global-batch", "4"], folder: folder)
        let node = try Self.supervisor(endpoint: endpoint, folder: folder)
        let status = run.waitForExit(seconds: 240)
        #expect(status == 0, "\(run.output.suffix(4000))")
        #expect(node.waitForExit(seconds: 60) == 0, "\(node.output.suffix(4000))")
        let output = node.output
        #expect(output.contains("threads 1 (from --threads)"), "the supervisor names its sources")
        #expect(Self.pid(ofRank: "node-0", in: output) != nil && Self.pid(ofRank: "node-1", in: output) != nil, "\(output.suffix(3000))")
        #expect(output.contains("worker id node-1 (from --worker-id)"), "each rank gets its own id")
        #expect(output.contains("all 2 ranks finished"))
        #expect(run.output.contains("step 4/4"))
    }

    @Test func nprocPerNodeStartsAKilledRankAgainAndTheRunCompletes() throws {
        let folder = try Scratch.folder("nproc-kill")
        let (run, endpoint) = try Self.separateCoordinator(["--workers", "2", "--steps", "60", "--global-batch", "4", "--log-every", "1",
                                                            "--liveness-deadline", "\(Deadline.seconds(2.5))"], folder: folder)
        let node = try Self.supervisor(endpoint: endpoint, folder: folder)
        #expect(run.waitForOutput("step 2/60", seconds: 120), "\(run.output.suffix(3000))")
        let victim = try #require(Self.pid(ofRank: "node-1", in: node.output), "\(node.output.suffix(3000))")
        kill(victim, SIGKILL)
        #expect(node.waitForOutput("rank node-1 was killed by signal 9; starting it again in 1 s", seconds: 30), "\(node.output.suffix(3000))")
        let status = run.waitForExit(seconds: 240)
        #expect(status == 0, "\(run.output.suffix(4000))")
        #expect(node.waitForExit(seconds: 60) == 0, "\(node.output.suffix(4000))")
        let restarted = Self.pid(ofRank: "node-1", in: node.output)
        #expect(restarted != nil && restarted != victim, "a new process for node-1")
        #expect(node.output.contains("all 2 ranks finished"))
    }

    @Test func nprocPerNodeStopsEveryRankOnSIGTERM() throws {
        let folder = try Scratch.folder("nproc-stop")
        let (run, endpoint) = try Self.separateCoordinator(["--workers", "2", "--steps", "500", "--global-batch", "4"], folder: folder)
        defer { kill(run.process.processIdentifier, SIGKILL) }
        let node = try Self.supervisor(endpoint: endpoint, folder: folder)
        #expect(run.waitForOutput("step 2/500", seconds: 120), "\(run.output.suffix(3000))")
        let ranks = ["node-0", "node-1"].compactMap { Self.pid(ofRank: $0, in: node.output) }
        #expect(ranks.count == 2)
        kill(node.process.processIdentifier, SIGTERM)
        let status = node.waitForExit(seconds: 60)
        #expect(status == 128 + SIGTERM, "\(node.output.suffix(3000))")
        #expect(node.output.contains("SIGTERM: stopping 2 rank(s)"))
        for pid in ranks { #expect(kill(pid, 0) != 0, "rank pid \(pid) is gone") }
        #expect(!node.output.contains("; starting it again"), "a stop restarts nothing")
        #expect(node.output.contains("rank node-1 was killed by signal 15"))
    }

    @Test func environmentVariableThatIsMalformedIsAUsageErrorNamingIt() throws {
        let folder = try Scratch.folder("bad-env")
        let worker = try ChildProcess("scvae-worker", ["--cache-dir", Scratch.cache], log: "\(folder)/worker.log",
                                      environment: ["OMP_NUM_THREADS": "abc"])
        #expect(worker.waitForExit(seconds: 30) == 64)
        #expect(worker.output.contains("OMP_NUM_THREADS=abc is not a whole number of at least 1"), "\(worker.output.suffix(2000))")
        let coordinator = try ChildProcess("scvae-coordinator", ["--cache-dir", Scratch.cache], log: "\(folder)/coordinator.log",
                                           environment: ["MASTER_PORT": "29500"])
        #expect(coordinator.waitForExit(seconds: 30) == 64)
        #expect(coordinator.output.contains("tcp://0.0.0.0:29500 (from MASTER_PORT) is reachable from other machines"),
                "\(coordinator.output.suffix(2000))")
    }
}
