import Foundation
import Testing
@testable import TensorFiles
@testable import Images
@testable import Dataset

/// Tar bytes built member by member, with the header variants real archives use.
private struct TarBuilder {
    var bytes: [UInt8] = []

    enum Naming { case plain, gnuLongName, pax, ustarPrefix }

    static func header(name: [UInt8], size: Int, type: UInt8, prefix: [UInt8] = []) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ field: [UInt8], _ at: Int) { for (i, b) in field.enumerated() { block[at + i] = b } }
        func octal(_ value: Int, _ width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: width - 1 - digits.count) + digits).utf8) + [0]
        }
        put(Array(name.prefix(100)), 0)
        put(octal(0o644, 8), 100)
        put(octal(0, 8), 108)
        put(octal(0, 8), 116)
        put(octal(size, 12), 124)
        put(octal(0, 12), 136)
        put([UInt8](repeating: 0x20, count: 8), 148)
        block[156] = type
        put(Array("ustar".utf8) + [0] + Array("00".utf8), 257)
        put(prefix, 345)
        put(octal(block.reduce(0) { $0 + Int($1) }, 7) + [0x20], 148)
        return block
    }

    mutating func data(_ data: [UInt8]) {
        bytes += data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }

    mutating func add(_ name: String, _ data: [UInt8], naming: Naming = .plain, type: UInt8 = UInt8(ascii: "0")) {
        let nameBytes = Array(name.utf8)
        switch naming {
        case .plain:
            bytes += Self.header(name: nameBytes, size: data.count, type: type)
        case .gnuLongName:
            bytes += Self.header(name: Array("././@LongLink".utf8), size: nameBytes.count + 1, type: UInt8(ascii: "L"))
            self.data(nameBytes + [0])
            bytes += Self.header(name: Array(nameBytes.prefix(99)), size: data.count, type: type)
        case .pax:
            let body = " path=\(name)\n".utf8.count
            var length = body + 1
            while body + String(length).count != length { length = body + String(length).count }
            let record = "\(length) path=\(name)\n"
            let pax = Array("22 mtime=1700000000.5\n".utf8) + Array(record.utf8)
            bytes += Self.header(name: Array("PaxHeaders/x".utf8), size: pax.count, type: UInt8(ascii: "x"))
            self.data(pax)
            bytes += Self.header(name: Array("truncated-name-ignored".utf8), size: data.count, type: type)
        case .ustarPrefix:
            let slash = nameBytes.lastIndex(of: UInt8(ascii: "/"))!
            bytes += Self.header(name: Array(nameBytes[(slash + 1)...]), size: data.count, type: type, prefix: Array(nameBytes[..<slash]))
        }
        self.data(data)
    }

    mutating func directory(_ name: String) {
        bytes += Self.header(name: Array(name.utf8), size: 0, type: UInt8(ascii: "5"))
    }

    func finished() -> [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }
}

/// Every file of a folder (name to bytes).
private func contents(of folder: String) throws -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
        files[name] = try BinaryFile.read(folder + "/" + name)
    }
    return files
}

/// An ImageNet-shaped pair: a folder ROOT/<class>/<file> (the built-in sample images plus a long
/// name, a pax-named file and a corrupt JPEG) and the tar of class tars holding the same files.
private func imageNetShaped(in directory: TemporaryDirectory, count: Int = 14) throws -> (root: String, tar: String) {
    let root = try SampleData.ensure(at: directory.path, count: count, size: 16, seed: 3)
    let relativeRoot = String(root.dropFirst(directory.path.count + 1))
    let some = try BinaryFile.read(root + "/s0_disks/s0_disks_000000.JPEG")
    let longName = "s0_disks_" + String(repeating: "long", count: 30) + ".JPEG"
    directory.write(some, to: relativeRoot + "/s0_disks/" + longName)
    directory.write(some, to: relativeRoot + "/s2_checks/s2_checks_pax_\u{e9}t\u{e9}.JPEG")
    directory.write(Array(some.prefix(40)) + [UInt8](repeating: 7, count: 300), to: relativeRoot + "/s1_stripes/s1_stripes_broken.JPEG")

    let index = try DatasetIndex.scan(root: root)
    var outer = TarBuilder()
    outer.directory("./")
    outer.add("README.txt", Array("not an image".utf8))
    for className in index.classNames {
        var inner = TarBuilder()
        inner.directory(className + "_extra/")
        for sample in index.samples where sample.className == className {
            let file = String(sample.path.dropFirst(className.count + 1))
            let naming: TarBuilder.Naming = file.utf8.count > 100 ? .gnuLongName : file.contains("pax") ? .pax : .plain
            inner.add(file, try BinaryFile.read(root + "/" + sample.path), naming: naming)
        }
        outer.add("./" + className + ".tar", inner.finished(), naming: className == "s3_boxes" ? .pax : .plain)
    }
    let tar = directory.write(outer.finished(), to: "train.tar")
    return (root, tar)
}

@Suite struct TarPackTests {
    @Test func headersParseUstarGnuAndBase256() throws {
        let ustar = TarBuilder.header(name: Array("file.JPEG".utf8), size: 1000, type: UInt8(ascii: "0"), prefix: Array("a/b".utf8))
        let parsed = try TarHeader.parse(ustar).get()
        #expect(parsed == TarHeader(name: Array("a/b/file.JPEG".utf8), size: 1000, typeflag: UInt8(ascii: "0")))
        // GNU magic ("ustar  \0"): bytes 345... are not a prefix.
        var gnu = ustar
        for (i, b) in (Array("ustar ".utf8) + [0x20, 0]).enumerated() { gnu[257 + i] = b }
        var sum = 0
        for (i, b) in gnu.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
        let digits = Array(String(sum, radix: 8).utf8)
        for i in 0..<8 { gnu[148 + i] = i < 7 - digits.count ? UInt8(ascii: "0") : i < 7 ? digits[i - (7 - digits.count)] : 0x20 }
        #expect(try TarHeader.parse(gnu).get()?.name == Array("file.JPEG".utf8))
        #expect(TarHeader.parseNumber([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x01][...]) == 0x20001)
        var bad = ustar
        bad[0] ^= 1
        #expect(throws: TarHeaderProblem.self) { try TarHeader.parse(bad).get() }
        #expect(try TarHeader.parse([UInt8](repeating: 0, count: 512)).get() == nil)
        let records = TarHeader.paxRecords(Array("16 path=a/b.jpg\n11 size=42\n".utf8))
        #expect(records?["path"] == Array("a/b.jpg".utf8) && records?["size"] == Array("42".utf8))
        #expect(TarHeader.paxRecords(Array("99 path=x\n".utf8)) == nil)
    }

    @Test func membersGetTheRolesOfTheirFolderFiles() {
        func entry(_ name: String, _ kind: TarEntry.Kind = .regular) -> TarEntry {
            TarEntry(name: name, shownName: name, kind: kind, size: 1, headerOffset: 0)
        }
        #expect(TarLayout.role(of: entry("./n01440764.tar")) == .classArchive(className: "n01440764"))
        #expect(TarLayout.role(of: entry("n01_1.JPEG"), inClass: "n01") == .image(path: "n01/n01_1.JPEG"))
        #expect(TarLayout.role(of: entry("val_1.JPEG")) == .image(path: "val_1.JPEG"))
        #expect(TarLayout.role(of: entry("./n02/x.png")) == .image(path: "n02/x.png"))
        #expect(TarLayout.role(of: entry("n02/", .directory)) == .ignored)
        #expect(TarLayout.role(of: entry("n02/._x.JPEG")) == .ignored)
        #expect(TarLayout.role(of: entry("inner.tar"), inClass: "n01") == .skipped(reason: "an archive inside a class archive is not read"))
        #expect(TarLayout.role(of: entry("notes.txt")) == .skipped(reason: "not an image (.jpg, .jpeg, .png) or a class archive (.tar)"))
        #expect(TarLayout.role(of: entry("../x.JPEG")) == .skipped(reason: "its name contains '..'"))
        #expect(TarLayout.role(of: entry("link.JPEG", .other("2"))) != .ignored)
    }

    @Test func nestedTarPacksExactlyLikeItsFolderWithAnyThreadCount() throws {
        let directory = TemporaryDirectory()
        let (root, tar) = try imageNetShaped(in: directory)
        let folderPack = try ShardPacker.pack(try DatasetIndex.scan(root: root), to: directory.file("from-folder"), size: 12,
                                              maximumShardBytes: 6000)
        for threads in [1, 2] {
            var failures: [SampleFailure] = []
            var skipped: [String] = []
            let out = directory.file("from-tar-\(threads)")
            let packed = try TarPacker.pack(tar: tar, to: out, settings: .init(size: 12, maximumShardBytes: 6000, threads: threads)) { event in
                if case .failed(let failure) = event { failures.append(failure) }
                if case .skipped(let member, _) = event { skipped.append(member) }
            }
            #expect(failures.map(\.path) == [tar + ":./s1_stripes.tar:s1_stripes_broken.JPEG"])
            #expect(skipped == [tar + ":README.txt"])
            #expect(packed.count == folderPack.count && packed.sourceFingerprint == folderPack.sourceFingerprint)
            #expect(try contents(of: out) == contents(of: directory.file("from-folder")), "same index, same shard bytes (T=\(threads))")
            #expect(!FileSystem.exists(out + "/" + PackJournal.fileName), "the journal goes once the index is written")
        }
        #expect(folderPack.entries.contains { $0.member.contains("longlong") && $0.className == "s0_disks" })
        #expect(folderPack.entries.contains { $0.member.contains("pax_\u{e9}t\u{e9}") && $0.className == "s2_checks" })

        // Training reads it: the data location opens it as shards, and samples decode at size 12.
        guard case .shards(let set) = try DatasetLocation.open(directory.file("from-tar-2")) else {
            Issue.record("not opened as shards")
            return
        }
        try set.verify()
        let image = try ImageDecoder().decode(try set.readBytes(of: set.count - 1))
        #expect(min(image.width, image.height) == 12)
        #expect(Set(set.entries.compactMap(\.className)) == Set(SampleData.classNames))
    }

    @Test func interruptedPackResumesToTheSameBytes() throws {
        let directory = TemporaryDirectory()
        let (_, tar) = try imageNetShaped(in: directory, count: 20)
        let settings = TarPacker.Settings(size: 12, maximumShardBytes: 3000, threads: 2)
        let whole = directory.file("whole")
        _ = try TarPacker.pack(tar: tar, to: whole, settings: settings)
        let expected = try contents(of: whole)
        #expect(expected.keys.filter { $0.hasPrefix("shard-") }.count >= 6, "enough shards to stop between")

        let out = directory.file("resumed")
        var stopping = settings
        stopping.stopAfterShards = 2
        #expect(throws: TarPacker.Failure.self) { try TarPacker.pack(tar: tar, to: out, settings: stopping) }
        #expect(!FileSystem.exists(out + "/index.txt"))
        let journal = try PackJournal.parse(String(decoding: try BinaryFile.read(out + "/" + PackJournal.fileName), as: UTF8.self)).get()
        #expect(journal.shards.map(\.name) == ["shard-000000.tar", "shard-000001.tar"])
        // What a kill leaves: a shard renamed after the journal's last update, a temporary file.
        directory.write(Array("stale".utf8), to: "resumed/shard-000002.tar")
        directory.write(Array("half".utf8), to: "resumed/shard-000003.tar.tmp-99-1")

        // Another run with other settings is refused, naming the journal.
        var other = settings
        other.quality = 80
        #expect(throws: TarPacker.Failure.self) { try TarPacker.pack(tar: tar, to: out, settings: other) }

        stopping.stopAfterShards = 2
        var resumedAt: Int?
        #expect(throws: TarPacker.Failure.self) {
            try TarPacker.pack(tar: tar, to: out, settings: stopping) { if case .resumed(_, let next) = $0 { resumedAt = next } }
        }
        #expect(resumedAt == journal.shards[1].resume.nextNumber)
        // A journaled shard damaged since: it and the ones after it are written again.
        var damaged = try BinaryFile.read(out + "/shard-000003.tar")
        damaged[600] ^= 0xFF
        directory.write(damaged, to: "resumed/shard-000003.tar")
        var resumedShards: Int?
        _ = try TarPacker.pack(tar: tar, to: out, settings: settings) { if case .resumed(let shards, _) = $0 { resumedShards = shards } }
        #expect(resumedShards == 3)
        #expect(try contents(of: out) == expected)

        // A finished pack is left alone.
        var complete = false
        _ = try TarPacker.pack(tar: tar, to: out, settings: settings) { if case .alreadyComplete = $0 { complete = true } }
        #expect(complete)
    }

    @Test func flatTarIsUnlabeledOrLabeledByFile() throws {
        let directory = TemporaryDirectory()
        var flat = TarBuilder()
        let names = ["val_00000003.JPEG", "val_00000001.JPEG", "sub/val_00000002.JPEG", "val_00000004.JPEG"]
        for (i, name) in names.enumerated() {
            let image = SampleData.image(index: i, size: 16, seed: 1)
            flat.add(name, try encodeJPEG(image), naming: name.hasPrefix("sub") ? .ustarPrefix : .plain)
        }
        let tar = directory.write(flat.finished(), to: "val.tar")
        let plain = try TarPacker.pack(tar: tar, to: directory.file("plain"), settings: .init(size: 12))
        #expect(plain.entries.map(\.className) == [nil, nil, "sub", nil])
        #expect(plain.entries.map(\.member) == ["00000000_val_00000003.jpg", "00000001_val_00000001.jpg",
                                                "00000002_val_00000002.jpg", "00000003_val_00000004.jpg"])

        // Lines follow the sorted names of the images without a folder: 01, 03, 04.
        let labels = directory.write(Array("n02\r\nn01\nn02\n".utf8), to: "labels.txt")
        let labeled = try TarPacker.pack(tar: tar, to: directory.file("labeled"), settings: .init(size: 12, labelsPath: labels))
        #expect(labeled.entries.map(\.className) == ["n01", "n02", "sub", "n02"])
        let shard = try BinaryFile.read(directory.file("labeled/shard-000000.tar"))
        let classes = try Tar.members(shard).filter { $0.name.hasSuffix(".cls") }.map {
            String(decoding: shard[$0.dataOffset..<($0.dataOffset + $0.size)], as: UTF8.self)
        }
        #expect(classes == ["0", "1", "2", "1"], "classes numbered in sorted order: n01 n02 sub")

        let short = directory.write(Array("n01\nn02\n".utf8), to: "short.txt")
        #expect(throws: TarPacker.Failure.self) {
            try TarPacker.pack(tar: tar, to: directory.file("short"), settings: .init(size: 12, labelsPath: short))
        }
    }

    @Test func damagedTarsAreClearErrors() throws {
        let directory = TemporaryDirectory()
        let (_, tar) = try imageNetShaped(in: directory, count: 8)
        let bytes = try BinaryFile.read(tar)
        func failure(_ damaged: [UInt8]) -> TarStreamError? {
            let path = directory.write(damaged, to: "damaged.tar")
            do {
                _ = try TarPacker.pack(tar: path, to: directory.file("out-\(UUID().uuidString)"), settings: .init(size: 12))
            } catch {
                if case .tar(let error) = error { return error }
                Issue.record("unexpected \(error)")
            }
            return nil
        }
        // Cut inside a class archive, at a header boundary, and without the end blocks.
        for cut in [bytes.count / 2 + 100, bytes.count / 2 / 512 * 512, bytes.count - 1024] {
            guard case .truncated(let archive, _, let reason)? = failure(Array(bytes.prefix(cut))) else {
                Issue.record("cut at \(cut) was not reported as truncated")
                continue
            }
            #expect(archive.hasSuffix("damaged.tar") && !reason.isEmpty)
        }
        var corrupt = bytes
        corrupt[512 * 3 + 5] ^= 0x55  // a header's name: its checksum fails
        guard case .badHeader? = failure(corrupt) else {
            Issue.record("a bad checksum was not reported")
            return
        }
        let message = TarStreamError.truncated(archive: "t.tar", offset: 1024, reason: "the archive ends inside x").description
        #expect(message.contains("t.tar") && message.contains("1024"))
    }

    @Test func progressLineAndJournalText() throws {
        let progress = TarPackProgress(images: 1500, classesDone: 3, classesTotal: 1000, bytesRead: 300 << 20,
                                       bytesTotal: 1300 << 20, seconds: 10, imagesThisRun: 1000, bytesThisRun: 100 << 20)
        #expect(progress.line == "images 1500 | classes 3/1000 | 100 images/s | 300/1300 MiB read | ETA 1m 40s")
        #expect(TarPackProgress.duration(7300) == "2h 01m")

        var hasher = SHA256()
        hasher.update("n01/a.JPEG\t12\n")
        var resumed = SHA256(savedState: hasher.savedState)!
        resumed.update("n01/b.JPEG\t5\n")
        var straight = SHA256()
        straight.update("n01/a.JPEG\t12\nn01/b.JPEG\t5\n")
        #expect(resumed.finalize() == straight.finalize())

        var journal = PackJournal(input: "10 abc", settings: "size=12 quality=90 shard-bytes=3000 labels=-")
        journal.shards.append(.init(name: "shard-000000.tar", bytes: 2048, checksum: 0xdead_beef_0102,
                                    resume: TarResumePoint(outer: 1536, inner: 2560, nextNumber: 7, classesDone: 1, fingerprint: hasher.savedState)))
        #expect(try PackJournal.parse(journal.text).get() == journal)
        #expect(throws: TarHeaderProblem.self) { try PackJournal.parse(journal.text.replacingOccurrences(of: "shard-000000", with: "shard-000001")).get() }
    }
}

@Suite struct SystemTarTests {
    /// GNU tar's own ustar (prefix), GNU (long names) and pax archives read back with the names
    /// and contents of the files they were made from.
    @Test func readsWhatGNUTarWrites() throws {
        let directory = TemporaryDirectory()
        let deep = String(repeating: "folder/", count: 20) + "deep.JPEG"  // 149 bytes: ustar splits it into prefix and name
        let long = String(repeating: "n", count: 140) + ".JPEG"  // over 100 bytes in one name: GNU or pax only
        let files = [deep: Array("deep".utf8), long: Array("long".utf8), "caf\u{e9}.png": [UInt8](repeating: 9, count: 1300)]
        for (name, bytes) in files { directory.write(bytes, to: "src/" + name) }
        for format in ["ustar", "gnu", "pax"] {
            let names = format == "ustar" ? [deep, "caf\u{e9}.png"] : Array(files.keys)
            let archive = directory.file("\(format).tar")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["tar", "--format=\(format)", "-cf", archive, "-C", directory.file("src")] + names
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            let reader = TarReader(archive: archive, stream: MemoryStream(try BinaryFile.read(archive)))
            var read: [String: [UInt8]] = [:]
            while let entry = try reader.next() {
                if entry.kind == .regular { read[entry.name!] = try reader.readMember(name: entry.shownName) }
            }
            #expect(read == files.filter { names.contains($0.key) }, "\(format)")
        }
    }
}

@Suite struct PackPipelineTests {
    /// Workers finish in any order; the writer gets results in submission order, and the reader
    /// never runs more than the window ahead of the writer.
    @Test func resultsComeInOrderWithinTheWindow() throws {
        let pipeline = PackPipeline(window: 3)
        let count = 40
        let submittedCount = Counter()
        let reader = NativeThread {
            for number in 0..<count {
                // Valid JPEGs and junk alternate, so workers take different times.
                let bytes: [UInt8] = number % 3 == 0 ? (try! encodeJPEG(SampleData.image(index: number, size: 24, seed: 5))) : [1, 2, 3]
                let job = PackJob(number: number, path: "c/\(number).jpg", shownPath: "\(number)", bytes: .success(bytes),
                                  resume: TarResumePoint.start)
                guard pipeline.submit(job, bytesRead: number) else { return }
                submittedCount.increment()
            }
            pipeline.finish(error: nil, fingerprint: SHA256().savedState)
        }
        let workers = (0..<3).map { _ in NativeThread { pipeline.work(size: 16, quality: 90) } }
        var seen: [Int] = []
        while let (job, result) = pipeline.nextResult().result {
            #expect(submittedCount.value - seen.count <= 3 + 1, "the reader stays within the window")
            seen.append(job.number)
            if job.number % 3 == 0 { #expect((try? result.get()) != nil) } else { #expect((try? result.get()) == nil) }
        }
        reader.join()
        for worker in workers { worker.join() }
        #expect(seen == Array(0..<count))
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = ConditionLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}
