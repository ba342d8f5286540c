import ArgumentParser
import Data
import Foundation

/// `scvae bench data`: the training pipeline's decode + augment rate (read, decode with DCT
/// scaling, antialiased resize, random crop, flip, float CHW), per thread.
struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Decoded+augmented images/s per thread of the training pipeline over a folder of images; optionally beside Pillow's.")

    @Option(help: "Folder of images (recursive). Default: the built-in sample data.")
    var data: String?

    @Option(help: "Output side S of the training transform.")
    var size: Int = 64

    @Option(help: "Decoding threads (each takes an interleaved share of the files).")
    var threads: Int = 1

    @Option(help: "Timed passes over the files (after one untimed pass that warms the file cache).")
    var passes: Int = 2

    @Flag(help: "Also run scripts/bench/pillow_data.py on the same files with the same settings.")
    var comparePillow = false

    func validate() throws {
        guard size >= 8, threads >= 1, passes >= 1 else { throw ValidationError("--size >= 8, --threads >= 1 and --passes >= 1.") }
    }

    func run() throws {
        let root = try data ?? SampleData.ensureInDefaultCache()
        let index = try DatasetIndex.scan(root: root)
        let files = (0..<index.count).map { index.path(of: $0) }
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; \(threads) thread(s); \(files.count) files under \(root); size \(size)")
        let transform = ImageTransform(size: size, mode: .training)
        var rates: [Double] = []
        _ = Self.decodeAll(files, transform: transform, threads: threads, epoch: 0)
        for pass in 1...passes {
            let start = DispatchTime.now().uptimeNanoseconds
            let failures = Self.decodeAll(files, transform: transform, threads: threads, epoch: pass)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            rates.append(Double(files.count - failures) / seconds)
            if pass == passes && failures > 0 { print("\(failures) files did not decode (skipped)") }
        }
        let best = rates.max() ?? 0
        print(String(format: "scvae: %.1f images/s in total, %.1f images/s per thread (best pass)", best, best / Double(threads)))
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

    /// Decodes and transforms every file once on `threads` threads; returns the number that failed.
    static func decodeAll(_ files: [String], transform: ImageTransform, threads: Int, epoch: Int) -> Int {
        let failures = Counter()
        let group = DispatchGroup()
        for thread in 0..<threads {
            group.enter()
            Thread {
                let decoder = ImageDecoder()
                var output = [Float](repeating: 0, count: transform.outputCount)
                for i in stride(from: thread, to: files.count, by: threads) {
                    do {
                        let image = try decoder.decodeFile(atPath: files[i], shorterSideAtLeast: transform.size)
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
