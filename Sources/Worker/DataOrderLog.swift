import Foundation
import TensorFiles

/// `--data-order-log FILE`: one JSON line per step with the samples this rank computes
/// gradients of, written before the all-reduce, so a test (or a user) can check that every
/// sample of an epoch was used exactly once, also across failures: a step redone by a later
/// generation appears again with that generation, and the latest generation's lines of a step
/// are the ones whose gradients were applied. Lines are appended per step through
/// `JSONLinesFile` (so any worker id is valid JSON).
final class DataOrderLog {
    /// One line.
    struct Line: Encodable {
        var worker: String
        /// The coordinator's run id in hex: generations count afresh under a restarted coordinator.
        var run: String
        /// Seconds since 1970: orders lines across workers and coordinator restarts.
        var time: Double
        var generation: UInt64
        var rank: Int
        var world: Int
        var step: Int
        var epoch: Int
        var samples: [Int]
    }

    private let file: JSONLinesFile
    var path: String { file.path }

    init(path: String) throws {
        file = try JSONLinesFile(path: path)
    }

    func record(workerID: String, run: UInt64, generation: UInt64, rank: Int, worldSize: Int, step: Int, epoch: Int, samples: [Int]) throws {
        try file.append(Line(worker: workerID, run: String(run, radix: 16), time: Date().timeIntervalSince1970,
                             generation: generation, rank: rank, world: worldSize, step: step, epoch: epoch, samples: samples))
    }
}
