/// Where a run's data is, by the rule the coordinator and every worker share: `--data` if given,
/// else the built-in sample set, generated once into the cache (DECISIONS.md: `$XDG_CACHE_HOME/scvae`,
/// else `~/.cache/scvae`). Both sides index what they find; the fingerprints must match for a
/// worker to be admitted.
public enum DatasetLocation {
    /// Why the data could not be found or indexed; names the folder.
    public enum Failure: Error, CustomStringConvertible {
        /// The built-in sample set could not be generated.
        case sampleData(SampleDataError)
        /// The folder could not be indexed.
        case index(root: String, DatasetError)

        public var description: String {
            switch self {
            case let .sampleData(error): "cannot prepare the built-in sample data: \(error)"
            case let .index(root, error): "cannot index the dataset at \(root): \(error)"
            }
        }
    }

    /// The index of `dataPath` (nil: the built-in sample data), through the index cache.
    public static func resolve(dataPath: String?, cacheDirectory: String?) throws(Failure) -> DatasetIndex {
        let cache = cacheDirectory ?? DatasetIndexCache.defaultDirectory()
        let root: String
        if let dataPath {
            root = dataPath
        } else {
            do { root = try SampleData.ensure(at: cache) } catch { throw .sampleData(error) }
        }
        do {
            return try DatasetIndexCache.load(root: root, cacheDirectory: cache).index
        } catch {
            throw .index(root: root, error)
        }
    }
}
