import Images

/// An epoch order that reads shards a few at a time (docs/data.md, "Shard windows").
///
/// Epoch e shuffles the shards (Fisher–Yates keyed by `(shardOrder, seed, e)`), cuts that order
/// into windows of `window` consecutive shards, and shuffles the samples of each window (Fisher–
/// Yates keyed by `(windowShuffle, seed, e, w)` over the window's samples, taken shard by shard
/// in index order); the epoch's permutation is the windows one after another. Every sample is
/// still visited once per epoch and a step's global batch is still a pure function of (seed,
/// epoch, step) and the data, never of the number of workers, so N-invariance and exact resume
/// hold. What changes is the mixing: a batch draws from the `window` shards of its window (two
/// windows at a boundary) instead of the whole dataset; and the order depends on how the data was
/// cut into shards (packing the same images at another shard size gives another order).
public struct ShardWindows: Sendable, Equatable {
    /// The sample indices of each shard (consecutive in index order).
    public let shards: [Range<Int>]
    /// Shards per window.
    public let window: Int

    /// `shards` must cover 0..<n in order without gaps; `window` >= 1.
    public init(shards: [Range<Int>], window: Int) {
        precondition(window >= 1, "ShardWindows: a window holds at least one shard")
        precondition(zip(shards, shards.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound } && (shards.first?.lowerBound ?? 0) == 0,
                     "ShardWindows: the shards must cover the samples in order")
        self.shards = shards
        self.window = window
    }

    /// The windows of a shard set: its samples grouped by shard file, in index order.
    public init(_ set: ShardSet, window: Int) {
        var ranges: [Range<Int>] = []
        var start = 0
        for index in set.entries.indices.dropFirst() where set.entries[index].shard != set.entries[index - 1].shard {
            ranges.append(start..<index)
            start = index
        }
        if !set.entries.isEmpty { ranges.append(start..<set.entries.count) }
        self.init(shards: ranges, window: window)
    }

    public var sampleCount: Int { shards.last?.upperBound ?? 0 }

    /// The permutation of epoch `epoch` and the end of each window's positions in it.
    public func order(seed: UInt64, epoch: Int) -> (permutation: [Int], windowEnds: [Int]) {
        var shardOrder = Array(shards.indices)
        var random = KeyedRandom(.shardOrder, seed: seed, epoch)
        Sampler.shuffle(&shardOrder[...], with: &random)
        var permutation: [Int] = []
        permutation.reserveCapacity(sampleCount)
        var windowEnds: [Int] = []
        for (w, first) in stride(from: 0, to: shardOrder.count, by: window).enumerated() {
            let start = permutation.count
            for shard in shardOrder[first..<min(first + window, shardOrder.count)] {
                permutation.append(contentsOf: shards[shard])
            }
            var mixing = KeyedRandom(.windowShuffle, seed: seed, epoch, w)
            Sampler.shuffle(&permutation[start...], with: &mixing)
            windowEnds.append(permutation.count)
        }
        return (permutation, windowEnds)
    }
}
