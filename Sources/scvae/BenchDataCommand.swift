import ArgumentParser
import CommandOptions
import Dataset
import Foundation
import Images

/// `scvae bench data`: the training pipeline's decode + augment rate (read, decode with DCT
/// scaling, antialiased resize, random crop, flip, float CHW), per thread.
struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Decoded+augmented images/s per thread of the training pipeline over a folder of images or a shard directory; optionally beside Pillow's.")

    @Option(help: "Folder of images (recursive) or shard directory (scvae pack). Default: the built-in sample data.")
    var data: String?

    @Option(help: "Output side S of the training transform.")
    var size: Int = 64

    @Option(help: "Decoding threads (each takes an interleaved share of the samples).")
    var threads: Int = 1

    @Option(help: "Timed passes over the samples (after one untimed pass that warms the file cache).")
    var passes: Int = 2

    @Flag(name: .customLong("read-only"), help: "Only read each sample's bytes, without decoding: the cost of the storage path (one file per image, or one member read per image from a shard).")
    var readOnly = false

    @Flag(help: "Also run scripts/bench/pillow_data.py on the same files with the same settings.")
    var comparePillow = false

    func validate() throws {
        guard size >= 8, threads >= 1, passes >= 1 else { throw ValidationError("--size >= 8, --threads >= 1 and --passes >= 1.") }
    }

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let root = try data ?? SampleData.ensureInDefaultCache()
        let source = try DatasetLocation.open(root)
        if readOnly && comparePillow { throw ValidationError("--read-only and --compare-pillow measure different things; give one.") }
        if comparePillow, case .shards = source {
            throw ValidationError("--compare-pillow reads image files: give it the folder the shards were packed from.")
        }
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; \(threads) thread(s); \(source.count) images in the \(source.kind) \(source.root); size \(size)")
        let transform = ImageTransform(size: size, mode: .training)
        var rates: [Double] = []
        _ = Self.decodeAll(source, transform: transform, threads: threads, epoch: 0, readOnly: readOnly)
        for pass in 1...passes {
            let start = DispatchTime.now().uptimeNanoseconds
            let failures = Self.decodeAll(source, transform: transform, threads: threads, epoch: pass, readOnly: readOnly)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            rates.append(Double(source.count - failures) / seconds)
            if pass == passes && failures > 0 { print("\(failures) images did not decode (skipped)") }
        }
        let best = rates.max() ?? 0
        let what = readOnly ? "read (no decode)" : "in total"
        print(String(format: "scvae: %.1f images/s ", best) + what + String(format: ", %.1f images/s per thread (best pass)", best / Double(threads)))
        if comparePillow {
            fflush(nil)  // our lines first, then the script's
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("scripts/bench/pillow_data.py").path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script, "--data", root, "--size", "\(size)", "--threads", "\(threads)"]
            try process.run()
            process.waitUntilExit()
        }
    }

    /// Reads, decodes and transforms every sample once on `threads` threads, as the prefetcher
    /// does (with `readOnly`, only reads); returns the number that failed.
    static func decodeAll(_ source: TrainingData, transform: ImageTransform, threads: Int, epoch: Int, readOnly: Bool) -> Int {
        let failures = Counter()
        let group = DispatchGroup()
        for thread in 0..<threads {
            group.enter()
            Thread {
                let decoder = ImageDecoder()
                var output = [Float](repeating: 0, count: transform.outputCount)
                for i in stride(from: thread, to: source.count, by: threads) {
                    do {
                        let bytes = try source.readBytes(of: i)
                        if readOnly { continue }
                        let image = try decoder.decode(bytes, file: source.name(of: i),
                                                       shorterSideAtLeast: transform.size)
                        output.withUnsafeMutableBufferPointer {
                            transform.apply(image, seed: 0, epoch: epoch, sampleIndex: i, into: $0)
                        }
                    } catch {
                        failures.increment()
                    }
                }
                group.leave()
            }.start()
        }
        group.wait()
        return failures.value
    }
}

/// A thread-safe count.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
