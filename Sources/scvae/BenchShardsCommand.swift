import ArgumentParser
import CommandOptions
import Dataset
import Foundation

/// `scvae bench shards`: one rank's reads of one epoch from a shard directory, cold, in the
/// global permutation (one pread per sample) and with shard windows (WindowedShardReader's
/// ranges), in alternating rounds.
struct BenchShardsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shards",
        abstract: "Read one rank's samples of an epoch from shards, cold: the global order (a pread per sample) against shard windows (large reads in file order).",
        discussion: """
            Before each pass the shards are dropped from the page cache (posix_fadvise DONTNEED, \
            no privileges needed), so the reads come from the storage. Only bytes are read, nothing \
            is decoded: the figure is the storage path's. Rounds alternate the two orders.
            """)

    @Option(help: "Shard directory (scvae pack).")
    var data: String

    @Option(name: .customLong("shard-window"), help: "Shards per window for the windowed order.")
    var shardWindow: Int = 4

    @Option(help: "Workers the epoch is split over; rank 0's share is read.")
    var workers: Int = 1

    @Option(name: .customLong("global-batch"), help: "Images per step over all workers.")
    var globalBatch: Int = 64

    @Option(help: "Decoding threads asking for samples (as the prefetcher's).")
    var threads: Int = 1

    @Option(help: "Rounds (each reads the epoch once in each order).")
    var rounds: Int = 2

    @Flag(help: "Keep the page cache (a warm read).")
    var warm = false

    @Option(name: .customLong("model-storage"), help: "Also print the time a storage with this first-byte latency (ms) and bandwidth (MB/s) would take for the same requests, e.g. 1:500 (NFS) or 20:200 (an object store); repeatable.")
    var modelStorage: [String] = ["1:500", "20:200"]

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard shardWindow >= 1 else { throw ValidationError("--shard-window must be at least 1.") }
        guard workers >= 1, globalBatch >= workers else { throw ValidationError("--workers must be at least 1 and at most --global-batch.") }
        guard threads >= 1, rounds >= 1 else { throw ValidationError("--threads and --rounds must be at least 1.") }
    }

    func run() throws {
        logging.bootstrap()
        guard case let .shards(set) = try DatasetLocation.open(data) else {
            throw ValidationError("\(data) is not a shard directory (scvae pack makes one).")
        }
        let windows = ShardWindows(set, window: shardWindow)
        let bytes = set.entries.reduce(0) { $0 + $1.size }
        print("shards: \(windows.shards.count) files, \(set.count) images, \(String(format: "%.1f", Double(bytes) / 1048576)) MiB of members; rank 0 of \(workers), global batch \(globalBatch), \(threads) threads, \(warm ? "warm" : "cold") page cache")
        for round in 1...rounds {
            for windowed in [false, true] {
                let sampler = try Sampler(sampleCount: set.count, globalBatch: globalBatch, seed: 1, windows: windowed ? windows : nil)
                let plan = TrainingPlan(sampler: sampler, rank: 0, worldSize: workers, start: SamplerCursor(epoch: 0, step: 0),
                                        stepCount: sampler.stepsPerEpoch)
                if !warm { set.dropFromPageCache() }
                let start = DispatchTime.now().uptimeNanoseconds
                let reader = windowed ? WindowedShardReader(shards: set, plan: plan) : nil
                let source: any SampleSource = reader ?? set
                let (images, read) = Self.readAll(source, plan: plan, steps: sampler.stepsPerEpoch, threads: threads)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                reader?.stop()
                let how = windowed ? "windows of \(shardWindow)" : "global order   "
                var line = String(format: "round %d, %@: %6.0f images/s, %7.1f MiB/s (%d images, %.2f s)",
                                  round, how, Double(images) / seconds, Double(read) / 1048576 / seconds, images, seconds)
                // What the storage was asked for: a request per sample, or the reader's ranges
                // plus the samples it left to the decoders.
                let requests = reader.map { $0.statistics.ranges + $0.statistics.direct } ?? images
                let requested = reader.map { $0.statistics.rangeBytes + ($0.statistics.direct > 0 ? read * $0.statistics.direct / max(images, 1) : 0) } ?? read
                line += String(format: "; %d requests, %.1f MiB requested", requests, Double(requested) / 1048576)
                for storage in modelStorage {
                    let parts = storage.split(separator: ":").compactMap { Double($0) }
                    guard parts.count == 2, parts[1] > 0 else { continue }
                    let modelled = Double(requests) * parts[0] / 1000 + Double(requested) / (parts[1] * 1e6)
                    line += String(format: "; at %@ ms, %@ MB/s: %.1f s", "\(parts[0])", "\(parts[1])", modelled)
                }
                print(line)
            }
        }
    }

    /// Reads every planned sample's bytes, `threads` threads taking steps in turn; images and bytes read.
    static func readAll(_ source: any SampleSource, plan: TrainingPlan, steps: Int, threads: Int) -> (Int, Int) {
        let totals = Totals()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var images = 0, bytes = 0
            for step in stride(from: thread, to: steps, by: threads) {
                for sample in plan.step(step)?.sampleIndices ?? [] {
                    if let read = try? source.readBytes(of: sample) {
                        images += 1
                        bytes += read.count
                    }
                }
            }
            totals.add(images, bytes)
        }
        return totals.value
    }

    private final class Totals: @unchecked Sendable {
        private let lock = NSLock()
        private var images = 0, bytes = 0
        func add(_ i: Int, _ b: Int) { lock.lock(); images += i; bytes += b; lock.unlock() }
        var value: (Int, Int) { lock.lock(); defer { lock.unlock() }; return (images, bytes) }
    }
}
