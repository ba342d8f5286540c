import Foundation
import Model
import Testing
import Wire
import Worker

/// Every test that starts real processes (coordinator and workers on 127.0.0.1) lives in this
/// one serialized suite: tiny configuration, small global batches, few steps, bounded waits.
@Suite(.serialized) struct ProcessTests {
    /// A coordinator with --local on port 0, the suite's data cache and one BLAS thread per worker;
    /// without validation unless the arguments ask for it (ValidationProcessTests test it).
    static func coordinator(_ arguments: [String], folder: String, log: String = "coordinator.log",
                            local: Bool = true) throws -> ChildProcess {
        var all = ["--listen", "tcp://127.0.0.1:0", "--cache-dir", Scratch.cache, "--config", "tiny",
                   "--checkpoint-dir", folder, "--endpoint-file", "\(folder)/endpoint"] + arguments
        if !arguments.contains(where: { $0.hasPrefix("--val-") }) { all += ["--val-every", "0"] }
        if local { all += ["--local", "--worker-threads", "1"] }
        return try ChildProcess("scvae-coordinator", all, log: "\(folder)/\(log)")
    }

    /// Runs a --local training to its end and returns the final parameters (in tiny's layout).
    static func train(workers: Int, _ arguments: [String], name: String) throws -> [Float] {
        let folder = try Scratch.folder(name)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try coordinator(["--workers", "\(workers)"] + arguments, folder: folder)
        let status = run.waitForExit(seconds: 240)
        #expect(status == 0, "coordinator exited with \(status.map(String.init) ?? "nothing"):\n\(run.output.suffix(4000))")
        return try WeightsFile.load("\(folder)/final/model.safetensors", layout: ParameterLayout(config: .tiny)).parameters
    }

    static func initialParameters(seed: UInt64) -> [Float] {
        let layout = ParameterLayout(config: .tiny)
        var params = [Float](repeating: 0, count: layout.totalCount)
        params.withUnsafeMutableBufferPointer { initializeParameters($0, layout: layout, config: .tiny, seed: seed) }
        return params
    }

    /// docs/decisions.md: max|dA - dB| relative to max|dA|, on the change from the initial value.
    static func relativeDifference(_ a: [Float], _ b: [Float], from start: [Float]) -> (difference: Float, change: Float) {
        let change = zip(a, start).map { abs($0 - $1) }.max() ?? 0
        let difference = zip(zip(a, b), start).map { abs(($0.0 - $1) - ($0.1 - $1)) }.max() ?? 0
        return (difference, change)
    }

    @Test func twoWorkersTrainTinyTheLossFallsAndTheWeightsLoad() throws {
        let folder = try Scratch.folder("train")
        let run = try Self.coordinator(["--workers", "2", "--steps", "12", "--global-batch", "8", "--lr", "2e-3",
                                        "--metrics", "\(folder)/metrics.jsonl"], folder: folder)
        let status = run.waitForExit(seconds: 240)
        let output = run.output
        #expect(status == 0, "coordinator exited with \(status.map(String.init) ?? "nothing"):\n\(output.suffix(4000))")
        #expect(output.contains("step 12/12"), "progress lines say step N/TOTAL")
        #expect(output.contains("img/s") && output.contains("all-reduce") && output.contains("ETA"))
        #expect(output.contains("rank=1"), "worker lines carry their rank")

        let lines = try String(contentsOfFile: "\(folder)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 12)
        let records = try lines.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        for key in ["step", "epoch", "loss", "images_per_s"] { #expect(records.allSatisfy { $0[key] != nil }, "metrics carry \(key)") }
        let losses = records.compactMap { $0["loss"] as? Double }
        let first = losses.prefix(3).reduce(0, +) / 3, last = losses.suffix(3).reduce(0, +) / 3
        #expect(last < first, "loss falls: first steps \(losses.prefix(3)), last steps \(losses.suffix(3))")

        let loaded = try WeightsFile.load("\(folder)/final/model.safetensors", layout: ParameterLayout(config: .tiny))
        #expect(loaded.unknownNames.isEmpty, "only the reference model's names: \(loaded.unknownNames)")
        #expect(loaded.metadata["step"] == "12" && loaded.metadata["config"] == "tiny")
        #expect(loaded.parameters != Self.initialParameters(seed: 0))
        #expect(FileManager.default.fileExists(atPath: "\(folder)/final/summary.json"))
    }

    @Test func theSameGlobalBatchGivesTheSameModelWithOneTwoAndFourWorkers() throws {
        let start = Self.initialParameters(seed: 0)
        let sgd = ["--global-batch", "8", "--optimizer", "sgd", "--lr", "5e-3", "--log-every", "10"]
        // Exact reduction: per-sample gradient slots, summed in batch order on every rank.
        let exact = try [1, 2, 4].map { n in try Self.train(workers: n, sgd + ["--steps", "10", "--exact-reduction"], name: "exact\(n)") }
        for (n, other) in zip([2, 4], exact.dropFirst()) {
            let (difference, change) = Self.relativeDifference(exact[0], other, from: start)
            #expect(change > 0)
            #expect(difference <= 1e-4 * change, "N=\(n): max|dA-dB| = \(difference), max|dA| = \(change)")
            #expect(other == exact[0], "exact reduction is bit-identical across N")
        }
        // The default summed all-reduce: after one step N=1 and N=2 differ only by float rounding.
        let one = try Self.train(workers: 1, sgd + ["--steps", "1"], name: "summed1")
        let two = try Self.train(workers: 2, sgd + ["--steps", "1"], name: "summed2")
        let (difference, change) = Self.relativeDifference(one, two, from: start)
        #expect(change > 0 && difference <= 1e-4 * change, "summed, 1 step: max|dA-dB| = \(difference), max|dA| = \(change)")
    }

    @Test func theSameWorldAndSeedTwiceGiveBitIdenticalWeights() throws {
        let arguments = ["--global-batch", "8", "--steps", "10", "--lr", "1e-3", "--seed", "3", "--log-every", "10"]
        let first = try Self.train(workers: 2, arguments, name: "repeat-a")
        let second = try Self.train(workers: 2, arguments, name: "repeat-b")
        #expect(first == second)
        #expect(first != Self.initialParameters(seed: 3))
    }

    @Test func aWorkerOfAnotherProtocolVersionIsRefusedAndTheRunGoesOn() throws {
        let folder = try Scratch.folder("version")
        let run = try Self.coordinator(["--workers", "1", "--steps", "2", "--global-batch", "4"], folder: folder, local: false)
        let endpointFile = "\(folder)/endpoint"
        let deadline = Date(timeIntervalSinceNow: Deadline.seconds(60))
        while !FileManager.default.fileExists(atPath: endpointFile) && Date() < deadline && run.process.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let endpoint = try String(contentsOfFile: endpointFile, encoding: .utf8)
        let common = ["--coordinator", endpoint, "--threads", "1", "--cache-dir", Scratch.cache, "--reconnect-timeout", "\(Deadline.seconds(60))"]

        let old = try ChildProcess("scvae-worker", common + ["--worker-id", "old"], log: "\(folder)/old.log",
                                   environment: ["SCVAE_FAKE_PROTOCOL_VERSION": "0"])
        let oldStatus = old.waitForExit(seconds: 60)
        #expect(oldStatus != nil && oldStatus != 0, "the refused worker exits non-zero")
        #expect(old.output.contains("protocol version 0") && old.output.contains("version \(FrameHeader.currentVersion)"), "\(old.output.suffix(2000))")
        #expect(run.process.isRunning, "the coordinator goes on")

        let good = try ChildProcess("scvae-worker", common + ["--worker-id", "good"], log: "\(folder)/good.log")
        let status = run.waitForExit(seconds: 120)
        #expect(status == 0, "\(run.output.suffix(4000))")
        #expect(run.output.contains("refused a worker: protocol version mismatch"))
        #expect(good.waitForExit(seconds: 30) == 0, "\(good.output.suffix(2000))")
    }

    @Test func aMissingWorkerIsNamedAndTheCoordinatorExitsNonZero() throws {
        let folder = try Scratch.folder("missing")
        let run = try Self.coordinator(["--workers", "2", "--rendezvous-timeout", "\(Deadline.seconds(3))"], folder: folder, local: false)
        let status = run.waitForExit(seconds: 60)
        #expect(status != nil && status != 0)
        #expect(run.output.contains("missing ranks 0, 1"), "\(run.output.suffix(2000))")
    }

    /// A coordinator started again on the folder of a finished run (a Kubernetes Job re-applied, a
    /// restarted pod) writes the final weights from the last checkpoint and exits 0 at once,
    /// without waiting for workers: the run ended, and a batch system must count that a success.
    @Test func aCoordinatorStartedOnACompleteRunExitsZeroWithoutWorkers() throws {
        let folder = try Scratch.folder("complete")
        let settings = ["--workers", "1", "--steps", "2", "--global-batch", "4"]
        let first = try Self.coordinator(settings, folder: folder)
        #expect(first.waitForExit(seconds: 240) == 0, "\(first.output.suffix(4000))")
        try FileManager.default.removeItem(atPath: "\(folder)/final/model.safetensors")

        let again = try Self.coordinator(settings + ["--rendezvous-timeout", "\(Deadline.seconds(600))"], folder: folder,
                                         log: "again.log", local: false)
        let status = again.waitForExit(seconds: 60)
        #expect(status == 0, "\(again.output.suffix(4000))")
        #expect(again.output.contains("is already complete (step 2 of 2)"), "\(again.output.suffix(4000))")
        #expect(!again.output.contains("listening on"), "nothing to train: no socket, no wait for workers")
        let loaded = try WeightsFile.load("\(folder)/final/model.safetensors", layout: ParameterLayout(config: .tiny))
        #expect(loaded.metadata["step"] == "2", "the final weights are written again from the checkpoint")
    }

    @Test func interruptingTheCoordinatorStopsAtAStepBoundaryAndSavesTheWeights() throws {
        let folder = try Scratch.folder("interrupt")
        let run = try Self.coordinator(["--workers", "2", "--steps", "500", "--global-batch", "4"], folder: folder)
        #expect(run.waitForOutput("step 2/500", seconds: 120), "\(run.output.suffix(3000))")
        kill(run.process.processIdentifier, SIGINT)
        let status = run.waitForExit(seconds: 120)
        #expect(status == 75, "stopped early: EX_TEMPFAIL, so that a scheduler resumes it\n\(run.output.suffix(4000))")
        #expect(run.output.contains("the same command resumes the run"), "\(run.output.suffix(2000))")
        let loaded = try WeightsFile.load("\(folder)/final/model.safetensors", layout: ParameterLayout(config: .tiny))
        let step = Int(loaded.metadata["step"] ?? "") ?? 0
        #expect(step >= 2 && step < 500)
        #expect(run.output.contains("stopped early"))
    }

    /// With --ring-transport auto, local workers all-reduce over shared memory and leave no segment behind.
    @Test func twoLocalWorkersUseSharedMemoryAndLeaveNoSegments() throws {
        let folder = try Scratch.folder("ring-shm")
        let run = try Self.coordinator(["--workers", "2", "--steps", "3", "--global-batch", "4", "--metrics", "\(folder)/metrics.jsonl",
                                        "--ring-transport", "auto"],
                                       folder: folder)
        let status = run.waitForExit(seconds: 240)
        let output = run.output
        #expect(status == 0, "\(output.suffix(4000))")
        #expect(output.contains("ranks 0=") && output.contains("ring over shared memory; training"), "the coordinator says which transport")
        #expect(output.contains("all-reduce") && output.contains(" over shm |"), "progress lines name the transport")
        let metrics = try String(contentsOfFile: "\(folder)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 3 && metrics.allSatisfy { $0.contains("\"ring_transport\":\"shm\"") }, "\(metrics)")
        let workerLines = output.split(separator: "\n").filter { $0.contains("of 2, ring over shared memory:") }
        #expect(workerLines.count == 2, "each rank says which transport:\n\(output.suffix(4000))")
        let runID = try #require(Self.runID(in: output), "workers log the run id")
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).filter { $0.hasPrefix("scvae-\(runID)-") }
        #expect(left.isEmpty, "segments left in /dev/shm: \(left)")
    }

    /// --ring-transport tcp keeps the ring on ZeroMQ over TCP even when every rank is local.
    @Test func ringTransportTCPUsesTCPOnOneHost() throws {
        let folder = try Scratch.folder("ring-tcp")
        let run = try Self.coordinator(["--workers", "2", "--steps", "3", "--global-batch", "4", "--ring-transport", "tcp"], folder: folder)
        let status = run.waitForExit(seconds: 240)
        let output = run.output
        #expect(status == 0, "\(output.suffix(4000))")
        #expect(output.contains("ring over tcp (--ring-transport tcp)"))
        #expect(output.split(separator: "\n").filter { $0.contains("of 2, ring over tcp:") }.count == 2, "\(output.suffix(4000))")
        #expect(!output.contains("shared memory:") && output.contains(" over tcp |"))
    }

    /// The run id (hex) a worker logs when it is welcomed.
    static func runID(in output: String) -> String? {
        guard let range = output.range(of: "welcomed by the coordinator (run ") else { return nil }
        let id = output[range.upperBound...].prefix { $0.isHexDigit }
        return id.isEmpty ? nil : String(id)
    }
}
