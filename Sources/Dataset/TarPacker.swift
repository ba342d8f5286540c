#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Images
import TensorFiles

/// `scvae pack --input X.tar`: packs a tar of images (layout: TarLayout.swift) without extracting
/// it, into the same shards and index a folder pack writes (Shards.swift).
///
/// Two passes over the tar. The first reads only its headers, seeking past member data (for
/// ImageNet train: 1,000 headers): the class archives and the images without a class give the
/// class numbering (sorted names, as for a folder) and the progress totals, and the member list
/// identifies the tar for resumption (PackJournal.swift). The second streams it: one reader
/// thread reads headers and member data through a 1 MiB buffer (nested class archives are read in
/// place) and queues each image; `threads` worker threads decode, resize and re-encode
/// (`ShardPacker.packedJPEG`); the calling thread writes results in image order. At most
/// `4 * threads + 8` images are between the reader and the writer, so memory stays bounded, and
/// the shards do not depend on `threads`.
public enum TarPacker {
    public struct Settings: Sendable {
        public var size: Int
        public var quality: Int
        public var maximumShardBytes: Int
        public var threads: Int
        /// `--labels` (TarLayout.swift, `TarLabels`).
        public var labelsPath: String?
        /// Tests: stop with `.stopped` once this run has finished this many shards.
        var stopAfterShards: Int?

        public init(size: Int = 256, quality: Int = 90, maximumShardBytes: Int = 256 << 20, threads: Int = 1,
                    labelsPath: String? = nil) {
            self.size = size
            self.quality = quality
            self.maximumShardBytes = maximumShardBytes
            self.threads = threads
            self.labelsPath = labelsPath
        }
    }

    /// What a pack reports while it runs (on the calling thread).
    public enum Event {
        /// A member left out (not an image, a link...), with the reason.
        case skipped(member: String, reason: String)
        /// An image that did not decode (or is too large), left out.
        case failed(SampleFailure)
        /// About once a second, and at the end.
        case progress(TarPackProgress)
        /// A previous run's shards were verified and kept; reading continues at image `nextImage`.
        case resumed(shards: Int, nextImage: Int)
        /// The output folder already holds a finished pack; nothing was done.
        case alreadyComplete
    }

    /// Why a tar could not be packed.
    public enum Failure: Error, CustomStringConvertible {
        case tar(TarStreamError)
        case shards(ShardError)
        /// The labels file is unreadable or does not fit the tar.
        case labels(path: String, reason: String)
        /// The output folder holds the journal of a pack of another tar or with other settings.
        case journalMismatch(path: String, reason: String)
        /// The tar holds no images.
        case noImages(tar: String)
        /// Tests: stopped after the requested number of shards.
        case stopped(afterShards: Int)

        public var description: String {
            switch self {
            case .tar(let error): return error.description
            case .shards(let error): return error.description
            case let .labels(path, reason): return "\(path): bad labels file: \(reason)"
            case let .journalMismatch(path, reason):
                return "\(path): \(reason); to start over, remove the output folder or give another --out"
            case .noImages(let tar):
                return "\(tar) holds no .jpg, .jpeg or .png members (directly or in .tar members)"
            case .stopped(let count): return "stopped after \(count) shard(s) (test hook)"
            }
        }
    }

    public static func pack(tar path: String, to directory: String, settings: Settings,
                            onEvent: (Event) -> Void = { _ in }) throws(Failure) -> ShardSet {
        if FileSystem.fileSize(directory + "/" + ShardSet.indexName) != nil,
           FileSystem.fileSize(directory + "/" + PackJournal.fileName) == nil {
            onEvent(.alreadyComplete)
            do { return try ShardSet.open(directory) } catch { throw .shards(error) }
        }
        let listing: TarListing
        do { listing = try TarListing.read(path) } catch { throw .tar(error) }
        var labels: [String: String] = [:]
        var labelsDigest = "-"
        if let labelsPath = settings.labelsPath {
            let bytes: [UInt8]
            do { bytes = try BinaryFile.read(labelsPath) } catch { throw .labels(path: labelsPath, reason: error.description) }
            switch TarLabels.parse(String(decoding: bytes, as: UTF8.self), names: listing.unfiledImages) {
            case .success(let parsed): labels = parsed
            case .failure(let problem): throw .labels(path: labelsPath, reason: problem.reason)
            }
            labelsDigest = SHA256.hex(bytes)
        }
        let classes = TarLayout.sortedClasses(listing.classNames + labels.values)
        guard listing.imageCount > 0 || listing.classArchives > 0 else { throw .noImages(tar: path) }

        var journal = PackJournal(
            input: "\(listing.tarBytes) \(listing.digest)",
            settings: "size=\(settings.size) quality=\(settings.quality) shard-bytes=\(settings.maximumShardBytes) labels=\(labelsDigest)")
        do { try FileSystem.makeDirectories(directory) } catch {
            throw .shards(.cannotWrite(path: directory, reason: error.description))
        }
        let kept = try resumeState(directory: directory, journal: &journal, classes: classes)
        if !journal.shards.isEmpty {
            onEvent(.resumed(shards: journal.shards.count, nextImage: journal.shards.last!.resume.nextNumber))
        }
        let journalPath = directory + "/" + PackJournal.fileName
        func saveJournal() throws(Failure) {
            do { try BinaryFile.writeAtomically(Array(journal.text.utf8), to: journalPath) } catch {
                throw .shards(.cannotWrite(path: journalPath, reason: error.description))
            }
        }
        try saveJournal()

        let writer: ShardWriter
        do {
            writer = try ShardWriter(directory: directory, maximumShardBytes: settings.maximumShardBytes,
                                     finishedShards: journal.shards.count, entries: kept)
        } catch { throw .shards(error) }
        let start = journal.shards.last?.resume ?? .start
        var lastWritten = start
        var shardsThisRun = 0
        writer.onShardFinished = { name, bytes throws(ShardError) in
            journal.shards.append(PackJournal.Shard(name: name, bytes: bytes.count, checksum: fnv1a64(bytes), resume: lastWritten))
            do { try BinaryFile.writeAtomically(Array(journal.text.utf8), to: journalPath) } catch {
                throw .cannotWrite(path: journalPath, reason: "\(error)")
            }
            shardsThisRun += 1
        }

        let pipeline = PackPipeline(window: 4 * max(1, settings.threads) + 8)
        let reader = TarImageReader(path: path, labels: labels, pipeline: pipeline)
        let readerThread = NativeThread { reader.run(from: start) }
        let decodeSettings = (size: settings.size, quality: settings.quality)
        let workers = (0..<max(1, settings.threads)).map { _ in
            NativeThread { pipeline.work(size: decodeSettings.size, quality: decodeSettings.quality) }
        }
        func stop() {
            pipeline.cancel()
            readerThread.join()
            for worker in workers { worker.join() }
        }

        let classNumbers = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let began = ContinuousClock.now
        var lastReport = began
        func progress(images: Int, bytesRead: Int, classesDone: Int) -> TarPackProgress {
            let elapsed = began.duration(to: .now)
            return TarPackProgress(images: images, classesDone: classesDone, classesTotal: listing.classArchives,
                                   bytesRead: bytesRead, bytesTotal: listing.tarBytes,
                                   seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18,
                                   imagesThisRun: images - start.nextNumber, bytesThisRun: bytesRead - start.outer)
        }
        var fingerprint = SHA256(savedState: start.fingerprint)!
        do throws(Failure) {
            while true {
                let next = pipeline.nextResult()
                for note in next.notes { onEvent(.skipped(member: note.member, reason: note.reason)) }
                guard let (job, result) = next.result else {
                    if let error = next.readerError { throw .tar(error) }
                    guard let state = next.finalFingerprint, let hasher = SHA256(savedState: state) else {
                        throw .tar(.readFailed(path: path, reason: "the reader stopped before the end"))
                    }
                    fingerprint = hasher
                    break
                }
                switch result {
                case .success(let jpeg):
                    let className = TarLayout.className(ofPath: job.path)
                    do {
                        try writer.add(key: ShardPacker.key(index: job.number, path: job.path), jpeg: jpeg,
                                       classIndex: className.flatMap { classNumbers[$0] }, className: className)
                    } catch { throw .shards(error) }
                case .failure(let error):
                    onEvent(.failed(SampleFailure(sampleIndex: job.number, path: job.shownPath, error: error)))
                }
                lastWritten = job.resume
                if let limit = settings.stopAfterShards, shardsThisRun >= limit { throw .stopped(afterShards: shardsThisRun) }
                let now = ContinuousClock.now
                if lastReport.duration(to: now) >= .seconds(1) {
                    lastReport = now
                    onEvent(.progress(progress(images: job.number + 1, bytesRead: next.bytesRead, classesDone: job.resume.classesDone)))
                }
            }
        } catch {
            stop()
            throw error
        }
        stop()
        let finalNumber = lastWritten.nextNumber
        guard finalNumber > 0 else { throw .noImages(tar: path) }
        let set: ShardSet
        do {
            set = try writer.finish(sourceFingerprint: SHA256.hexString(fingerprint.finalize()), size: settings.size)
        } catch { throw .shards(error) }
        try? FileSystem.removeTree(journalPath)
        onEvent(.progress(progress(images: finalNumber, bytesRead: listing.tarBytes, classesDone: listing.classArchives)))
        return set
    }

    /// Checks a previous run's journal against this one (updating `journal` to the shards kept),
    /// removes shard files it does not vouch for, and returns the samples of the kept shards.
    private static func resumeState(directory: String, journal: inout PackJournal,
                                    classes: [String]) throws(Failure) -> [ShardEntry] {
        let path = directory + "/" + PackJournal.fileName
        var kept: [ShardEntry] = []
        if let bytes = try? BinaryFile.read(path) {
            let previous: PackJournal
            switch PackJournal.parse(String(decoding: bytes, as: UTF8.self)) {
            case .success(let parsed): previous = parsed
            case .failure(let problem): throw .journalMismatch(path: path, reason: problem.reason)
            }
            guard previous.input == journal.input else {
                throw .journalMismatch(path: path, reason: "it is the journal of a pack of another tar (or the tar changed)")
            }
            guard previous.settings == journal.settings else {
                throw .journalMismatch(path: path, reason: "it was written with other settings (\(previous.settings), now \(journal.settings))")
            }
            for shard in previous.shards {
                guard let data = try? BinaryFile.read(directory + "/" + shard.name), data.count == shard.bytes,
                      fnv1a64(data) == shard.checksum,
                      let entries = ShardEntry.recovered(fromShard: shard.name, bytes: data, classes: classes) else { break }
                kept += entries
                journal.shards.append(shard)
            }
        }
        // Shards beyond the journal's (finished after its last update) and temporary files of
        // an interrupted write are written again.
        let keptNames = Set(journal.shards.map(\.name))
        for name in FileSystem.entries(of: directory) ?? [] where !keptNames.contains(name)
            && ((name.hasPrefix("shard-") && (name.hasSuffix(".tar") || name.contains(".tar.tmp-")))
                || name.hasPrefix(PackJournal.fileName + ".tmp-") || name.hasPrefix(ShardSet.indexName + ".tmp-")) {
            try? FileSystem.removeTree(directory + "/" + name)
        }
        return kept
    }
}

/// The progress line of a tar pack (pure formatting).
public struct TarPackProgress: Equatable, Sendable {
    /// Images done (packed or failed), counting those of a run this one resumed.
    public var images: Int
    public var classesDone: Int
    /// Class archives in the tar (0 for a tar without).
    public var classesTotal: Int
    public var bytesRead: Int
    public var bytesTotal: Int
    /// Since this run started.
    public var seconds: Double
    public var imagesThisRun: Int
    public var bytesThisRun: Int

    /// "images 12,800 | classes 10/1000 | 850 images/s | 1,432/140,000 MiB | ETA 2h 45m".
    public var line: String {
        let rate = seconds > 0 ? Double(imagesThisRun) / seconds : 0
        var parts = ["images \(images)"]
        if classesTotal > 0 { parts.append("classes \(classesDone)/\(classesTotal)") }
        parts.append("\(Int(rate.rounded())) images/s")
        parts.append("\(bytesRead >> 20)/\(bytesTotal >> 20) MiB read")
        if bytesThisRun > 0 && seconds > 0 {
            let left = Double(max(0, bytesTotal - bytesRead)) / (Double(bytesThisRun) / seconds)
            parts.append("ETA " + Self.duration(left))
        }
        return parts.joined(separator: " | ")
    }

    /// "45s", "3m 05s", "2h 07m".
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m \(two(total % 60))s" }
        return "\(total / 3600)h \(two(total / 60 % 60))m"
    }
}

/// The first pass: the tar's members without their data.
struct TarListing {
    var tarBytes = 0
    /// Class archives seen.
    var classArchives = 0
    /// Classes named by class archives and by the folders of images directly in the tar.
    var classNames: [String] = []
    /// Paths of the images directly in the tar without a folder (what `--labels` labels).
    var unfiledImages: [String] = []
    var imageCount = 0
    /// SHA-256 of "<offset>\t<name>\t<kind>\t<size>\n" per member.
    var digest = ""
    private var hasher = SHA256()

    mutating func add(_ entry: TarEntry) {
        hasher.update("\(entry.headerOffset)\t\(entry.shownName)\t\(entry.kind)\t\(entry.size)\n")
        switch TarLayout.role(of: entry) {
        case .classArchive(let name):
            classArchives += 1
            classNames.append(name)
        case .image(let path):
            imageCount += 1
            if let name = TarLayout.className(ofPath: path) { classNames.append(name) } else { unfiledImages.append(path) }
        case .skipped, .ignored:
            break
        }
    }

    static func read(_ path: String) throws(TarStreamError) -> TarListing {
        let file = try BufferedFileReader(path: path, bufferBytes: 64 << 10)
        let reader = TarReader(archive: path, stream: file)
        var listing = TarListing()
        listing.tarBytes = file.size
        while let entry = try reader.next() { listing.add(entry) }
        listing.digest = SHA256.hexString(listing.hasher.finalize())
        return listing
    }
}
