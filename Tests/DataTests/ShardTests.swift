import Foundation
import Testing
@testable import TensorFiles
@testable import Images
@testable import Dataset

private func runTar(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["tar"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return output
}

@Suite struct ShardTests {
    @Test func tarHeaderIsUstarWithAValidChecksum() throws {
        let header = try Tar.header(name: "00000001_a.jpg", size: 1000)
        #expect(header.count == 512)
        #expect(String(decoding: header[0..<14], as: UTF8.self) == "00000001_a.jpg")
        #expect(String(decoding: header[124..<135], as: UTF8.self) == "00000001750", "1000 in octal")
        #expect(Array(header[257..<265]) == Array("ustar".utf8) + [0] + Array("00".utf8))
        var sum = 0
        for (i, byte) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(byte) }
        #expect(Tar.parseOctal(header[148..<156]) == sum)
        #expect(throws: Tar.Failure.nameTooLong(String(repeating: "x", count: 101))) {
            try Tar.header(name: String(repeating: "x", count: 101), size: 1)
        }
    }

    @Test func packedShardsReadBackAndSystemTarAgrees() throws {
        let directory = TemporaryDirectory()
        let root = try SampleData.ensure(at: directory.path, count: 20, size: 16, seed: 2)
        let relativeRoot = String(root.dropFirst(directory.path.count + 1))
        directory.write(Array("junk".utf8), to: relativeRoot + "/s3_boxes/broken.v2.JPEG")
        let index = try DatasetIndex.scan(root: root)
        var failures: [SampleFailure] = []
        let packed = try ShardPacker.pack(index, to: directory.file("shards"), size: 12, maximumShardBytes: 6000,
                                          onFailure: { failures.append($0) })
        #expect(failures.map(\.path) == [root + "/s3_boxes/broken.v2.JPEG"])
        #expect(packed.count == 20)
        let shards = Set(packed.entries.map(\.shard))
        #expect(shards.count > 1, "a small shard limit splits the set")

        let reopened = try ShardSet.open(directory.file("shards"))
        #expect(reopened == packed)
        #expect(reopened.sourceFingerprint == index.fingerprint && reopened.size == 12)
        try reopened.verify()

        let decoder = ImageDecoder()
        for i in 0..<reopened.count {
            let image = try decoder.decode(try reopened.readBytes(of: i))
            #expect(min(image.width, image.height) == 12)
            let entry = reopened.entries[i]
            #expect(entry.member.dropFirst(9).hasPrefix(entry.className! + "_"), "the class travels with \(entry.member)")
        }
        #expect(reopened.entries[0].member == "00000000_s0_disks_000000.jpg")

        // GNU tar lists the same members, image and class per key.
        let firstShard = directory.file("shards/" + reopened.entries[0].shard)
        let listing = try runTar(["-tf", firstShard]).split(separator: "\n").map(String.init)
        #expect(listing.first == "00000000_s0_disks_000000.jpg")
        #expect(listing.dropFirst().first == "00000000_s0_disks_000000.cls")
        let extracted = try runTar(["-xOf", firstShard, "00000000_s0_disks_000000.cls"])
        #expect(extracted == "0")
    }

    @Test func prefetcherReadsFromShards() throws {
        let directory = TemporaryDirectory()
        let root = try SampleData.ensure(at: directory.path, count: 12, size: 16, seed: 4)
        let packed = try ShardPacker.pack(try DatasetIndex.scan(root: root), to: directory.file("shards"), size: 16)
        let sampler = try Sampler(sampleCount: packed.count, globalBatch: 4, seed: 1)
        let plan = TrainingPlan(sampler: sampler, rank: 0, worldSize: 1, start: SamplerCursor(epoch: 0, step: 0), stepCount: 3)
        let prefetcher = Prefetcher(source: packed, transform: ImageTransform(size: 16, mode: .training), plan: plan)
        var total = 0
        while let batch = prefetcher.next() {
            #expect(batch.failures.isEmpty)
            total += batch.count
        }
        #expect(total == 12)
    }

    @Test func damagedIndexOrShardIsATypedError() throws {
        let directory = TemporaryDirectory()
        let root = try SampleData.ensure(at: directory.path, count: 4, size: 16, seed: 4)
        let packed = try ShardPacker.pack(try DatasetIndex.scan(root: root), to: directory.file("shards"), size: 16)
        #expect(throws: ShardError.self) { try ShardSet.open(directory.file("nothing")) }
        directory.write(Array("scvae-shards 1\nsource-fingerprint x\nsize 16\ncount 3\n".utf8), to: "bad/index.txt")
        #expect(throws: ShardError.malformedIndex(path: directory.file("bad/index.txt"), reason: "bad preamble")) {
            try ShardSet.open(directory.file("bad"))
        }
        // An entry pointing past the end of its shard (or with an overflowing offset) is refused on open.
        let index = String(decoding: try BinaryFile.read(directory.file("shards/index.txt")), as: UTF8.self)
        for bad in ["\t99999999\t", "\t\(Int.max - 1)\t"] {
            var lines = index.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var fields = lines[4].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            fields[1] = bad.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\t", with: "")
            lines[4] = fields.joined(separator: "\t")
            directory.write(Array(lines.joined(separator: "\n").utf8), to: "shards/index.txt")
            #expect(throws: ShardError.self) { try ShardSet.open(directory.file("shards")) }
        }
        directory.write(Array(index.utf8), to: "shards/index.txt")
        #expect(try ShardSet.open(directory.file("shards")).count == 4)
        var shard = try BinaryFile.read(directory.file("shards/" + packed.entries[0].shard))
        shard[10] ^= 0xFF  // inside the first header's name: the checksum no longer matches
        directory.write(shard, to: "shards/" + packed.entries[0].shard)
        #expect(throws: ShardError.self) { try packed.verify() }
    }
}
