import Images
import TensorFiles
/// Packed datasets: pre-resized JPEGs in tar shards, because a million small files are slow on
/// real storage. The shards follow WebDataset's conventions, so its loaders read them too: a
/// sample is the members sharing a key, `<key>.jpg` (the image) and `<key>.cls` (the class index
/// in decimal, when the source has classes). Keys are `<8-digit sample index>_<file name without
/// extension>`, with dots replaced by underscores (WebDataset splits keys at the first dot).
///
/// A shard directory holds `shard-NNNNNN.tar` files, each renamed into place when complete, and
/// `index.txt`, written last, which makes the directory complete (`ShardSet` reads it):
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
    /// Called with each shard's name and bytes once the shard is in place (renamed, fsynced).
    var onShardFinished: ((_ name: String, _ bytes: [UInt8]) throws(ShardError) -> Void)?

    /// A writer whose first `finishedShards` shards (holding `entries`) are already in place:
    /// the next shard it writes is number `finishedShards`.
    public init(directory: String, maximumShardBytes: Int = 256 << 20, finishedShards: Int = 0,
                entries: [ShardEntry] = []) throws(ShardError) {
        self.directory = directory
        self.maximumShardBytes = maximumShardBytes
        self.shardNumber = finishedShards
        self.entries = entries
        do {
            try DatasetIndexCache.makeDirectories(directory)
        } catch {
            throw .cannotWrite(path: directory, reason: error.description)
        }
    }

    var currentShardName: String { Self.shardName(shardNumber) }

    /// `shard-NNNNNN.tar`.
    static func shardName(_ number: Int) -> String {
        let digits = String(number)
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
        let name = currentShardName
        let path = directory + "/" + name
        let bytes = current + Tar.end
        do {
            try BinaryFile.writeAtomically(bytes, to: path)
        } catch {
            throw .cannotWrite(path: path, reason: error.description)
        }
        current = []
        shardNumber += 1
        try onShardFinished?(name, bytes)
    }

    /// Closes the last shard and writes the index (last, so that its presence means complete);
    /// returns the finished set as a reader opens it.
    public func finish(sourceFingerprint: String, size: Int) throws(ShardError) -> ShardSet {
        if !current.isEmpty { try closeShard() }
        let path = directory + "/index.txt"
        let text = ShardSet.indexText(entries: entries, sourceFingerprint: sourceFingerprint, size: size)
        do {
            try BinaryFile.writeAtomically(Array(text.utf8), to: path)
        } catch {
            throw .cannotWrite(path: path, reason: error.description)
        }
        return try ShardSet.open(directory)
    }
}
