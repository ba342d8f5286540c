#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Images
import TensorFiles

/// A complete shard directory (format: Shards.swift), read through its `index.txt`. Samples are
/// numbered in index order, which is the order of the folder they were packed from.
///
/// How training reads it. Every epoch visits the samples in a seeded permutation (`Sampler`),
/// and that exact order is what makes a run independent of the number of workers and lets it
/// resume bit-identically (docs/decisions.md, "A fixed global batch"). By default the permutation
/// covers the whole set, so a sample is read where the index says it is: one pread(2) of the
/// member's bytes at its data offset, through descriptors that all reading threads share
/// (`ShardFiles`). With `--shard-window W` the permutation keeps windows of W shards together
/// (`ShardWindows`), still the same for any number of workers, and `WindowedShardReader` reads a
/// rank's samples of each window in file order, in a few large reads (docs/data.md, "Shard
/// windows").
///
/// Damage. Opening checks that the index is well formed: data offsets on 512-byte blocks after a
/// header (where a tar member's data starts), members of a shard in increasing order without
/// overlap, no overflow, every named shard present. A shard shorter than its index says (an
/// interrupted copy) is accepted: the members it still holds read normally, the others fail with
/// `ImageError.truncated` when read, and the prefetcher skips, counts and names them
/// (`<shard path>:<member>`), as it does a truncated file of a folder. A member whose bytes do
/// not decode is skipped by the decoder in the same way.
///
/// Fingerprint: SHA-256, in lowercase hex, of the bytes of `index.txt` followed by one line
/// "<shard file>\t<size in bytes>\n" per shard the index names, in byte order of the names. It
/// depends on the content, not on where the directory is mounted, so every node holding the same
/// shards agrees; a repack at another size or quality, or a shard truncated on one node, changes
/// it (as a changed file size changes a folder's). From a shell:
///
///     cd DIR && { cat index.txt; tail -n +5 index.txt | cut -f1 | LC_ALL=C sort -u |
///         xargs stat --printf '%n\t%s\n'; } | sha256sum
public struct ShardSet: SampleSource, Equatable {
    /// The directory as it was opened.
    public let directory: String
    /// Samples in index order.
    public let entries: [ShardEntry]
    /// Fingerprint of the folder the shards were packed from.
    public let sourceFingerprint: String
    /// Shorter side of the packed images.
    public let size: Int
    /// Bytes of each shard file named by the index, when the set was opened.
    public let shardSizes: [String: Int]
    /// See the type's documentation.
    public let fingerprint: String
    private let files: ShardFiles

    static let header = "scvae-shards 1"
    static let indexName = "index.txt"

    public var count: Int { entries.count }

    /// The shards whose files end before the members the index places in them.
    public var truncatedShards: [String] {
        var truncated: [String] = []
        for entry in entries where entry.offset + entry.size > shardSizes[entry.shard] ?? 0 {
            if truncated.last != entry.shard { truncated.append(entry.shard) }
        }
        return truncated
    }

    public func name(of index: Int) -> String {
        directory + "/" + entries[index].shard + ":" + entries[index].member
    }

    /// The bytes of image `index`, read at its offset in its shard.
    public func readBytes(of index: Int) throws(ImageError) -> [UInt8] {
        let entry = entries[index]
        return try files.read(shard: entry.shard, offset: entry.offset, count: entry.size, name: name(of: index))
    }

    /// Asks the kernel to drop the shards' pages from its cache (posix_fadvise DONTNEED), so
    /// that the next reads come from the storage: a cold read for benchmarks, without privileges.
    public func dropFromPageCache() {
        #if os(Linux)
        for shard in shardSizes.keys {
            let descriptor = Glibc.open(directory + "/" + shard, O_RDONLY)
            guard descriptor >= 0 else { continue }
            fdatasync(descriptor)
            _ = posix_fadvise(descriptor, 0, 0, Int32(POSIX_FADV_DONTNEED))
            close(descriptor)
        }
        #endif
    }

    /// `count` bytes at `offset` of shard file `shard` in one read (`WindowedShardReader`'s ranges).
    func readRange(shard: String, offset: Int, count: Int) throws(ImageError) -> [UInt8] {
        try files.read(shard: shard, offset: offset, count: count, name: directory + "/" + shard)
    }

    public static func == (a: ShardSet, b: ShardSet) -> Bool {
        a.directory == b.directory && a.entries == b.entries && a.sourceFingerprint == b.sourceFingerprint
            && a.size == b.size && a.shardSizes == b.shardSizes && a.fingerprint == b.fingerprint
    }

    /// Whether `directory` holds a shard index (its first line starts with "scvae-shards"), which
    /// is how a shard directory is told from an image folder.
    public static func isShardDirectory(_ directory: String) -> Bool {
        let descriptor = openForReading(directory + "/" + indexName)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let magic = Array("scvae-shards".utf8)
        var start = [UInt8](repeating: 0, count: magic.count)
        let got = start.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, magic.count) }
        return got == magic.count && start == magic
    }

    /// Opens a shard directory by its index file.
    public static func open(_ directory: String) throws(ShardError) -> ShardSet {
        let path = directory + "/" + indexName
        let bytes: [UInt8]
        do {
            bytes = try BinaryFile.read(path)
        } catch {
            throw .unreadable(path: path, reason: error.description)
        }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        if let first = lines.first, first.hasPrefix("scvae-shards "), first != header {
            throw .malformedIndex(path: path, reason: "format '\(first)' is not the '\(header)' this build reads")
        }
        guard lines.count >= 4, lines[0] == header, lines[1].hasPrefix("source-fingerprint "), lines[2].hasPrefix("size "),
              lines[3].hasPrefix("count "), let size = Int(lines[2].dropFirst(5)), let count = Int(lines[3].dropFirst(6)),
              count == lines.count - 4 else {
            throw .malformedIndex(path: path, reason: "bad preamble")
        }
        var entries: [ShardEntry] = []
        entries.reserveCapacity(count)
        var shardSizes: [String: Int] = [:]
        var endOfPrevious: [String: Int] = [:]  // per shard, where the last member's data ended
        for line in lines.dropFirst(4) {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 5, let offset = Int(fields[1]), let length = Int(fields[2]), length >= 0,
                  !fields[0].isEmpty, !fields[0].contains("/") else {
                throw .malformedIndex(path: path, reason: "bad entry line '\(line)'")
            }
            let shard = String(fields[0]), member = String(fields[3])
            // A tar member's data starts on a block boundary, after at least its own header.
            let (end, overflow) = offset.addingReportingOverflow(length)
            guard offset >= Tar.block, offset % Tar.block == 0, !overflow,
                  offset - Tar.block >= endOfPrevious[shard, default: 0] else {
                throw .malformedIndex(path: path, reason: "entry '\(member)' has offset \(offset), which no tar member of '\(shard)' can have")
            }
            endOfPrevious[shard] = end
            if shardSizes[shard] == nil {
                var status = stat()
                guard stat(directory + "/" + shard, &status) == 0 else {
                    throw .malformedIndex(path: path, reason: "shard '\(shard)' is missing")
                }
                guard (status.st_mode & S_IFMT) == S_IFREG else {
                    throw .malformedIndex(path: path, reason: "shard '\(shard)' is not a regular file")
                }
                shardSizes[shard] = Int(status.st_size)
            }
            entries.append(ShardEntry(shard: shard, offset: offset, size: length, member: member,
                                      className: fields[4] == "-" ? nil : String(fields[4])))
        }
        return ShardSet(directory: directory, entries: entries, sourceFingerprint: String(lines[1].dropFirst(19)),
                        size: size, shardSizes: shardSizes, fingerprint: fingerprint(index: bytes, shardSizes: shardSizes))
    }

    private init(directory: String, entries: [ShardEntry], sourceFingerprint: String, size: Int,
                 shardSizes: [String: Int], fingerprint: String) {
        self.directory = directory
        self.entries = entries
        self.sourceFingerprint = sourceFingerprint
        self.size = size
        self.shardSizes = shardSizes
        self.fingerprint = fingerprint
        self.files = ShardFiles(directory: directory)
    }

    /// The documented fingerprint of an index file's bytes and the sizes of its shards.
    static func fingerprint(index: [UInt8], shardSizes: [String: Int]) -> String {
        var hasher = SHA256()
        hasher.update(index)
        for shard in shardSizes.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            hasher.update("\(shard)\t\(shardSizes[shard]!)\n")
        }
        return SHA256.hexString(hasher.finalize())
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

    /// The text of `index.txt` for these entries.
    static func indexText(entries: [ShardEntry], sourceFingerprint: String, size: Int) -> String {
        var out = "\(header)\nsource-fingerprint \(sourceFingerprint)\nsize \(size)\ncount \(entries.count)\n"
        for entry in entries {
            out += "\(entry.shard)\t\(entry.offset)\t\(entry.size)\t\(entry.member)\t\(entry.className ?? "-")\n"
        }
        return out
    }
}
