#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Packed datasets: pre-resized JPEGs in tar shards, because a million small files are slow on
/// real storage. The shards follow WebDataset's conventions, so its loaders read them too: a
/// sample is the members sharing a key, `<key>.jpg` (the image) and `<key>.cls` (the class index
/// in decimal, when the source has classes). Keys are `<8-digit sample index>_<file name without
/// extension>`, with dots replaced by underscores (WebDataset splits keys at the first dot).
///
/// A shard directory holds `shard-NNNNNN.tar` files, each renamed into place when complete, and
/// `index.txt`, written last, which makes the directory complete:
///
///     scvae-shards 1
///     source-fingerprint <fingerprint of the source DatasetIndex>
///     size <S>
///     count <n>
///     <shard file>\t<data offset>\t<bytes>\t<member name>\t<class name, or - >   (n lines)

/// Why shards could not be written or read.
public enum ShardError: Error, Equatable, CustomStringConvertible {
    /// A shard, the index or the directory could not be written.
    case cannotWrite(path: String, reason: String)
    /// The index file is missing or unreadable.
    case unreadable(path: String, reason: String)
    /// The index file is not in the documented format.
    case malformedIndex(path: String, reason: String)
    /// A shard does not hold what the index says.
    case badShard(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotWrite(let path, let reason): return "\(path): cannot write: \(reason)"
        case .unreadable(let path, let reason): return "\(path): cannot read: \(reason)"
        case .malformedIndex(let path, let reason): return "\(path): malformed shard index: \(reason)"
        case .badShard(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// One image in a shard set.
public struct ShardEntry: Equatable, Sendable {
    public let shard: String
    public let offset: Int
    public let size: Int
    public let member: String
    public let className: String?
}

/// Writes samples into size-limited tar shards and the index.
public final class ShardWriter {
    public let directory: String
    public let maximumShardBytes: Int
    private var entries: [ShardEntry] = []
    private var shardNumber = 0
    private var current: [UInt8] = []

    public init(directory: String, maximumShardBytes: Int = 256 << 20) throws(ShardError) {
        self.directory = directory
        self.maximumShardBytes = maximumShardBytes
        do {
            try DatasetIndexCache.makeDirectories(directory)
        } catch {
            throw .cannotWrite(path: directory, reason: error.description)
        }
    }

    var currentShardName: String {
        let digits = String(shardNumber)
        return "shard-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".tar"
    }

    /// Adds one sample: its JPEG and, if known, its class.
    public func add(key: String, jpeg: [UInt8], classIndex: Int?, className: String?) throws(ShardError) {
        var members: [(String, [UInt8])] = [(key + ".jpg", jpeg)]
        if let classIndex { members.append((key + ".cls", Array(String(classIndex).utf8))) }
        let needed = members.reduce(0) { $0 + Tar.block + $1.1.count + Tar.padding($1.1.count) }
        if !current.isEmpty && current.count + needed > maximumShardBytes { try closeShard() }
        for (name, data) in members {
            let header: [UInt8]
            do {
                header = try Tar.header(name: name, size: data.count)
            } catch {
                throw .cannotWrite(path: directory + "/" + currentShardName, reason: "member name too long: \(name)")
            }
            current += header
            if name.hasSuffix(".jpg") {
                entries.append(ShardEntry(shard: currentShardName, offset: current.count, size: data.count,
                                          member: name, className: className))
            }
            current += data
            current += [UInt8](repeating: 0, count: Tar.padding(data.count))
        }
    }

    private func closeShard() throws(ShardError) {
        let path = directory + "/" + currentShardName
        do {
            try BinaryFile.writeAtomically(current + Tar.end, to: path)
        } catch {
            throw .cannotWrite(path: path, reason: error.description)
        }
        current = []
        shardNumber += 1
    }

    /// Closes the last shard and writes the index; returns the finished set.
    public func finish(sourceFingerprint: String, size: Int) throws(ShardError) -> ShardSet {
        if !current.isEmpty { try closeShard() }
        let set = ShardSet(directory: directory, entries: entries, sourceFingerprint: sourceFingerprint, size: size)
        let path = directory + "/index.txt"
        do {
            try BinaryFile.writeAtomically(Array(set.indexText().utf8), to: path)
        } catch {
            throw .cannotWrite(path: path, reason: error.description)
        }
        return set
    }
}

/// A complete shard directory, read through its index.
public struct ShardSet: SampleSource, Equatable {
    public let directory: String
    public let entries: [ShardEntry]
    /// Fingerprint of the folder the shards were packed from.
    public let sourceFingerprint: String
    /// Shorter side of the packed images.
    public let size: Int

    static let header = "scvae-shards 1"

    public var count: Int { entries.count }

    public func name(of index: Int) -> String {
        directory + "/" + entries[index].shard + ":" + entries[index].member
    }

    /// Reads one image's bytes from its shard.
    public func readBytes(of index: Int) throws(ImageError) -> [UInt8] {
        let entry = entries[index]
        let path = directory + "/" + entry.shard
        let descriptor = systemOpen(path, O_RDONLY)
        guard descriptor >= 0 else { throw .unreadable(file: name(of: index), reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: entry.size)
        var filled = 0
        while filled < entry.size {
            let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + filled, entry.size - filled, off_t(entry.offset + filled)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw .truncated(file: name(of: index), reason: "shard ends inside the member") }
            filled += count
        }
        return bytes
    }

    /// Opens a shard directory by its index file.
    public static func open(_ directory: String) throws(ShardError) -> ShardSet {
        let path = directory + "/index.txt"
        let bytes: [UInt8]
        do {
            bytes = try BinaryFile.read(path)
        } catch {
            throw .unreadable(path: path, reason: error.description)
        }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard lines.count >= 4, lines[0] == header, lines[1].hasPrefix("source-fingerprint "), lines[2].hasPrefix("size "),
              lines[3].hasPrefix("count "), let size = Int(lines[2].dropFirst(5)), let count = Int(lines[3].dropFirst(6)),
              count == lines.count - 4 else {
            throw .malformedIndex(path: path, reason: "bad preamble")
        }
        var entries: [ShardEntry] = []
        var shardSizes: [Substring: Int] = [:]
        for line in lines.dropFirst(4) {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 5, let offset = Int(fields[1]), let length = Int(fields[2]), offset >= 0, length >= 0,
                  !fields[0].contains("/") else {
                throw .malformedIndex(path: path, reason: "bad entry line '\(line)'")
            }
            // A corrupt index must not make a reader allocate or seek past its shard.
            if shardSizes[fields[0]] == nil {
                var status = stat()
                guard stat(directory + "/" + fields[0], &status) == 0 else {
                    throw .malformedIndex(path: path, reason: "shard '\(fields[0])' is missing")
                }
                shardSizes[fields[0]] = Int(status.st_size)
            }
            let (end, overflow) = offset.addingReportingOverflow(length)
            guard !overflow, end <= shardSizes[fields[0]]! else {
                throw .malformedIndex(path: path, reason: "entry '\(fields[3])' lies outside shard '\(fields[0])'")
            }
            entries.append(ShardEntry(shard: String(fields[0]), offset: offset, size: length, member: String(fields[3]),
                                      className: fields[4] == "-" ? nil : String(fields[4])))
        }
        return ShardSet(directory: directory, entries: entries,
                        sourceFingerprint: String(lines[1].dropFirst(19)), size: size)
    }

    /// Reads every shard sequentially and checks that its tar structure holds the indexed members.
    public func verify() throws(ShardError) {
        var byShard: [String: [ShardEntry]] = [:]
        for entry in entries { byShard[entry.shard, default: []].append(entry) }
        for (shard, expected) in byShard.sorted(by: { $0.key < $1.key }) {
            let path = directory + "/" + shard
            let members: [Tar.Member]
            do {
                members = try Tar.members(try BinaryFile.read(path))
            } catch let error as FileError {
                throw .unreadable(path: path, reason: error.description)
            } catch {
                throw .badShard(path: path, reason: "invalid tar: \(error)")
            }
            let images = members.filter { $0.name.hasSuffix(".jpg") }
            guard images.map({ Tar.Member(name: $0.name, dataOffset: $0.dataOffset, size: $0.size) })
                    == expected.map({ Tar.Member(name: $0.member, dataOffset: $0.offset, size: $0.size) }) else {
                throw .badShard(path: path, reason: "members differ from index.txt")
            }
        }
    }

    func indexText() -> String {
        var out = "\(ShardSet.header)\nsource-fingerprint \(sourceFingerprint)\nsize \(size)\ncount \(entries.count)\n"
        for entry in entries {
            out += "\(entry.shard)\t\(entry.offset)\t\(entry.size)\t\(entry.member)\t\(entry.className ?? "-")\n"
        }
        return out
    }
}

/// `scvae pack`: resizes every image of a folder so its shorter side is S (aspect kept, so random
/// crops remain possible), re-encodes it as JPEG and writes shards.
public enum ShardPacker {
    public static func pack(_ index: DatasetIndex, to directory: String, size: Int, quality: Int = 90,
                            maximumShardBytes: Int = 256 << 20,
                            onFailure: (SampleFailure) -> Void = { _ in }) throws(ShardError) -> ShardSet {
        let writer = try ShardWriter(directory: directory, maximumShardBytes: maximumShardBytes)
        let classes = index.classNames
        let classNumbers = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let decoder = ImageDecoder()
        for i in 0..<index.count {
            let sample = index.samples[i]
            let jpeg: [UInt8]
            do {
                let image = try decoder.decode(try index.readBytes(of: i), file: index.path(of: i), shorterSideAtLeast: size)
                let target = sizeWithShorterSide(width: image.width, height: image.height, shorterSide: size)
                jpeg = try encodeJPEG(resize(image, width: target.width, height: target.height), quality: quality)
            } catch {
                onFailure(SampleFailure(sampleIndex: i, path: index.path(of: i), error: error))
                continue
            }
            try writer.add(key: key(index: i, path: sample.path), jpeg: jpeg,
                           classIndex: sample.className.flatMap { classNumbers[$0] }, className: sample.className)
        }
        return try writer.finish(sourceFingerprint: index.fingerprint, size: size)
    }

    /// `<8-digit index>_<file name without extension, dots as underscores>`.
    static func key(index: Int, path: String) -> String {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        let stem = file.lastIndex(of: ".").map { String(file[..<$0]) } ?? file
        let digits = String(index)
        let number = String(repeating: "0", count: max(0, 8 - digits.count)) + digits
        let safe = String(stem.map { $0 == "." ? "_" : $0 }.prefix(80))
        return number + "_" + safe
    }
}

/// POSIX open(2), which `ShardSet.open` shadows inside the type.
private func systemOpen(_ path: String, _ flags: Int32) -> Int32 {
    open(path, flags)
}
