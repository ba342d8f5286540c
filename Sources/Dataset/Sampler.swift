import Images
import TensorFiles
/// Which samples each rank trains on, step by step (docs/decisions.md
/// "Batches and randomness").
///
/// Epoch e visits the dataset in a seeded permutation: Fisher–Yates driven by
/// `KeyedRandom(.permutation, seed: seed, e)`:
///
///     order = [0, 1, ..., n-1]
///     for i in n-1 down to 1: j = random.below(i + 1); swap(order[i], order[j])
///
/// An epoch has floor(n / G) steps for the global batch G; the tail of the permutation is dropped
/// (drop_last). Step s uses positions [s*G, (s+1)*G). Rank r of N takes a contiguous slice of that
/// global batch: with G = q*N + m, ranks 0..<m take q+1 samples and the others q, in rank order.
/// The batch of a step depends only on (seed, epoch, step), never on N, so a run resumed at a
/// cursor with another N continues with exactly the samples it would have seen.

/// A position in training: the next step to run, in its epoch.
public struct SamplerCursor: Codable, Equatable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var epoch: Int
    public var step: Int

    public init(epoch: Int, step: Int) {
        self.epoch = epoch
        self.step = step
    }

    public static func < (a: SamplerCursor, b: SamplerCursor) -> Bool {
        (a.epoch, a.step) < (b.epoch, b.step)
    }

    public var description: String { "epoch \(epoch) step \(step)" }
}

/// Why a sampler cannot be made.
public enum SamplerError: Error, Equatable, CustomStringConvertible {
    /// The global batch size is zero or negative.
    case invalidGlobalBatch(Int)
    /// The dataset holds fewer samples than one global batch, so an epoch would have no step.
    case datasetSmallerThanBatch(samples: Int, globalBatch: Int)

    public var description: String {
        switch self {
        case .invalidGlobalBatch(let g): return "global batch size must be positive, got \(g)"
        case .datasetSmallerThanBatch(let n, let g):
            return "the dataset has \(n) samples, fewer than one global batch of \(g)"
        }
    }
}

/// The deterministic plan of samples per epoch, step and rank.
public struct Sampler: Sendable, Equatable {
    public let sampleCount: Int
    public let globalBatch: Int
    public let seed: UInt64
    /// Shard windows (`ShardWindows`), or nil for one permutation of the whole dataset.
    public let windows: ShardWindows?

    public init(sampleCount: Int, globalBatch: Int, seed: UInt64, windows: ShardWindows? = nil) throws(SamplerError) {
        guard globalBatch > 0 else { throw .invalidGlobalBatch(globalBatch) }
        guard sampleCount >= globalBatch else { throw .datasetSmallerThanBatch(samples: sampleCount, globalBatch: globalBatch) }
        precondition(windows.map { $0.sampleCount == sampleCount } ?? true, "Sampler: the shard windows cover another dataset")
        self.sampleCount = sampleCount
        self.globalBatch = globalBatch
        self.seed = seed
        self.windows = windows
    }

    /// floor(n / G): the tail of each permutation is dropped.
    public var stepsPerEpoch: Int { sampleCount / globalBatch }

    /// The permutation of sample indices for `epoch`.
    public func permutation(epoch: Int) -> [Int] {
        if let windows { return windows.order(seed: seed, epoch: epoch).permutation }
        var order = Array(0..<sampleCount)
        var random = KeyedRandom(.permutation, seed: seed, epoch)
        Self.shuffle(&order[...], with: &random)
        return order
    }

    /// Fisher–Yates over `items`, as the type's documentation writes it.
    static func shuffle(_ items: inout ArraySlice<Int>, with random: inout KeyedRandom) {
        let base = items.startIndex
        var i = items.count - 1
        while i > 0 {
            let j = random.below(i + 1)
            items.swapAt(base + i, base + j)
            i -= 1
        }
    }

    /// The order of one epoch, computed once; ask it for batches and slices.
    public func epoch(_ epoch: Int) -> EpochOrder {
        guard let windows else {
            return EpochOrder(epoch: epoch, globalBatch: globalBatch, permutation: permutation(epoch: epoch))
        }
        let order = windows.order(seed: seed, epoch: epoch)
        return EpochOrder(epoch: epoch, globalBatch: globalBatch, permutation: order.permutation, windowEnds: order.windowEnds)
    }

    /// The positions within a global batch of G that rank r of N takes.
    public static func sliceRange(rank: Int, worldSize: Int, globalBatch: Int) -> Range<Int> {
        precondition(worldSize > 0 && (0..<worldSize).contains(rank), "Sampler: rank \(rank) outside world of \(worldSize)")
        let base = globalBatch / worldSize, extra = globalBatch % worldSize
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// The cursor after running the step at `cursor`.
    public func advanced(_ cursor: SamplerCursor) -> SamplerCursor {
        cursor.step + 1 >= stepsPerEpoch
            ? SamplerCursor(epoch: cursor.epoch + 1, step: 0)
            : SamplerCursor(epoch: cursor.epoch, step: cursor.step + 1)
    }

    /// The cursor `steps` steps after the start of training.
    public func cursor(afterSteps steps: Int) -> SamplerCursor {
        SamplerCursor(epoch: steps / stepsPerEpoch, step: steps % stepsPerEpoch)
    }

    /// The number of steps run before `cursor`.
    public func stepsBefore(_ cursor: SamplerCursor) -> Int {
        cursor.epoch * stepsPerEpoch + cursor.step
    }
}

/// One epoch's permutation with the batch and slice arithmetic on it.
public struct EpochOrder: Sendable, Equatable {
    public let epoch: Int
    public let globalBatch: Int
    /// Sample indices in visiting order (the whole permutation, including the dropped tail).
    public let permutation: [Int]
    /// With shard windows: the end of each window's positions in `permutation`, increasing;
    /// the last is the permutation's length. One window of all positions otherwise.
    public let windowEnds: [Int]

    public init(epoch: Int, globalBatch: Int, permutation: [Int], windowEnds: [Int]? = nil) {
        self.epoch = epoch
        self.globalBatch = globalBatch
        self.permutation = permutation
        self.windowEnds = windowEnds ?? [permutation.count]
    }

    public var stepCount: Int { permutation.count / globalBatch }

    /// The window that position `position` of the permutation lies in.
    public func window(ofPosition position: Int) -> Int {
        var low = 0, high = windowEnds.count - 1
        while low < high {
            let middle = (low + high) / 2
            if windowEnds[middle] > position { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// Sample indices of the global batch of `step`.
    public func batch(step: Int) -> ArraySlice<Int> {
        precondition((0..<stepCount).contains(step), "EpochOrder: step \(step) outside 0..<\(stepCount)")
        return permutation[(step * globalBatch)..<((step + 1) * globalBatch)]
    }

    /// Sample indices rank `rank` of `worldSize` trains on at `step`.
    public func slice(step: Int, rank: Int, worldSize: Int) -> ArraySlice<Int> {
        let range = Sampler.sliceRange(rank: rank, worldSize: worldSize, globalBatch: globalBatch)
        let start = step * globalBatch
        return batch(step: step)[(start + range.lowerBound)..<(start + range.upperBound)]
    }
}
