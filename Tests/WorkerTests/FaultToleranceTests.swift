import TensorFiles
import Dataset
import Checkpoints
import Foundation
import Model
import Testing
import Worker

/// Kill -9 of workers and of the coordinator, corrupt checkpoints: the run goes on and loses
/// nothing. In the serialized process suite (one multi-process test at a time).
extension ProcessTests {
    /// 48 images of 32 px: with a global batch of 6, an epoch is 8 steps.
    static func smallDataset() throws -> String {
        try SampleData.ensure(at: Scratch.cache, count: 48, size: 32, seed: 5)
    }

    /// name -> bytes of every tensor of a safetensors file.
    static func tensorBytes(_ path: String) throws -> [String: [UInt8]] {
        Dictionary(uniqueKeysWithValues: try SafeTensors.read(path).tensors.map { ($0.name, $0.data) })
    }

    /// Every epoch that the data-order logs cover completely uses each of the `count` samples once.
    static func expectEverySampleOncePerEpoch(_ order: DataOrder, steps: Int, stepsPerEpoch: Int, count: Int,
                                              sourceLocation: SourceLocation = #_sourceLocation) {
        let applied = order.applied
        #expect(Set(applied.keys) == Set(1...steps), "every step was computed: \(applied.keys.sorted())", sourceLocation: sourceLocation)
        for epoch in 0..<(steps / stepsPerEpoch) {
            let stepsOfEpoch = (epoch * stepsPerEpoch + 1)...((epoch + 1) * stepsPerEpoch)
            let samples = stepsOfEpoch.flatMap { applied[$0]?.samples ?? [] }
            #expect(stepsOfEpoch.allSatisfy { applied[$0]?.epoch == epoch }, "steps \(stepsOfEpoch) are epoch \(epoch)",
                    sourceLocation: sourceLocation)
            #expect(samples.sorted() == Array(0..<count), "epoch \(epoch) uses each sample once: \(samples.sorted())",
                    sourceLocation: sourceLocation)
        }
    }

    @Test func aRunKilledEverywhereAndResumedEndsWithCheckpointsBitIdenticalToAnUninterruptedRun() throws {
        let data = try Self.smallDataset()
        func arguments(_ folder: String) -> [String] {
            ["--workers", "2", "--global-batch", "6", "--steps", "12", "--checkpoint-every", "4", "--lr", "2e-3",
             "--config", "tiny", "--data", data, "--log-every", "4", "--metrics", "\(folder)/metrics.jsonl"]
        }
        let plainFolder = try Scratch.folder("resume-plain")
        defer { try? FileManager.default.removeItem(atPath: plainFolder) }
        let plain = Cluster(folder: plainFolder, coordinatorArguments: arguments(plainFolder))
        try plain.startCoordinator()
        for id in ["a", "b"] { try plain.startWorker(id, extra: ["--data", data]) }
        #expect(plain.coordinator?.waitForExit(seconds: 240) == 0, "\(plain.logs())")

        let folder = try Scratch.folder("resume-killed")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let killed = Cluster(folder: folder, coordinatorArguments: arguments(folder))
        try killed.startCoordinator()
        for id in ["a", "b"] { try killed.startWorker(id, extra: ["--data", data]) }
        let eight = "\(folder)/run/step-00000008/state.json"
        #expect(killed.wait(seconds: 240) { FileManager.default.fileExists(atPath: eight) }, "\(killed.logs())")
        // Everything dies at once, mid-run.
        killed.killCoordinator()
        for id in ["a", "b"] { killed.killWorker(id) }
        try killed.startCoordinator()
        for id in ["a", "b"] { try killed.startWorker(id, extra: ["--data", data]) }
        let status = killed.coordinator?.waitForExit(seconds: 240)
        #expect(status == 0, "\(killed.logs())")
        #expect(killed.coordinator?.output.contains("resuming from the checkpoint of step 8") == true, "\(killed.logs())")

        for step in ["00000004", "00000008", "00000012"] {
            for file in ["model.safetensors", "optimizer.safetensors"] {
                let a = try Self.tensorBytes("\(plainFolder)/run/step-\(step)/\(file)")
                let b = try Self.tensorBytes("\(folder)/run/step-\(step)/\(file)")
                #expect(!a.isEmpty && a == b, "step \(step) \(file): the resumed run's tensors equal the uninterrupted run's")
            }
        }
    }

    @Test func aWorkerKilledMidRunIsRecoveredFromAndEverySampleIsUsedOncePerEpoch() throws {
        let data = try Self.smallDataset()
        let training = ["--global-batch", "6", "--steps", "16", "--optimizer", "sgd", "--lr", "5e-3", "--exact-reduction",
                        "--checkpoint-every", "0", "--config", "tiny", "--data", data, "--log-every", "4"]
        let folder = try Scratch.folder("elastic")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cluster = Cluster(folder: folder, coordinatorArguments: ["--workers", "3", "--min-workers", "2", "--ring-transport", "auto",
                                                                     "--metrics", "\(folder)/metrics.jsonl"] + training)
        try cluster.startCoordinator()
        let ids = ["w0", "w1", "w2"]
        for id in ids { try cluster.startWorker(id, extra: ["--data", data]) }
        // A seeded choice of victim and step.
        var random = SplitMix64(seed: 11)
        let victim = ids[Int(random.next() % 3)]
        let killStep = 3 + Int(random.next() % 8)
        #expect(cluster.wait(seconds: 240) { cluster.completedStep >= killStep }, "\(cluster.logs())")
        cluster.killWorker(victim)
        let status = cluster.coordinator?.waitForExit(seconds: 240)
        #expect(status == 0, "\(cluster.logs())")
        let output = cluster.coordinator?.output ?? ""
        #expect(output.contains("\(victim)") && output.contains("declared down"), "\(output.suffix(3000))")
        #expect(output.contains("recovered: step"), "\(output.suffix(3000))")
        #expect(output.contains("2 ranks") && output.contains("ring over shared memory; continuing"),
                "the survivors, on one host, re-form the ring over shared memory: \(output.suffix(3000))")
        #expect(cluster.events.contains { $0["event"] as? String == "recovery" }, "recovery time is in the events file")

        let order = try DataOrder(paths: ids.map(cluster.dataOrderLog))
        Self.expectEverySampleOncePerEpoch(order, steps: 16, stepsPerEpoch: 8, count: 48)

        // Exact reduction makes the result independent of the world size: the run that lost a
        // worker ends where an uninterrupted two-worker run ends.
        let elastic = try WeightsFile.load("\(folder)/run/final/model.safetensors", layout: ParameterLayout(config: .tiny)).parameters
        let two = try Self.train(workers: 2, training, name: "elastic-reference")
        let (difference, change) = Self.relativeDifference(elastic, two, from: Self.initialParameters(seed: 0))
        #expect(change > 0 && difference <= 1e-6 * change, "max|dA-dB| = \(difference), max|dA| = \(change)")
    }

    /// A worker that cannot create its shared-memory inbox (here: the name is taken by a file that
    /// is not a ring segment) reports it; the next generation runs over TCP and the run ends.
    @Test func aWorkerThatCannotUseSharedMemoryGetsATCPRing() throws {
        let folder = try Scratch.folder("shm-fallback")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cluster = Cluster(folder: folder, coordinatorArguments: ["--workers", "2", "--global-batch", "4", "--steps", "4",
                                                                     "--ring-transport", "auto", "--config", "tiny", "--checkpoint-every", "0"])
        try cluster.startCoordinator()
        try cluster.startWorker("w0")
        let firstLog = "\(folder)/w0-1.log"
        #expect(cluster.wait(seconds: 120) { Self.runID(in: (try? String(contentsOfFile: firstLog, encoding: .utf8)) ?? "") != nil })
        let runID = try #require(Self.runID(in: try String(contentsOfFile: firstLog, encoding: .utf8)))
        // Generation 1 ranks workers by admission, so w1 will be rank 1.
        let blocker = "/dev/shm/scvae-\(runID)-g1-r1"
        #expect(FileManager.default.createFile(atPath: blocker, contents: Array("not a ring".utf8).withUnsafeBytes { Data($0) }))
        defer { try? FileManager.default.removeItem(atPath: blocker) }
        try cluster.startWorker("w1")
        #expect(cluster.coordinator?.waitForExit(seconds: 240) == 0, "\(cluster.logs())")
        let output = cluster.coordinator?.output ?? ""
        #expect(output.contains("worker w1 cannot set up a shared-memory ring; it gets TCP rings from now on"), "\(cluster.logs())")
        #expect(output.contains("ring over tcp (worker w1 cannot use shared memory"), "\(cluster.logs())")
        #expect(output.contains("step 4/4"))
    }

    @Test func aChaosScheduleOfKillsAndACorruptCheckpointStillEndsWithEveryStepAndValidCheckpoints() throws {
        let data = try Self.smallDataset()
        let folder = try Scratch.folder("chaos")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let steps = 24
        let cluster = Cluster(folder: folder, coordinatorArguments: [
            "--workers", "3", "--min-workers", "2", "--global-batch", "6", "--steps", "\(steps)", "--checkpoint-every", "3",
            "--keep", "3", "--lr", "2e-3", "--config", "tiny", "--data", data, "--log-every", "6",
            "--metrics", "\(folder)/metrics.jsonl"])
        try cluster.startCoordinator()
        let ids = ["w0", "w1", "w2"]
        for id in ids { try cluster.startWorker(id, extra: ["--data", data]) }

        // The schedule: at seeded steps, kill a random worker (restarted a moment later), again,
        // then the coordinator (its newest checkpoint corrupted while it is down). The workers
        // outlive the coordinator and may train on without it; the restarted one continues from
        // their replicas when they are newer than its checkpoints.
        var random = SplitMix64(seed: 7)
        var at = 2
        var corrupted: String?
        for event in ["worker", "worker", "coordinator"] {
            at += 2 + Int(random.next() % 3)
            let target = at
            guard cluster.wait(seconds: 240, until: { cluster.completedStep >= target }) else {
                Issue.record("the run did not reach step \(target):\n\(cluster.logs())")
                return
            }
            if event == "worker" {
                let victim = ids[Int(random.next() % 3)]
                cluster.killWorker(victim)
                Thread.sleep(forTimeInterval: 1)
                try cluster.startWorker(victim, extra: ["--data", data])
            } else {
                cluster.killCoordinator()
                let store = CheckpointStore(directory: "\(folder)/run", keep: 3)
                let newest = try #require(store.checkpointPaths().last, "a checkpoint exists by step \(target)")
                let file = "\(newest)/model.safetensors"
                var bytes = try BinaryFile.read(file)
                bytes[bytes.count - 5] ^= 0xFF
                try BinaryFile.writeAtomically(bytes, to: file)
                corrupted = newest
                try cluster.startCoordinator()
            }
        }
        let status = cluster.coordinator?.waitForExit(seconds: 300)
        #expect(status == 0, "\(cluster.logs())")
        let corruptName = try #require(corrupted.map { ($0 as NSString).lastPathComponent })
        let restart = (try? String(contentsOfFile: "\(folder)/coordinator-2.log", encoding: .utf8)) ?? ""
        #expect(restart.contains(corruptName) && restart.contains("checksum") && restart.contains("moved to"),
                "the corrupt checkpoint is named with the reason and moved aside:\n\(restart.suffix(3000))")
        let quarantined = (try? FileManager.default.contentsOfDirectory(atPath: "\(folder)/run/corrupt")) ?? []
        #expect(quarantined.contains { $0.hasPrefix(corruptName) }, "\(quarantined)")

        // How many checkpoints the run wrote depends on how far the workers trained while the
        // coordinator was down (the restarted one continues from their replicas): at most --keep
        // stay, each verifies, and the newest is the final step's.
        let store = CheckpointStore(directory: "\(folder)/run", keep: 3)
        let kept = store.checkpointPaths()
        #expect((1...3).contains(kept.count), "\(kept)")
        for path in kept {
            #expect(throws: Never.self, "\(path) verifies") { _ = try CheckpointFile.load(path) }
        }
        let last = try CheckpointFile.load(try #require(kept.last))
        #expect(last.state.step == steps && last.state.cursorEpoch == steps / 8 && last.state.cursorStep == 0)
        let final = try WeightsFile.load("\(folder)/run/final/model.safetensors", layout: ParameterLayout(config: .tiny))
        #expect(final.metadata["step"] == "\(steps)")

        let order = try DataOrder(paths: ids.map(cluster.dataOrderLog))
        Self.expectEverySampleOncePerEpoch(order, steps: steps, stepsPerEpoch: 8, count: 48)
    }
}

/// A small seeded generator for the tests' random choices (same on every platform).
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
