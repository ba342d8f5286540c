import Foundation

/// `--data-order-log FILE`: one JSON line per step with the samples this rank computes
/// gradients of, written before the all-reduce, so a test (or a user) can check that every
/// sample of an epoch was used exactly once, also across failures: a step redone by a later
/// generation appears again with that generation, and the latest generation's lines of a step
/// are the ones whose gradients were applied. Lines are appended per step; a write error is reported
/// once and logging stops (training goes on).
final class DataOrderLog {
    private let handle: FileHandle
    let path: String

    init(path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    /// `run` is the coordinator's run id (generations count afresh under a restarted coordinator);
    /// `time` (seconds since 1970) orders lines across workers and coordinator restarts.
    func record(workerID: String, run: UInt64, generation: UInt64, rank: Int, worldSize: Int, step: Int, epoch: Int, samples: [Int]) throws {
        let time = String(format: "%.6f", Date().timeIntervalSince1970)
        let line = "{\"worker\": \"\(workerID)\", \"run\": \"\(String(run, radix: 16))\", \"time\": \(time), \"generation\": \(generation), \"rank\": \(rank), \"world\": \(worldSize), "
            + "\"step\": \(step), \"epoch\": \(epoch), \"samples\": [\(samples.map(String.init).joined(separator: ","))]}\n"
        try handle.write(contentsOf: Data(line.utf8))
    }
}
