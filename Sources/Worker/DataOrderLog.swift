import Foundation

/// `--data-order-log FILE`: one JSON line per applied step with the samples this rank trained
/// on, so a test (or a user) can check that every sample of an epoch was used exactly once,
/// also across failures. Lines are appended and flushed per step; a write error is reported
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

    func record(workerID: String, generation: UInt64, rank: Int, worldSize: Int, step: Int, epoch: Int, samples: [Int]) throws {
        let line = "{\"worker\": \"\(workerID)\", \"generation\": \(generation), \"rank\": \(rank), \"world\": \(worldSize), "
            + "\"step\": \(step), \"epoch\": \(epoch), \"samples\": [\(samples.map(String.init).joined(separator: ","))]}\n"
        try handle.write(contentsOf: Data(line.utf8))
    }
}
