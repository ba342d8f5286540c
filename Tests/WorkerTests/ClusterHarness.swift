
import Foundation
import Testing

/// A coordinator and workers started as separate processes (not --local), so a test can kill
/// and restart any of them. Everything talks over 127.0.0.1; the coordinator's port is chosen
/// by the system at its first start and reused when it is restarted.
final class Cluster {
    let folder: String
    let coordinatorArguments: [String]
    private(set) var coordinator: ChildProcess?
    private(set) var workers: [String: ChildProcess] = [:]
    private(set) var endpoint = ""
    private var coordinatorStarts = 0
    private var workerStarts: [String: Int] = [:]

    init(folder: String, coordinatorArguments: [String]) {
        self.folder = folder
        self.coordinatorArguments = coordinatorArguments
    }

    deinit {
        for process in [coordinator].compactMap({ $0 }) + Array(workers.values) where process.process.isRunning {
            kill(process.process.processIdentifier, SIGKILL)
        }
    }

    /// Starts (or restarts) the coordinator; the first start learns the endpoint.
    func startCoordinator() throws {
        coordinatorStarts += 1
        let listen = endpoint.isEmpty ? "tcp://127.0.0.1:0" : endpoint
        let endpointFile = "\(folder)/endpoint-\(coordinatorStarts)"
        let process = try ChildProcess("scvae-coordinator",
                                       ["--listen", listen, "--endpoint-file", endpointFile, "--cache-dir", Scratch.cache,
                                        "--checkpoint-dir", "\(folder)/run", "--liveness-deadline", "\(Deadline.seconds(2.5))"]
                                           + coordinatorArguments
                                           + (coordinatorArguments.contains { $0.hasPrefix("--val-") } ? [] : ["--val-every", "0"]),
                                       log: "\(folder)/coordinator-\(coordinatorStarts).log")
        coordinator = process
        let deadline = Date(timeIntervalSinceNow: Deadline.seconds(60))
        while !FileManager.default.fileExists(atPath: endpointFile) && Date() < deadline && process.process.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let bound = try #require(try? String(contentsOfFile: endpointFile, encoding: .utf8),
                                 "the coordinator wrote no endpoint:\n\(process.output.suffix(3000))")
        endpoint = bound
    }

    /// Starts (or restarts) worker `id`, logging its data order to `dataOrderLog(id)`.
    func startWorker(_ id: String, extra: [String] = [], environment: [String: String] = [:]) throws {
        workerStarts[id, default: 0] += 1
        workers[id] = try ChildProcess("scvae-worker",
                                       ["--coordinator", endpoint, "--worker-id", id, "--threads", "1", "--cache-dir", Scratch.cache,
                                        "--reconnect-timeout", "\(Deadline.seconds(120))", "--data-order-log", dataOrderLog(id)] + extra,
                                       log: "\(folder)/\(id)-\(workerStarts[id]!).log", environment: environment)
    }

    func dataOrderLog(_ id: String) -> String { "\(folder)/\(id).order.jsonl" }

    func killWorker(_ id: String) {
        guard let worker = workers[id] else { return }
        kill(worker.process.processIdentifier, SIGKILL)
        worker.process.waitUntilExit()
    }

    func killCoordinator() {
        guard let coordinator else { return }
        kill(coordinator.process.processIdentifier, SIGKILL)
        coordinator.process.waitUntilExit()
    }

    /// The JSON lines of one of the run's files (`metrics.jsonl` in the folder, `run/events.jsonl`).
    func jsonLines(_ file: String) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: "\(folder)/\(file)", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// The highest step in the metrics file (one line per completed step).
    var completedStep: Int { jsonLines("metrics.jsonl").compactMap { $0["step"] as? Int }.max() ?? 0 }

    /// The coordinator's events: worker_down, recovery, checkpoint, checkpoint_failed.
    var events: [[String: Any]] { jsonLines("run/events.jsonl") }

    /// Waits until `condition` holds or a process the test needs has exited; false at the deadline.
    func wait(seconds: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: Deadline.seconds(seconds))
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return condition()
    }

    /// Every log of the run, for failure messages.
    func logs() -> String {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder))?.filter { $0.hasSuffix(".log") }.sorted() ?? []
        return files.map { name in
            "== \(name)\n" + String(((try? String(contentsOfFile: "\(folder)/\(name)", encoding: .utf8)) ?? "").suffix(2500))
        }.joined(separator: "\n")
    }
}

/// What the workers' data-order logs say: for each step, the samples of the latest generation
/// that computed it (a step redone after a failure or a resume appears again, later).
struct DataOrder {
    struct Line {
        var run: String
        var generation: Int
        var time: Double
        var step: Int
        var epoch: Int
        var samples: [Int]
    }

    let lines: [Line]

    init(paths: [String]) throws {
        var lines: [Line] = []
        for path in paths where FileManager.default.fileExists(atPath: path) {
            for text in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
                let object = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                lines.append(Line(run: try #require(object["run"] as? String), generation: try #require(object["generation"] as? Int),
                                  time: try #require(object["time"] as? Double), step: try #require(object["step"] as? Int),
                                  epoch: try #require(object["epoch"] as? Int), samples: try #require(object["samples"] as? [Int])))
            }
        }
        self.lines = lines
    }

    /// Step -> (epoch, samples) from the generation (of a run) that computed the step last.
    var applied: [Int: (epoch: Int, samples: [Int])] {
        var latest: [Int: (time: Double, run: String, generation: Int)] = [:]
        for line in lines where line.time > latest[line.step]?.time ?? -1 {
            latest[line.step] = (line.time, line.run, line.generation)
        }
        var result: [Int: (epoch: Int, samples: [Int])] = [:]
        for line in lines {
            guard let last = latest[line.step], last.run == line.run, last.generation == line.generation else { continue }
            result[line.step, default: (line.epoch, [])].samples += line.samples
        }
        return result
    }
}
