import Images
import TensorFiles
/// Background decoding of a rank's batches, so that decoding overlaps compute.
///
/// Producer threads (native threads, not Swift's cooperative pool) claim whole steps in order,
/// decode and transform their samples, and park the result; `next()` hands batches out in step
/// order. At most `depth` steps are claimed but not yet handed out, which bounds memory to
/// `depth` batches. A sample that cannot be read or decoded is left out of its batch, counted,
/// and reported to the failure callback (before its batch is handed out) with its path and
/// reason; the epoch goes on.

/// The samples one rank trains on at one step.
public struct PlannedStep: Sendable, Equatable {
    public let cursor: SamplerCursor
    public let sampleIndices: [Int]

    public init(cursor: SamplerCursor, sampleIndices: [Int]) {
        self.cursor = cursor
        self.sampleIndices = sampleIndices
    }
}

/// A sample left out of its batch.
public struct SampleFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let sampleIndex: Int
    /// The sample's file path (or shard and member name).
    public let path: String
    public let error: ImageError

    public var description: String { "skipped sample \(sampleIndex): \(error)" }
}

/// A decoded, transformed batch: the samples that decoded, in plan order.
public struct PreparedBatch: Sendable {
    public let cursor: SamplerCursor
    /// Indices of the samples in `images`, in the order of the plan.
    public let sampleIndices: [Int]
    /// `sampleIndices.count` images of 3 x S x S floats (CHW, in [-1, 1]), one after another.
    public let images: [Float]
    /// Samples of the plan left out.
    public let failures: [SampleFailure]

    public var count: Int { sampleIndices.count }
}

/// The training steps of one rank: `stepCount` steps from `start` (endless when nil). Safe to
/// call from several threads; keeps the permutations of the last two epochs it was asked for.
public final class TrainingPlan: @unchecked Sendable {
    public let sampler: Sampler
    public let rank: Int
    public let worldSize: Int
    public let start: SamplerCursor
    public let stepCount: Int?
    private let lock = ConditionLock()
    private var orders: [EpochOrder] = []

    public init(sampler: Sampler, rank: Int, worldSize: Int, start: SamplerCursor, stepCount: Int? = nil) {
        precondition(worldSize > 0 && (0..<worldSize).contains(rank), "TrainingPlan: rank \(rank) outside world of \(worldSize)")
        self.sampler = sampler
        self.rank = rank
        self.worldSize = worldSize
        self.start = start
        self.stepCount = stepCount
    }

    /// Step `k` of the plan (0 is `start`), nil past the end.
    public func step(_ k: Int) -> PlannedStep? {
        if let stepCount, k >= stepCount { return nil }
        let cursor = sampler.cursor(afterSteps: sampler.stepsBefore(start) + k)
        let order = epochOrder(cursor.epoch)
        return PlannedStep(cursor: cursor, sampleIndices: Array(order.slice(step: cursor.step, rank: rank, worldSize: worldSize)))
    }

    /// Step `k` with the window (`EpochOrder.windowEnds`) of each of its samples, nil past the end.
    public func stepWithWindows(_ k: Int) -> (step: PlannedStep, windows: [Int])? {
        guard let planned = step(k) else { return nil }
        let order = epochOrder(planned.cursor.epoch)
        let first = planned.cursor.step * sampler.globalBatch
            + Sampler.sliceRange(rank: rank, worldSize: worldSize, globalBatch: sampler.globalBatch).lowerBound
        return (planned, planned.sampleIndices.indices.map { order.window(ofPosition: first + $0) })
    }

    private func epochOrder(_ epoch: Int) -> EpochOrder {
        if let cached = lock.withLock({ orders.first { $0.epoch == epoch } }) { return cached }
        let order = sampler.epoch(epoch)  // computed outside the lock; a racing duplicate is harmless
        lock.withLock {
            if !orders.contains(where: { $0.epoch == epoch }) {
                orders.append(order)
                if orders.count > 2 { orders.removeFirst() }
            }
        }
        return order
    }
}


/// Hands out prepared batches in step order; see the file's documentation. Call `stop()` (or
/// drop the prefetcher) to end the producer threads early.
public final class Prefetcher: Sendable {
    private let engine: PrefetchEngine
    private let threads: [NativeThread]

    /// Starts `threads` producers over `plan` (step k of the run, nil past the end).
    public init(source: any SampleSource, transform: ImageTransform, seed: UInt64,
                plan: @escaping @Sendable (Int) -> PlannedStep?,
                threads threadCount: Int = 1, depth: Int = 2,
                maximumPixels: Int = ImageDecoder.defaultMaximumPixels,
                onFailure: @escaping @Sendable (SampleFailure) -> Void = { _ in }) {
        precondition(threadCount > 0 && depth > 0, "Prefetcher: threads and depth must be positive")
        let engine = PrefetchEngine(source: source, transform: transform, seed: seed, depth: depth, plan: plan,
                                    maximumPixels: maximumPixels, onFailure: onFailure)
        self.engine = engine
        // The threads hold the engine, not the prefetcher, so dropping the prefetcher stops them.
        threads = (0..<threadCount).map { _ in NativeThread { engine.produce() } }
    }

    /// A training prefetcher for one rank.
    public convenience init(source: any SampleSource, transform: ImageTransform, plan: TrainingPlan,
                            threads: Int = 1, depth: Int = 2,
                            maximumPixels: Int = ImageDecoder.defaultMaximumPixels,
                            onFailure: @escaping @Sendable (SampleFailure) -> Void = { _ in }) {
        self.init(source: source, transform: transform, seed: plan.sampler.seed, plan: { plan.step($0) },
                  threads: threads, depth: depth, maximumPixels: maximumPixels, onFailure: onFailure)
    }


    deinit {
        stop()
    }

    /// The next batch in step order, waiting for it if needed; nil after the last step or `stop()`.
    public func next() -> PreparedBatch? { engine.next() }

    /// Samples left out so far.
    public var skippedCount: Int { engine.skippedCount }

    /// Steps claimed by producers but not yet handed out (never more than the depth).
    public var stepsInFlight: Int { engine.stepsInFlight }

    /// Stops the producers and waits for them; pending batches are dropped.
    public func stop() {
        engine.stop()
        for thread in threads { thread.join() }
    }
}

/// The state the producer threads and the consumer share, guarded by one lock.
private final class PrefetchEngine: @unchecked Sendable {
    let source: any SampleSource
    let transform: ImageTransform
    let seed: UInt64
    let depth: Int
    private let plan: @Sendable (Int) -> PlannedStep?
    private let maximumPixels: Int
    private let onFailure: @Sendable (SampleFailure) -> Void

    private let lock = ConditionLock()
    private var claimed = 0
    private var consumed = 0
    private var ready: [Int: PreparedBatch] = [:]
    private var end: Int? = nil
    private var stopped = false
    private var skipped = 0

    init(source: any SampleSource, transform: ImageTransform, seed: UInt64, depth: Int,
         plan: @escaping @Sendable (Int) -> PlannedStep?, maximumPixels: Int,
         onFailure: @escaping @Sendable (SampleFailure) -> Void) {
        self.source = source
        self.transform = transform
        self.seed = seed
        self.depth = depth
        self.plan = plan
        self.maximumPixels = maximumPixels
        self.onFailure = onFailure
    }

    func next() -> PreparedBatch? {
        lock.withLock {
            while ready[consumed] == nil && !stopped && !(end.map { consumed >= $0 } ?? false) {
                lock.wait()
            }
            guard let batch = ready.removeValue(forKey: consumed) else { return nil }
            consumed += 1
            lock.broadcast()
            return batch
        }
    }

    var skippedCount: Int { lock.withLock { skipped } }

    var stepsInFlight: Int { lock.withLock { claimed - consumed } }

    func stop() {
        lock.withLock {
            stopped = true
            ready.removeAll()
            lock.broadcast()
        }
    }

    func produce() {
        let decoder = ImageDecoder(maximumPixels: maximumPixels)
        while true {
            let k: Int? = lock.withLock {
                while !stopped && claimed - consumed >= depth && !(end.map { claimed >= $0 } ?? false) {
                    lock.wait()
                }
                if stopped || (end.map { claimed >= $0 } ?? false) { return nil }
                claimed += 1
                return claimed - 1
            }
            guard let k else { return }
            guard let planned = plan(k) else {
                lock.withLock {
                    end = min(end ?? k, k)
                    lock.broadcast()
                }
                return
            }
            let batch = prepare(planned, decoder: decoder)
            // Reported before the batch is handed out, so that a consumer that has its batch
            // (or the end of the plan) has every report about it.
            for failure in batch.failures { onFailure(failure) }
            lock.withLock {
                ready[k] = batch
                skipped += batch.failures.count
                lock.broadcast()
            }
        }
    }

    private func prepare(_ planned: PlannedStep, decoder: ImageDecoder) -> PreparedBatch {
        let stride = transform.outputCount
        var images = [Float](repeating: 0, count: planned.sampleIndices.count * stride)
        var good: [Int] = []
        var failures: [SampleFailure] = []
        for sample in planned.sampleIndices {
            let path = source.name(of: sample)
            do {
                let bytes = try source.readBytes(of: sample)
                let image = try decoder.decode(bytes, file: path, shorterSideAtLeast: transform.size)
                images.withUnsafeMutableBufferPointer { buffer in
                    let slot = UnsafeMutableBufferPointer(rebasing: buffer[(good.count * stride)..<((good.count + 1) * stride)])
                    transform.apply(image, seed: seed, epoch: planned.cursor.epoch, sampleIndex: sample, into: slot)
                }
                good.append(sample)
            } catch {
                failures.append(SampleFailure(sampleIndex: sample, path: path, error: error))
            }
        }
        images.removeSubrange((good.count * stride)...)
        return PreparedBatch(cursor: planned.cursor, sampleIndices: good, images: images, failures: failures)
    }
}
