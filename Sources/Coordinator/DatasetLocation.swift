import Data
import Logging

/// The coordinator's dataset index: --data, else the built-in sample set generated once into
/// the cache. Workers resolve theirs with the same rule (Worker.DatasetLocation), and the
/// fingerprints must match for a worker to be admitted.
enum DatasetLocation {
    static func resolve(dataPath: String?, cacheDirectory: String?, logger: Logger) throws -> DatasetIndex {
        let cache = cacheDirectory ?? DatasetIndexCache.defaultDirectory()
        let root: String
        if let dataPath {
            root = dataPath
        } else {
            do { root = try SampleData.ensure(at: cache) } catch {
                throw CoordinatorFailure.dataset("cannot prepare the built-in sample data: \(error)")
            }
            logger.info("no --data: using the built-in sample data at \(root)")
        }
        do {
            return try DatasetIndexCache.load(root: root, cacheDirectory: cache).index
        } catch {
            throw CoordinatorFailure.dataset("cannot index the dataset at \(root): \(error)")
        }
    }
}
