import Foundation
import Testing
@testable import TensorFiles
@testable import Images
@testable import Dataset

/// Training from a shard directory as from an image folder: the same samples, the same batches,
/// a fingerprint every node agrees on, damaged shards skipped by name.
@Suite struct TrainingDataTests {
    /// A small image folder of the built-in kind under `directory`.
    private func imageFolder(_ directory: TemporaryDirectory, count: Int = 12, seed: UInt64 = 4) throws -> DatasetIndex {
        try DatasetIndex.scan(root: try SampleData.ensure(at: directory.path, count: count, size: 16, seed: seed))
    }

    /// Shards holding the folder's own JPEG bytes (not re-encoded), split over several shards.
    private func shardsOfTheSameBytes(_ index: DatasetIndex, into path: String) throws -> ShardSet {
        let writer = try ShardWriter(directory: path, maximumShardBytes: 4000)
        for i in 0..<index.count {
            try writer.add(key: ShardPacker.key(index: i, path: index.samples[i].path), jpeg: try index.readBytes(of: i),
                           classIndex: nil, className: index.samples[i].className)
        }
        return try writer.finish(sourceFingerprint: index.fingerprint, size: 16)
    }

    /// Every batch of a prefetcher, in step order.
    private func allBatches(_ source: TrainingData, plan: TrainingPlan, threads: Int) -> [PreparedBatch] {
        let prefetcher = Prefetcher(source: source, transform: ImageTransform(size: 16, mode: .training), plan: plan, threads: threads)
        var batches: [PreparedBatch] = []
        while let batch = prefetcher.next() { batches.append(batch) }
        return batches
    }

    @Test func shardsGiveTheFolderImagesForTheSameSampleIndices() throws {
        let directory = TemporaryDirectory()
        let index = try imageFolder(directory)
        let set = try shardsOfTheSameBytes(index, into: directory.file("shards"))
        #expect(Set(set.entries.map(\.shard)).count > 2, "the images are spread over several shards")
        let folder = TrainingData.folder(index), shards = TrainingData.shards(set)
        #expect(shards.count == folder.count)
        for i in 0..<folder.count {
            #expect(try shards.readBytes(of: i) == folder.readBytes(of: i), "sample \(i): \(shards.name(of: i))")
        }

        // Two ranks over two epochs: the same samples in the same batches, decoded and augmented
        // to the same floats, whether one thread or three read the shards.
        let sampler = try Sampler(sampleCount: index.count, globalBatch: 5, seed: 9)
        for rank in 0..<2 {
            let plan = TrainingPlan(sampler: sampler, rank: rank, worldSize: 2, start: SamplerCursor(epoch: 0, step: 0),
                                    stepCount: 2 * sampler.stepsPerEpoch)
            let expected = allBatches(folder, plan: plan, threads: 1)
            let actual = allBatches(shards, plan: plan, threads: 3)
            #expect(expected.count == 2 * sampler.stepsPerEpoch)
            #expect(actual.map(\.sampleIndices) == expected.map(\.sampleIndices), "rank \(rank)")
            #expect(actual.map(\.images) == expected.map(\.images), "rank \(rank)")
            #expect(actual.allSatisfy { $0.failures.isEmpty })
        }
    }

    @Test func aShardDirectoryResolvesAsShardsAndAFolderAsAFolder() throws {
        let directory = TemporaryDirectory()
        let index = try imageFolder(directory)
        let packed = try ShardPacker.pack(index, to: directory.file("shards"), size: 16)
        let cache = directory.file("cache")

        let resolved = try DatasetLocation.resolve(dataPath: directory.file("shards/../shards"), cacheDirectory: cache)
        guard case .shards(let set) = resolved else {
            Issue.record("a directory with a shard index resolves as shards, got \(resolved.kind)")
            return
        }
        #expect(set.entries == packed.entries && resolved.fingerprint == packed.fingerprint)
        #expect(resolved.root == realpathOf(directory.file("shards")), "named by its absolute path")
        #expect(resolved.name(of: 0) == resolved.root + "/shard-000000.tar:" + packed.entries[0].member)
        #expect(try DatasetLocation.open(directory.file("shards")) == resolved)

        let folder = try DatasetLocation.resolve(dataPath: index.root, cacheDirectory: cache)
        #expect(folder == .folder(index))
        // A file called index.txt that is not a shard index leaves a folder a folder.
        directory.write(Array("notes about these images\n".utf8), to: String(index.root.dropFirst(directory.path.count + 1)) + "/index.txt")
        #expect(try DatasetLocation.resolve(dataPath: index.root, cacheDirectory: cache).kind == "image folder")
    }

    @Test func anUnfinishedOrNewerShardDirectoryIsATypedFailure() throws {
        let directory = TemporaryDirectory()
        _ = try ShardPacker.pack(try imageFolder(directory), to: directory.file("shards"), size: 16)
        let indexFile = directory.file("shards/index.txt")
        let text = String(decoding: try BinaryFile.read(indexFile), as: UTF8.self)

        directory.write(Array(text.replacingOccurrences(of: "scvae-shards 1", with: "scvae-shards 2").utf8), to: "shards/index.txt")
        do {
            _ = try DatasetLocation.resolve(dataPath: directory.file("shards"), cacheDirectory: directory.file("cache"))
            Issue.record("a newer shard format is refused")
        } catch {
            guard case .shards(_, .malformedIndex(_, let reason)) = error else {
                Issue.record("expected a malformed-index failure, got \(error)")
                return
            }
            #expect(reason.contains("scvae-shards 2"), "\(reason)")
        }

        try FileManager.default.removeItem(atPath: indexFile)
        do {
            _ = try DatasetLocation.open(directory.file("shards"))
            Issue.record("shards without their index are refused")
        } catch {
            guard case .shards(_, .unreadable(let path, let reason)) = error else {
                Issue.record("expected an unreadable-index failure, got \(error)")
                return
            }
            #expect(path.hasSuffix("/index.txt") && reason.contains("unfinished `scvae pack`"), "\(error)")
        }
    }

    @Test func theFingerprintFollowsTheShardsNotTheirPath() throws {
        let directory = TemporaryDirectory()
        let index = try imageFolder(directory)
        let first = try ShardPacker.pack(index, to: directory.file("a/shards"), size: 16, maximumShardBytes: 4000)
        let copy = try ShardPacker.pack(index, to: directory.file("b/elsewhere"), size: 16, maximumShardBytes: 4000)
        #expect(first.fingerprint == copy.fingerprint, "another node's copy at another path agrees")
        #expect(try ShardSet.open(directory.file("a/shards")).fingerprint == first.fingerprint)
        #expect(first.fingerprint != index.fingerprint, "shards hold other bytes than their source folder")
        let smaller = try ShardPacker.pack(index, to: directory.file("c"), size: 12, maximumShardBytes: 4000)
        #expect(smaller.fingerprint != first.fingerprint, "a repack at another size differs")
        let otherImages = try imageFolder(TemporaryDirectory(), seed: 5)
        let other = try ShardPacker.pack(otherImages, to: directory.file("d"), size: 16, maximumShardBytes: 4000)
        #expect(other.fingerprint != first.fingerprint, "another shard set differs")

        // The documented definition, and the shell recipe in ShardSet's documentation.
        var text = try BinaryFile.read(directory.file("a/shards/index.txt"))
        for shard in Set(first.entries.map(\.shard)).sorted() {
            text += Array("\(shard)\t\(try BinaryFile.read(directory.file("a/shards/" + shard)).count)\n".utf8)
        }
        #expect(first.fingerprint == SHA256.hex(text))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.currentDirectoryURL = URL(fileURLWithPath: directory.file("a/shards"))
        process.arguments = ["-c", #"{ cat index.txt; tail -n +5 index.txt | cut -f1 | LC_ALL=C sort -u | xargs stat --printf '%n\t%s\n'; } | sha256sum"#]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        process.waitUntilExit()
        #expect(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).hasPrefix(first.fingerprint))

        // A shard truncated on one node changes that node's fingerprint, so it is not admitted.
        let lastShard = directory.file("a/shards/" + first.entries.last!.shard)
        let bytes = try BinaryFile.read(lastShard)
        directory.write(Array(bytes.prefix(bytes.count - 1024)), to: "a/shards/" + first.entries.last!.shard)
        #expect(try ShardSet.open(directory.file("a/shards")).fingerprint != first.fingerprint)
    }

    @Test func aTruncatedShardAndACorruptMemberAreSkippedByName() throws {
        let directory = TemporaryDirectory()
        let index = try imageFolder(directory, count: 16)
        let packed = try ShardPacker.pack(index, to: directory.file("shards"), size: 16, maximumShardBytes: 12000)
        let shards = packed.entries.map(\.shard)
        #expect(Set(shards).count >= 3)

        // Member 1's JPEG bytes become junk of the same length.
        let corrupt = packed.entries[1]
        var first = try BinaryFile.read(directory.file("shards/" + corrupt.shard))
        for i in corrupt.offset..<(corrupt.offset + corrupt.size) { first[i] = 0x5A }
        directory.write(first, to: "shards/" + corrupt.shard)
        // The last shard loses its tail from the middle of its last-but-one image on.
        let lastShard = shards.last!
        let inLast = packed.entries.indices.filter { packed.entries[$0].shard == lastShard }
        #expect(inLast.count >= 2)
        let cut = packed.entries[inLast[inLast.count - 2]]
        let last = try BinaryFile.read(directory.file("shards/" + lastShard))
        directory.write(Array(last.prefix(cut.offset + cut.size / 2)), to: "shards/" + lastShard)

        let set = try ShardSet.open(directory.file("shards"))
        #expect(set.count == packed.count, "a truncated shard keeps its samples' numbers")
        #expect(set.truncatedShards == [lastShard])
        let lost = Array(inLast.suffix(2))
        do {
            _ = try set.readBytes(of: lost[1])
            Issue.record("a member past the end of its shard cannot be read")
        } catch {
            guard case .truncated(let file, _) = error else {
                Issue.record("expected .truncated, got \(error)")
                return
            }
            #expect(file == set.name(of: lost[1]) && file.hasSuffix(lastShard + ":" + packed.entries[lost[1]].member))
        }

        // One epoch over the damaged set: the three damaged samples are left out, counted and
        // named; every other sample trains.
        let sampler = try Sampler(sampleCount: set.count, globalBatch: 4, seed: 2)
        let plan = TrainingPlan(sampler: sampler, rank: 0, worldSize: 1, start: SamplerCursor(epoch: 0, step: 0),
                                stepCount: sampler.stepsPerEpoch)
        let reported = FailureLog()
        let prefetcher = Prefetcher(source: TrainingData.shards(set), transform: ImageTransform(size: 16, mode: .training),
                                    plan: plan, threads: 2, onFailure: { reported.append($0) })
        var trained: [Int] = []
        while let batch = prefetcher.next() { trained += batch.sampleIndices }
        let damaged = [1] + lost
        #expect(Set(trained) == Set(0..<set.count).subtracting(damaged))
        #expect(prefetcher.skippedCount == 3)
        let failures = reported.all.sorted { $0.sampleIndex < $1.sampleIndex }
        #expect(failures.map(\.sampleIndex) == damaged)
        #expect(failures.map(\.path) == damaged.map { set.name(of: $0) })
        if case .notAnImage = failures[0].error {} else { Issue.record("junk bytes are not an image: \(failures[0].error)") }
        #expect(failures.dropFirst().allSatisfy { "\($0.error)".contains("truncated") }, "\(failures)")
    }

    @Test func indexEntriesNoTarMemberCouldHaveAreRefused() throws {
        let directory = TemporaryDirectory()
        _ = try ShardPacker.pack(try imageFolder(directory, count: 4), to: directory.file("shards"), size: 16)
        let text = String(decoding: try BinaryFile.read(directory.file("shards/index.txt")), as: UTF8.self)
        var lines = text.split(separator: "\n").map(String.init)
        // The second image placed before the end of the first: overlapping members.
        var second = lines[5].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        second[1] = lines[4].split(separator: "\t")[1].description
        lines[5] = second.joined(separator: "\t")
        directory.write(Array((lines.joined(separator: "\n") + "\n").utf8), to: "shards/index.txt")
        #expect(throws: ShardError.self) { try ShardSet.open(directory.file("shards")) }
    }

    @Test func descriptorsBeyondTheLimitAreClosedAndReadsStayCorrect() throws {
        let directory = TemporaryDirectory()
        let packed = try ShardPacker.pack(try imageFolder(directory), to: directory.file("shards"), size: 16, maximumShardBytes: 4000)
        let files = ShardFiles(directory: directory.file("shards"), limit: 2)
        var shardBytes: [String: [UInt8]] = [:]
        for _ in 0..<2 {
            for (i, entry) in packed.entries.enumerated().reversed() {
                let whole = try shardBytes[entry.shard] ?? BinaryFile.read(directory.file("shards/" + entry.shard))
                shardBytes[entry.shard] = whole
                let bytes = try files.read(shard: entry.shard, offset: entry.offset, count: entry.size, name: "sample \(i)")
                #expect(bytes[...] == whole[entry.offset..<(entry.offset + entry.size)], "sample \(i)")
                #expect(files.openCount <= 2)
            }
        }
        #expect(shardBytes.count > 2, "more shards than descriptors")
    }
}

/// Failures reported from producer threads.
private final class FailureLog: @unchecked Sendable {
    private let lock = NSLock()
    private var failures: [SampleFailure] = []
    func append(_ failure: SampleFailure) { lock.withLock { failures.append(failure) } }
    var all: [SampleFailure] { lock.withLock { failures } }
}

private func realpathOf(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
}
