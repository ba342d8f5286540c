import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Images
import TensorFiles

/// Where a run's data is, by the rule the coordinator and every worker share: `--data` if given,
/// else the built-in sample set, generated once into the cache (docs/decisions.md: `$XDG_CACHE_HOME/scvae`,
/// else `~/.cache/scvae`). `--data` is a shard directory written by `scvae pack` when it holds a
/// shard index (`index.txt` starting "scvae-shards"), else an image folder, indexed through the
/// index cache. Both sides open what they find; the fingerprints must match for a worker to be
/// admitted.
public enum DatasetLocation {
    /// Why the data could not be found or indexed; names the folder.
    public enum Failure: Error, CustomStringConvertible {
        /// The built-in sample set could not be generated.
        case sampleData(SampleDataError)
        /// The folder could not be indexed.
        case index(root: String, DatasetError)
        /// The shard directory could not be opened.
        case shards(directory: String, ShardError)

        public var description: String {
            switch self {
            case let .sampleData(error): "cannot prepare the built-in sample data: \(error)"
            case let .index(_, error): "cannot index the dataset: \(error)"  // the error names its path
            case let .shards(directory, error): "cannot open the shard directory \(directory): \(error)"
            }
        }
    }

    /// The data at `dataPath` (nil: the built-in sample data); folders go through the index cache.
    public static func resolve(dataPath: String?, cacheDirectory: String?) throws(Failure) -> TrainingData {
        let cache = cacheDirectory ?? DatasetIndexCache.defaultDirectory()
        let root: String
        if let dataPath {
            if ShardSet.isShardDirectory(dataPath) { return .shards(try openShards(dataPath)) }
            root = dataPath
        } else {
            do { root = try SampleData.ensure(at: cache) } catch { throw .sampleData(error) }
        }
        do {
            return .folder(try DatasetIndexCache.load(root: root, cacheDirectory: cache).index)
        } catch {
            throw folderFailure(root: root, error)
        }
    }

    /// The validation set at `dataPath` (a folder or shard directory, as for training), or with
    /// nil the built-in sample data's held-out set.
    public static func resolveValidation(dataPath: String?, cacheDirectory: String?) throws(Failure) -> TrainingData {
        if let dataPath { return try resolve(dataPath: dataPath, cacheDirectory: cacheDirectory) }
        let cache = cacheDirectory ?? DatasetIndexCache.defaultDirectory()
        let root: String
        do { root = try SampleData.ensureHeldOut(at: cache) } catch { throw .sampleData(error) }
        return try resolve(dataPath: root, cacheDirectory: cache)
    }

    /// The data at `path` without the index cache (tools that only read it once).
    public static func open(_ path: String) throws(Failure) -> TrainingData {
        if ShardSet.isShardDirectory(path) { return .shards(try openShards(path)) }
        do {
            return .folder(try DatasetIndex.scan(root: path))
        } catch {
            throw folderFailure(root: path, error)
        }
    }

    /// The shard set of `directory`, named by its absolute path with links resolved (as a folder's
    /// root is), so that messages about its samples say where they are.
    private static func openShards(_ directory: String) throws(Failure) -> ShardSet {
        var absolute = directory
        if let resolved = realpath(directory, nil) {
            absolute = String(cString: resolved)
            free(resolved)
        }
        do { return try ShardSet.open(absolute) } catch { throw .shards(directory: absolute, error) }
    }

    /// A folder without images that holds shards but no index is an unfinished `scvae pack`
    /// (the index is written last): said so, rather than "no images".
    private static func folderFailure(root: String, _ error: DatasetError) -> Failure {
        guard case .noImages = error, let names = try? FileManager.default.contentsOfDirectory(atPath: root),
              names.contains(where: { $0.hasPrefix("shard-") && $0.hasSuffix(".tar") }) else {
            return .index(root: root, error)
        }
        return .shards(directory: root, .unreadable(path: root + "/" + ShardSet.indexName,
                                                    reason: "missing, but the folder holds shard-*.tar files: an unfinished `scvae pack`? (it writes the index last)"))
    }
}
