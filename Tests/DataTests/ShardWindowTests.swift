import Dataset
import Foundation
import Images
import Testing

/// Shard windows: an epoch order that keeps a window of shards together, and the reader that
/// streams a rank's samples of each window from its shards in file order.
@Suite struct ShardWindowTests {
    /// 10 shards of 7 samples (the last of 3).
    static let shards: [Range<Int>] = (0..<10).map { $0 * 7..<min($0 * 7 + 7, 66) }

    @Test func everyEpochIsAPermutationWhoseWindowsHoldWholeShards() throws {
        let windows = ShardWindows(shards: Self.shards, window: 3)
        let sampler = try Sampler(sampleCount: 66, globalBatch: 8, seed: 11, windows: windows)
        var previous: [Int] = []
        for epoch in 0..<3 {
            let order = sampler.epoch(epoch)
            #expect(order.permutation.sorted() == Array(0..<66), "a permutation")
            #expect(order.windowEnds.count == 4 && order.windowEnds.last == 66)
            var start = 0
            for end in order.windowEnds {
                // A window is the samples of whole shards: 3 of them (the last window 1).
                let shardsIn = Set(order.permutation[start..<end].map { $0 / 7 })
                #expect(shardsIn.count == (end == 66 ? 1 : 3), "window \(start)..<\(end): shards \(shardsIn.sorted())")
                #expect(shardsIn.reduce(0) { $0 + Self.shards[$1].count } == end - start)
                // Shuffled within: not the shards' samples in index order.
                #expect(end - start < 7 || Array(order.permutation[start..<end]) != Array(order.permutation[start..<end]).sorted())
                start = end
            }
            #expect(order.window(ofPosition: 0) == 0 && order.window(ofPosition: order.windowEnds[0]) == 1
                    && order.window(ofPosition: 65) == 3 && order.window(ofPosition: order.windowEnds[0] - 1) == 0)
            #expect(order.permutation != previous, "each epoch has its own order")
            previous = order.permutation
        }
        // A pure function of the seed and the layout.
        let again = try Sampler(sampleCount: 66, globalBatch: 8, seed: 11, windows: windows)
        #expect(again.epoch(2) == sampler.epoch(2))
        let otherSeed = try Sampler(sampleCount: 66, globalBatch: 8, seed: 12, windows: windows)
        #expect(otherSeed.permutation(epoch: 0) != sampler.permutation(epoch: 0))
        // Without windows the permutation is the global one, as before.
        let global = try Sampler(sampleCount: 66, globalBatch: 8, seed: 11)
        #expect(global.epoch(0).windowEnds == [66] && global.permutation(epoch: 0) != sampler.permutation(epoch: 0))
    }

    @Test func aRanksStepsCarryTheWindowOfEachSample() throws {
        let sampler = try Sampler(sampleCount: 66, globalBatch: 8, seed: 3, windows: ShardWindows(shards: Self.shards, window: 2))
        let order = sampler.epoch(0)
        for world in [1, 3] {
            for rank in 0..<world {
                let plan = TrainingPlan(sampler: sampler, rank: rank, worldSize: world, start: SamplerCursor(epoch: 0, step: 0), stepCount: 8)
                for k in 0..<8 {
                    let (step, windows) = try #require(plan.stepWithWindows(k))
                    let expected = step.sampleIndices.map { sample in order.window(ofPosition: order.permutation.firstIndex(of: sample)!) }
                    #expect(windows == expected)
                }
            }
        }
    }

    @Test func readsAreSortedAndMergedWithinLimits() {
        typealias Member = ShardReadPlan.Member
        let members = [
            Member(sample: 4, shard: "b.tar", offset: 0, size: 100),
            Member(sample: 1, shard: "a.tar", offset: 5000, size: 100),
            Member(sample: 0, shard: "a.tar", offset: 512, size: 1000),
            Member(sample: 2, shard: "a.tar", offset: 2048, size: 500),
            Member(sample: 3, shard: "a.tar", offset: 9000, size: 100),
        ]
        let ranges = ShardReadPlan.ranges(members, options: .init(maximumGap: 3000, maximumRead: 6000))
        #expect(ranges.map(\.shard) == ["a.tar", "a.tar", "b.tar"])
        // 512..<1512, 2048..<2548 and 5000..<5100 are within 3000 bytes of each other: one read.
        #expect(ranges[0].offset == 512 && ranges[0].size == 5100 - 512 && ranges[0].members.map(\.sample) == [0, 2, 1])
        // 9000 would stretch the read past 6000 bytes: a read of its own.
        #expect(ranges[1].offset == 9000 && ranges[1].size == 100 && ranges[1].members.map(\.sample) == [3])
        #expect(ranges[2].members.map(\.sample) == [4])
        // No merging across a larger gap.
        #expect(ShardReadPlan.ranges(members, options: .init(maximumGap: 0, maximumRead: 1 << 20)).count == 5)
    }

    /// The reader hands every sample of the plan the bytes the shard set holds, mostly from memory
    /// read in a few large reads, for one rank of one and of two, with two decoding threads.
    @Test func theReaderGivesTheShardsBytesFromFewReads() throws {
        let directory = TemporaryDirectory()
        let root = try SampleData.ensure(at: directory.path, count: 40, size: 16, seed: 5)
        let packed = try ShardPacker.pack(try DatasetIndex.scan(root: root), to: directory.file("shards"), size: 16,
                                          maximumShardBytes: 20000)
        let windows = ShardWindows(packed, window: 2)
        #expect(windows.shards.count >= 4 && windows.shards.allSatisfy { $0.count >= 4 }, "small shards: \(windows.shards)")
        let sampler = try Sampler(sampleCount: packed.count, globalBatch: 4, seed: 2, windows: windows)
        for world in [1, 2] {
            let plan = TrainingPlan(sampler: sampler, rank: world - 1, worldSize: world, start: SamplerCursor(epoch: 0, step: 3),
                                    stepCount: 2 * sampler.stepsPerEpoch)
            let reader = WindowedShardReader(shards: packed, plan: plan)
            let prefetcher = Prefetcher(source: reader, transform: ImageTransform(size: 16, mode: .training), plan: plan, threads: 2)
            let direct = Prefetcher(source: packed, transform: ImageTransform(size: 16, mode: .training), plan: plan)
            var steps = 0
            while let batch = prefetcher.next() {
                let expected = try #require(direct.next())
                #expect(batch.sampleIndices == expected.sampleIndices && batch.images == expected.images && batch.failures.isEmpty)
                steps += 1
            }
            #expect(steps == 2 * sampler.stepsPerEpoch)
            reader.stop()
            let counts = reader.statistics
            let samples = steps * (4 / world)
            #expect(counts.fromMemory + counts.direct == samples)
            #expect(counts.fromMemory == samples && counts.direct == 0, "every sample comes from memory: \(counts)")
            #expect(counts.ranges < samples / 3, "in few reads: \(counts)")
        }
    }

    @Test func aTruncatedShardIsReportedAsWithoutWindows() throws {
        let directory = TemporaryDirectory()
        let root = try SampleData.ensure(at: directory.path, count: 16, size: 16, seed: 6)
        _ = try ShardPacker.pack(try DatasetIndex.scan(root: root), to: directory.file("shards"), size: 16, maximumShardBytes: 4000)
        var set = try ShardSet.open(directory.file("shards"))
        let last = try #require(set.entries.last)
        let handle = try #require(FileHandle(forWritingAtPath: directory.file("shards/" + last.shard)))
        try handle.truncate(atOffset: UInt64(last.offset + 10))
        try handle.close()
        set = try ShardSet.open(directory.file("shards"))
        let sampler = try Sampler(sampleCount: set.count, globalBatch: 4, seed: 1, windows: ShardWindows(set, window: 2))
        let plan = TrainingPlan(sampler: sampler, rank: 0, worldSize: 1, start: SamplerCursor(epoch: 0, step: 0), stepCount: sampler.stepsPerEpoch)
        let reader = WindowedShardReader(shards: set, plan: plan)
        defer { reader.stop() }
        let prefetcher = Prefetcher(source: reader, transform: ImageTransform(size: 16, mode: .training), plan: plan)
        var failures: [SampleFailure] = []
        while let batch = prefetcher.next() { failures += batch.failures }
        #expect(failures.map(\.sampleIndex) == [set.count - 1], "\(failures)")
        #expect(failures.first?.path == set.name(of: set.count - 1))
        if case .truncated? = failures.first?.error {} else { Issue.record("\(failures)") }
    }
}
