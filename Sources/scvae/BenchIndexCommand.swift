import ArgumentParser
import CommandOptions
import Dataset
import Foundation

/// `scvae bench index`: what indexing a dataset folder costs (listing every file's name and
/// size, sorting, the fingerprint, the index cache), the way a coordinator and every worker do
/// at start-up, with the peak memory of the process.
struct BenchIndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Seconds and peak memory to index a dataset folder (list, sort, fingerprint, index cache), first and repeated loads.",
        discussion: """
            The first load lists the folder and writes the index cache; each repeated load lists it again \
            (as every start does) and finds the cache valid. scripts/bench/index_tree.py makes a tree of \
            ImageNet's shape (1,000 classes, 1.28M files) to run it on. Whether the first load found the \
            files in the page cache depends on what ran before: drop the caches first for a cold figure.
            """)

    @Option(help: "Dataset folder to index.")
    var data: String

    @Option(name: .customLong("cache-dir"), help: "Index cache folder for the measurement (default: a fresh temporary folder, removed at the end).")
    var cacheDir: String?

    @Option(help: "Repeated loads after the first.")
    var repeats: Int = 2

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard repeats >= 0 else { throw ValidationError("--repeats must be 0 or more.") }
    }

    func run() throws {
        logging.bootstrap()
        let temporary = cacheDir == nil ? NSTemporaryDirectory() + "scvae-bench-index-\(getpid())" : nil
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        let cache = cacheDir ?? temporary!
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; folder \(data); cache \(cache)")
        for load in 0...repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            let (index, outcome) = try DatasetIndexCache.load(root: data, cacheDirectory: cache)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let what = load == 0 ? "first load " : "repeat \(load)   "
            print(String(format: "%@ %.2f s: %d images, fingerprint %@, cache %@; peak memory %.0f MiB",
                         what, seconds, index.count, String(index.fingerprint.prefix(16)), "\(outcome)", Self.peakMiB()))
        }
    }

    /// The process's peak resident memory so far (getrusage: kilobytes on Linux).
    static func peakMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
