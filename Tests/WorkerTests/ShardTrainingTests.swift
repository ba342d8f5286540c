import TensorFiles
import Dataset
import Foundation
import Model
import Testing
import Worker

extension ProcessTests {
    /// `scvae-coordinator --local --data SHARDDIR`: both sides open the shards, agree on their
    /// fingerprint, and two workers train to the end; a member spoilt in place is skipped and
    /// named by shard and member, and the run goes on.
    @Test func twoWorkersTrainFromAShardDirectoryAndSkipACorruptMember() throws {
        let folder = try Scratch.folder("shard-training")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let images = try SampleData.ensure(at: "\(folder)/source", count: 24, size: 40, seed: 5)
        let packed = try ShardPacker.pack(try DatasetIndex.scan(root: images), to: "\(folder)/shards",
                                          size: ModelConfig.tiny.imageSize, maximumShardBytes: 16 << 10)
        #expect(Set(packed.entries.map(\.shard)).count > 1)
        let spoilt = packed.entries[5]
        let shardFile = "\(folder)/shards/\(spoilt.shard)"
        var shard = try BinaryFile.read(shardFile)
        for i in spoilt.offset..<(spoilt.offset + spoilt.size) { shard[i] = 0 }
        try BinaryFile.writeAtomically(shard, to: shardFile)
        let data = try DatasetLocation.open("\(folder)/shards")
        guard case .shards = data else {
            Issue.record("the packed directory opens as shards, not as \(data.kind)")
            return
        }

        // 24 images, global batch 8: 3 steps per epoch, so 6 steps visit every sample twice.
        let run = try Self.coordinator(["--workers", "2", "--data", "\(folder)/shards", "--steps", "6", "--global-batch", "8",
                                        "--lr", "1e-3", "--checkpoint-every", "0"], folder: folder)
        let status = run.waitForExit(seconds: 240)
        let output = run.output
        #expect(status == 0, "coordinator exited with \(status.map(String.init) ?? "nothing"):\n\(output.suffix(4000))")
        #expect(output.contains("dataset \(data.root): 24 images, fingerprint \(data.fingerprint.prefix(16))"),
                "the coordinator opened the shards: \(output.prefix(3000))")
        #expect(output.contains("step 6/6"), "\(output.suffix(4000))")
        #expect(!output.contains("dataset mismatch"))
        let skipped = output.split(separator: "\n").filter { $0.contains(data.name(of: 5)) }
        #expect(skipped.count >= 2, "the spoilt member is named in a warning each epoch:\n\(output.suffix(4000))")
        #expect(skipped.allSatisfy { $0.contains("skipped sample 5") })
        #expect(skipped.contains { $0.contains("rank=0") } || skipped.contains { $0.contains("rank=1") })

        let loaded = try WeightsFile.load("\(folder)/final/model.safetensors", layout: ParameterLayout(config: .tiny))
        #expect(loaded.metadata["step"] == "6")
        #expect(loaded.parameters != Self.initialParameters(seed: 0))
    }

    /// `--shard-window 2`: one worker and two (their ranks streaming their samples window by
    /// window) train bit-identical weights with exact reduction, and the order is not the global
    /// permutation's; on an image folder the option is refused with what to do.
    @Test func shardWindowsKeepTheRunIndependentOfTheWorkers() throws {
        let folder = try Scratch.folder("shard-windows")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let images = try SampleData.ensure(at: "\(folder)/source", count: 24, size: 40, seed: 6)
        let packed = try ShardPacker.pack(try DatasetIndex.scan(root: images), to: "\(folder)/shards",
                                          size: ModelConfig.tiny.imageSize, maximumShardBytes: 12 << 10)
        #expect(Set(packed.entries.map(\.shard)).count >= 4, "\(Set(packed.entries.map(\.shard)))")
        let common = ["--data", "\(folder)/shards", "--steps", "5", "--global-batch", "8", "--lr", "1e-3", "--optimizer", "sgd",
                      "--exact-reduction", "--checkpoint-every", "0"]
        let one = try Self.train(workers: 1, common + ["--shard-window", "2"], name: "windows-1")
        let two = try Self.train(workers: 2, common + ["--shard-window", "2"], name: "windows-2")
        #expect(one == two, "N = 1 and N = 2 train the same weights")
        let global = try Self.train(workers: 1, common, name: "windows-none")
        #expect(global != one, "the window order is another order than the global permutation")

        let refused = try Self.coordinator(["--workers", "1", "--data", images, "--shard-window", "2"], folder: folder, log: "refused.log")
        let status = refused.waitForExit(seconds: 120)
        #expect(status != nil && status != 0)
        #expect(refused.output.contains("is an image folder; shard windows need a shard directory (scvae pack"), "\(refused.output.suffix(2000))")
    }
}
