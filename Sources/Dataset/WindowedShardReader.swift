import Images
import TensorFiles

/// Reads one rank's samples from shards window by window, in file order, ahead of the decoding
/// threads (docs/data.md, "Shard windows").
///
/// With shard windows (`ShardWindows`) the samples a rank trains on during one window of an
/// epoch all lie in that window's few shards. A loader thread walks the rank's plan, collects the
/// samples of each window (a chunk), sorts them by shard and offset, and reads them in ranges
/// (`ShardReadPlan`): members close together in a shard come in one read, so a shard is read
/// front to back in a few large requests, which network file systems and object-store mounts
/// stream, instead of one small random read per sample. The bytes wait in memory until a
/// decoding thread asks for them (`readBytes`); a decoder that asks for a sample of a planned
/// chunk before its read waits for it. At most two chunks are held: the loader reads chunk
/// c + 1 once the decoders have started on chunk c, so memory is about two windows of this
/// rank's share of the shards (W shards x shard size / N each).
///
/// The cache changes where bytes come from, never which: a sample the loader has not read yet
/// (it lags, its range failed, or a shard is truncated) is read by the decoding thread itself
/// with one pread, as without windows, and damage is reported the same way.
public final class WindowedShardReader: SampleSource, @unchecked Sendable {
    public let shards: ShardSet
    private let planOptions: ShardReadPlan.Options
    private let lock = ConditionLock()
    /// Bytes read ahead, by sample index, with the chunk they were read for. A sample can be in
    /// two planned chunks (the end of one epoch and the start of the next), hence lists.
    private var loaded: [Int: [(chunk: Int, bytes: [UInt8])]] = [:]
    /// The chunks, in plan order, of every sample planned and not yet handed out.
    private var chunkOf: [Int: [Int]] = [:]
    /// The highest chunk a decoding thread has asked for a sample of.
    private var consumedChunk = -1
    private var stopped = false
    private var loader: NativeThread?
    /// Samples handed out from memory and read directly, range reads done and their bytes.
    private var counts = (fromMemory: 0, direct: 0, ranges: 0, rangeBytes: 0)

    public init(shards: ShardSet, plan: TrainingPlan, options: ShardReadPlan.Options = .init()) {
        self.shards = shards
        planOptions = options
        var chunks = WindowChunks(plan: plan)
        // The first chunk is known before any decoder asks, so its samples wait for their reads.
        let first = chunks.next()
        if let first { publish(first, chunk: 0) }
        let rest = chunks
        loader = NativeThread { [unowned self] in self.load(first: first, rest: rest) }
    }

    deinit { stop() }

    /// Ends the loader thread; later reads go straight to the shards.
    public func stop() {
        lock.withLock {
            stopped = true
            lock.broadcast()
        }
        loader?.join()
    }

    public var count: Int { shards.count }

    public func name(of index: Int) -> String { shards.name(of: index) }

    /// The sample's bytes from memory, waiting for the loader when its chunk is planned; else
    /// (or once stopped, or when its read failed) one pread of its own.
    public func readBytes(of index: Int) throws(ImageError) -> [UInt8] {
        let ready: [UInt8]? = lock.withLock {
            guard let chunk = chunkOf[index]?.first else {
                counts.direct += 1
                return nil
            }
            if chunk > consumedChunk {
                consumedChunk = chunk
                lock.broadcast()
            }
            func arrived() -> Int? { loaded[index]?.firstIndex { $0.chunk == chunk } }
            while !stopped && arrived() == nil && chunkOf[index]?.first == chunk { lock.wait() }
            if chunkOf[index]?.first == chunk { Self.removeFirst(chunk, of: index, from: &chunkOf) }
            guard let position = arrived() else {
                counts.direct += 1
                return nil
            }
            counts.fromMemory += 1
            let bytes = loaded[index]![position].bytes
            loaded[index]!.remove(at: position)
            if loaded[index]!.isEmpty { loaded.removeValue(forKey: index) }
            return bytes
        }
        if let ready { return ready }
        return try shards.readBytes(of: index)
    }

    /// Samples served from memory, samples read directly, range reads done and the bytes they read.
    public var statistics: (fromMemory: Int, direct: Int, ranges: Int, rangeBytes: Int) { lock.withLock { counts } }

    private func publish(_ samples: [Int], chunk: Int) {
        lock.withLock {
            for sample in samples { chunkOf[sample, default: []].append(chunk) }
        }
    }

    private static func removeFirst(_ chunk: Int, of sample: Int, from chunks: inout [Int: [Int]]) {
        guard let position = chunks[sample]?.firstIndex(of: chunk) else { return }
        chunks[sample]!.remove(at: position)
        if chunks[sample]!.isEmpty { chunks.removeValue(forKey: sample) }
    }

    /// The loader: reads chunk c once the decoders are at chunk c - 1. Chunk c + 1 is planned
    /// (published) while c is read, so a decoder that gets there first waits for its read.
    private func load(first: [Int]?, rest: WindowChunks) {
        var chunks = rest
        var current = first
        var chunk = 0
        var upcoming = chunks.next()
        if let upcoming { publish(upcoming, chunk: 1) }
        while let samples = current {
            guard read(samples, chunk: chunk) else { return }
            current = upcoming
            chunk += 1
            upcoming = chunks.next()
            if let upcoming { publish(upcoming, chunk: chunk + 1) }
        }
    }

    /// Reads chunk `chunk` once the decoders are at chunk - 1; false when stopped meanwhile.
    private func read(_ samples: [Int], chunk: Int) -> Bool {
        let go: Bool = lock.withLock {
            while !stopped && consumedChunk < chunk - 1 { lock.wait() }
            return !stopped
        }
        guard go else { return false }
        let members = samples.map { sample in
            let entry = shards.entries[sample]
            return ShardReadPlan.Member(sample: sample, shard: entry.shard, offset: entry.offset, size: entry.size)
        }
        for range in ShardReadPlan.ranges(members, options: planOptions) {
            let bytes = try? shards.readRange(shard: range.shard, offset: range.offset, count: range.size)
            let stop: Bool = lock.withLock {
                counts.ranges += 1
                counts.rangeBytes += range.size
                for member in range.members where chunkOf[member.sample]?.contains(chunk) == true {
                    if let bytes {
                        let start = member.offset - range.offset
                        loaded[member.sample, default: []].append((chunk, Array(bytes[start..<(start + member.size)])))
                    } else {
                        // A failed read (a truncated shard): the decoder reads the sample itself
                        // and reports it by name.
                        Self.removeFirst(chunk, of: member.sample, from: &chunkOf)
                    }
                }
                lock.broadcast()
                return stopped
            }
            if stop { return false }
        }
        return true
    }
}

/// A rank's plan cut into chunks: its samples in step order, a new chunk wherever the (epoch,
/// window) of the samples changes.
struct WindowChunks {
    let plan: TrainingPlan
    private var step = 0
    private var carried: [(sample: Int, key: [Int])] = []
    private var finished = false

    init(plan: TrainingPlan) { self.plan = plan }

    /// The next chunk's samples, nil after the last.
    mutating func next() -> [Int]? {
        while !finished {
            if let key = carried.first?.key, let change = carried.firstIndex(where: { $0.key != key }) {
                let chunk = carried[..<change].map(\.sample)
                carried.removeFirst(change)
                return chunk
            }
            guard let (planned, windows) = plan.stepWithWindows(step) else {
                finished = true
                break
            }
            step += 1
            carried += zip(planned.sampleIndices, windows).map { ($0.0, [planned.cursor.epoch, $0.1]) }
        }
        guard !carried.isEmpty else { return nil }
        defer { carried = [] }
        return carried.map(\.sample)
    }
}

/// How a chunk of samples is read: sorted by shard and offset, neighbours merged into one read
/// when the gap between them is at most `maximumGap` bytes and the read stays within
/// `maximumRead` bytes. A pure function, tested on its own.
public enum ShardReadPlan {
    public struct Options: Sendable, Equatable {
        public var maximumGap: Int
        public var maximumRead: Int

        public init(maximumGap: Int = 1 << 20, maximumRead: Int = 64 << 20) {
            self.maximumGap = maximumGap
            self.maximumRead = maximumRead
        }
    }

    /// One sample's bytes in a shard.
    public struct Member: Sendable, Equatable {
        public var sample: Int
        public var shard: String
        public var offset: Int
        public var size: Int

        public init(sample: Int, shard: String, offset: Int, size: Int) {
            self.sample = sample
            self.shard = shard
            self.offset = offset
            self.size = size
        }
    }

    /// One read: bytes offset..<offset+size of a shard, holding `members`.
    public struct Range: Sendable, Equatable {
        public var shard: String
        public var offset: Int
        public var size: Int
        public var members: [Member]
    }

    /// The reads for `members`, in shard-name and offset order.
    public static func ranges(_ members: [Member], options: Options = .init()) -> [Range] {
        let sorted = members.sorted { ($0.shard, $0.offset, $0.sample) < ($1.shard, $1.offset, $1.sample) }
        var ranges: [Range] = []
        for member in sorted {
            if var last = ranges.last, last.shard == member.shard {
                let end = last.offset + last.size
                let newEnd = max(end, member.offset + member.size)
                if member.offset - end <= options.maximumGap && newEnd - last.offset <= options.maximumRead {
                    last.size = newEnd - last.offset
                    last.members.append(member)
                    ranges[ranges.count - 1] = last
                    continue
                }
            }
            ranges.append(Range(shard: member.shard, offset: member.offset, size: member.size, members: [member]))
        }
        return ranges
    }
}
