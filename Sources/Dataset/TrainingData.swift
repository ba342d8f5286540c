import Images
import TensorFiles
/// The data a run trains on, as `DatasetLocation.resolve` found it: an image folder, through its
/// index, or a packed shard directory, through its `index.txt`. Both number their samples
/// 0..<count in a stable order that every node shares, so the sampler, the ranks' slices, the
/// augmentation keys and the handling of bad samples are the same for either; only where the
/// bytes of a sample come from differs.
public enum TrainingData: SampleSource, Equatable {
    /// A folder of image files (ImageNet layout or any folder, recursive).
    case folder(DatasetIndex)
    /// A directory written by `scvae pack`.
    case shards(ShardSet)

    public var count: Int {
        switch self {
        case .folder(let index): index.count
        case .shards(let set): set.count
        }
    }

    /// What coordinator and workers compare before a worker is admitted, and what a checkpoint
    /// records: `DatasetIndex.fingerprint` or `ShardSet.fingerprint`. A folder and the shards
    /// packed from it hold different bytes, so their fingerprints differ.
    public var fingerprint: String {
        switch self {
        case .folder(let index): index.fingerprint
        case .shards(let set): set.fingerprint
        }
    }

    /// The folder or shard directory, for messages.
    public var root: String {
        switch self {
        case .folder(let index): index.root
        case .shards(let set): set.directory
        }
    }

    /// "image folder" or "shard directory", for messages.
    public var kind: String {
        switch self {
        case .folder: "image folder"
        case .shards: "shard directory"
        }
    }

    /// Why `--shard-window` cannot apply.
    public struct ShardWindowProblem: Error, CustomStringConvertible {
        public var description: String
    }

    /// The shard windows of `window` shards each (nil for 0: one permutation of everything). An
    /// image folder has no shards to window.
    public func shardWindows(_ window: Int) throws(ShardWindowProblem) -> ShardWindows? {
        guard window > 0 else { return nil }
        guard case let .shards(set) = self else {
            throw ShardWindowProblem(description: "\(root) is an image folder; shard windows need a shard directory (scvae pack --input \(root) --out DIR)")
        }
        return ShardWindows(set, window: window)
    }

    public func name(of index: Int) -> String {
        switch self {
        case .folder(let folder): folder.name(of: index)
        case .shards(let set): set.name(of: index)
        }
    }

    public func readBytes(of index: Int) throws(ImageError) -> [UInt8] {
        switch self {
        case .folder(let folder): try folder.readBytes(of: index)
        case .shards(let set): try set.readBytes(of: index)
        }
    }
}
