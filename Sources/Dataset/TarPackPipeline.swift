import Images
import TensorFiles

// The second pass of `TarPacker`: a reader thread streams the tar's images into a bounded queue,
// worker threads turn them into shard JPEGs, and the writer takes the results in image order.

/// An image read from the tar, on its way to a shard.
struct PackJob: Sendable {
    let number: Int
    /// Its path in the equivalent folder.
    let path: String
    /// Where it is, for messages: `train.tar:n01440764.tar:n01440764_10026.JPEG`.
    let shownPath: String
    /// The bytes, or why there are none to decode.
    let bytes: Result<[UInt8], ImageError>
    /// Where reading continues after it.
    let resume: TarResumePoint
}

/// The queue between the reader, the workers and the writer.
final class PackPipeline: @unchecked Sendable {
    struct Note: Sendable {
        let member: String
        let reason: String
    }

    /// What the writer gets: the next result in order, or the end (with the reader's error, or
    /// the final fingerprint state), and the notes and bytes read so far.
    struct Next {
        var result: (PackJob, Result<[UInt8], ImageError>)?
        var readerError: TarStreamError?
        var finalFingerprint: String?
        var notes: [Note]
        var bytesRead: Int
    }

    private let lock = ConditionLock()
    private let window: Int
    private var pending: [PackJob] = []
    private var pendingHead = 0
    /// Jobs taken by workers; the k-th job submitted is taken k-th and is result k.
    private var taken = 0
    private var results: [Int: (PackJob, Result<[UInt8], ImageError>)] = [:]
    private var submitted = 0
    private var written = 0
    private var readerFinished = false
    private var readerError: TarStreamError?
    private var finalFingerprint: String?
    private var cancelled = false
    private var notes: [Note] = []
    private var bytesRead = 0

    init(window: Int) { self.window = window }

    /// Reader: queues a job, waiting while `window` are on their way; false once cancelled.
    func submit(_ job: PackJob, bytesRead: Int) -> Bool {
        lock.withLock {
            while !cancelled && submitted - written >= window { lock.wait() }
            guard !cancelled else { return false }
            pending.append(job)
            submitted += 1
            self.bytesRead = bytesRead
            lock.broadcast()
            return true
        }
    }

    func note(member: String, reason: String) {
        lock.withLock { notes.append(Note(member: member, reason: reason)) }
    }

    var isCancelled: Bool { lock.withLock { cancelled } }

    /// Reader: no more jobs.
    func finish(error: TarStreamError?, fingerprint: String?) {
        lock.withLock {
            readerFinished = true
            readerError = error
            finalFingerprint = fingerprint
            lock.broadcast()
        }
    }

    func cancel() {
        lock.withLock {
            cancelled = true
            lock.broadcast()
        }
    }

    /// A worker thread: decodes, resizes and encodes jobs until there are none.
    func work(size: Int, quality: Int) {
        let decoder = ImageDecoder()
        while let (sequence, job) = takeJob() {
            let result: Result<[UInt8], ImageError>
            switch job.bytes {
            case .success(let bytes):
                do {
                    result = .success(try ShardPacker.packedJPEG(bytes, file: job.shownPath, size: size, quality: quality, decoder: decoder))
                } catch {
                    result = .failure(error)
                }
            case .failure(let error):
                result = .failure(error)
            }
            lock.withLock {
                results[sequence] = (job, result)
                lock.broadcast()
            }
        }
    }

    private func takeJob() -> (Int, PackJob)? {
        lock.withLock {
            while !cancelled && pendingHead == pending.count && !readerFinished { lock.wait() }
            guard !cancelled, pendingHead < pending.count else { return nil }
            let job = pending[pendingHead]
            pendingHead += 1
            taken += 1
            if pendingHead >= 1024 {  // drop the jobs taken so far
                pending.removeFirst(pendingHead)
                pendingHead = 0
            }
            return (taken - 1, job)
        }
    }

    /// Writer: waits for the next result in order (or the end).
    func nextResult() -> Next {
        lock.withLock {
            while results[written] == nil && !(readerFinished && written == submitted) && readerError == nil && !cancelled {
                lock.wait()
            }
            let taken = notes
            notes = []
            var next = Next(result: nil, readerError: nil, finalFingerprint: nil, notes: taken, bytesRead: bytesRead)
            if let result = results.removeValue(forKey: written) {
                next.result = result
                written += 1
                lock.broadcast()
            } else if let readerError {
                next.readerError = readerError
            } else {
                next.finalFingerprint = finalFingerprint
            }
            return next
        }
    }
}

/// The second pass's reader: streams the tar's images into the pipeline (on its own thread).
final class TarImageReader: @unchecked Sendable {
    let path: String
    let labels: [String: String]
    let pipeline: PackPipeline

    init(path: String, labels: [String: String], pipeline: PackPipeline) {
        self.path = path
        self.labels = labels
        self.pipeline = pipeline
    }

    func run(from start: TarResumePoint) {
        do {
            let fingerprint = try read(from: start)
            pipeline.finish(error: nil, fingerprint: fingerprint)
        } catch {
            pipeline.finish(error: error, fingerprint: nil)
        }
    }

    /// Reads from `start` to the end; returns the fingerprint hasher's final state (nil when
    /// cancelled).
    private func read(from start: TarResumePoint) throws(TarStreamError) -> String? {
        let file = try BufferedFileReader(path: path)
        try file.seek(to: start.outer)
        let outer = TarReader(archive: path, stream: file, offset: start.outer)
        var state = start
        var hasher = SHA256(savedState: start.fingerprint)!
        var innerStart = start.inner

        /// Hashes and queues one image member of `reader`; false when cancelled.
        /// `resume` says where reading continues after the member, as (outer, inner) offsets.
        func take(_ entry: TarEntry, path imagePath: String, from reader: TarReader,
                  resume: (TarReader) -> (outer: Int, inner: Int?)) throws(TarStreamError) -> Bool {
            var finalPath = imagePath
            if TarLayout.className(ofPath: imagePath) == nil, let label = labels[imagePath] { finalPath = label + "/" + imagePath }
            hasher.update(finalPath)
            hasher.update("\t\(entry.size)\n")
            let shown = reader.archive + ":" + entry.shownName
            let bytes: Result<[UInt8], ImageError>
            if entry.size > TarLayout.maximumImageBytes {
                bytes = .failure(.unreadable(file: shown, reason: "\(entry.size) bytes, more than the \(TarLayout.maximumImageBytes >> 20) MiB an image member may have"))
            } else {
                bytes = .success(try reader.readMember(name: entry.shownName))
            }
            state.nextNumber += 1
            state.fingerprint = hasher.savedState
            let point = resume(reader)
            state.outer = point.outer
            state.inner = point.inner
            let job = PackJob(number: state.nextNumber - 1, path: finalPath, shownPath: shown, bytes: bytes, resume: state)
            return pipeline.submit(job, bytesRead: file.position)
        }

        while let entry = try outer.next() {
            let role = TarLayout.role(of: entry)
            if innerStart != nil {
                guard case .classArchive = role else {
                    throw .badHeader(archive: path, offset: entry.headerOffset,
                                     reason: "the pack being resumed stopped inside a class archive here, but this member is none")
                }
            }
            switch role {
            case .classArchive(let className):
                let archiveName = path + ":" + entry.shownName
                let stream = outer.memberStream(name: entry.shownName)
                var innerOffset = 0
                if let skip = innerStart {
                    guard try stream.skip(skip) == skip else {
                        throw .truncated(archive: archiveName, offset: 0, reason: "it is shorter than the pack being resumed says")
                    }
                    innerOffset = skip
                    innerStart = nil
                }
                let inner = TarReader(archive: archiveName, stream: stream, offset: innerOffset)
                let header = entry.headerOffset
                while let member = try inner.next() {
                    switch TarLayout.role(of: member, inClass: className) {
                    case .image(let imagePath):
                        guard try take(member, path: imagePath, from: inner, resume: { (header, $0.nextHeaderOffset) }) else { return nil }
                    case .skipped(let reason):
                        pipeline.note(member: archiveName + ":" + member.shownName, reason: reason)
                    case .classArchive, .ignored:
                        break
                    }
                }
                state.classesDone += 1
            case .image(let imagePath):
                guard try take(entry, path: imagePath, from: outer, resume: { ($0.nextHeaderOffset, nil) }) else { return nil }
            case .skipped(let reason):
                pipeline.note(member: path + ":" + entry.shownName, reason: reason)
            case .ignored:
                break
            }
            if pipeline.isCancelled { return nil }
        }
        return hasher.savedState
    }
}
