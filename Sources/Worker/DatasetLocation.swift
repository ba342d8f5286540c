import Data
import Logging

/// Where a worker's data is and its index. Without --data it is the built-in sample set,
/// generated once into the cache (DECISIONS.md: `$XDG_CACHE_HOME/scvae`, else `~/.cache/scvae`).
/// The coordinator resolves it with the same rule, so both sides index the same files.
public enum DatasetLocation {
    /// Why the data could not be found or indexed; names the folder.
    public enum Failure: Error, CustomStringConvertible {
        case sampleData(SampleDataError)
        case index(root: String, DatasetError)

        public var description: String {
            switch self {
            case let .sampleData(error): "cannot prepare the built-in sample data: \(error)"
            case let .index(root, error): "cannot index the dataset at \(root): \(error)"
            }
        }
    }

    public static func resolve(dataPath: String?, cacheDirectory: String?, logger: Logger) throws(Failure) -> DatasetIndex {
        let cache = cacheDirectory ?? DatasetIndexCache.defaultDirectory()
        let root: String
        if let dataPath {
            root = dataPath
        } else {
            do { root = try SampleData.ensure(at: cache) } catch { throw .sampleData(error) }
        }
        do {
            let (index, _) = try DatasetIndexCache.load(root: root, cacheDirectory: cache)
            logger.debug("dataset \(index.root): \(index.count) images, fingerprint \(index.fingerprint.prefix(16))")
            return index
        } catch {
            throw .index(root: root, error)
        }
    }
}
