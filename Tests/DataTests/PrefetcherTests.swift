#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import TensorFiles
@testable import Images
@testable import Dataset

/// Collects values from several threads.
private final class Collector<T>: @unchecked Sendable {
    private let lock = ConditionLock()
    private var items: [T] = []
    func append(_ item: T) { lock.withLock { items.append(item) } }
    var all: [T] { lock.withLock { items } }
}

/// A small sample set with three bad files mixed in.
private func datasetWithBadFiles() throws -> (TemporaryDirectory, DatasetIndex, bad: Set<String>) {
    let directory = TemporaryDirectory()
    let root = try SampleData.ensure(at: directory.path, count: 24, size: 16, seed: 5)
    let good = try BinaryFile.read(root + "/s0_disks/s0_disks_000000.JPEG")
    let relativeRoot = String(root.dropFirst(directory.path.count + 1))
    directory.write([], to: relativeRoot + "/s0_disks/bad_empty.JPEG")
    directory.write(Array("not a picture".utf8), to: relativeRoot + "/s1_stripes/bad_text.JPEG")
    directory.write(Array(good.prefix(good.count / 2)), to: relativeRoot + "/s2_checks/bad_cut.JPEG")
    let index = try DatasetIndex.scan(root: root)
    let bad = Set(index.samples.indices.filter { index.samples[$0].path.contains("/bad_") }.map { index.path(of: $0) })
    return (directory, index, bad)
}

private func drain(_ prefetcher: Prefetcher) -> [PreparedBatch] {
    var batches: [PreparedBatch] = []
    while let batch = prefetcher.next() { batches.append(batch) }
    return batches
}

@Suite struct PrefetcherTests {
    @Test func batchesFollowThePlanSkipAndNameBadFiles() throws {
        let (directory, index, bad) = try datasetWithBadFiles()
        _ = directory
        #expect(index.count == 27 && bad.count == 3)
        let sampler = try Sampler(sampleCount: index.count, globalBatch: 6, seed: 3)
        let transform = ImageTransform(size: 16, mode: .training)
        var allSkipped: [String] = []
        var seen: [Int] = []
        for rank in 0..<2 {
            let plan = TrainingPlan(sampler: sampler, rank: rank, worldSize: 2, start: SamplerCursor(epoch: 0, step: 0), stepCount: 8)
            let warnings = Collector<SampleFailure>()
            let prefetcher = Prefetcher(source: index, transform: transform, plan: plan, onFailure: { warnings.append($0) })
            let batches = drain(prefetcher)
            #expect(batches.count == 8)
            let decoder = ImageDecoder()
            for (k, batch) in batches.enumerated() {
                let planned = try #require(plan.step(k))
                #expect(batch.cursor == planned.cursor)
                #expect(batch.sampleIndices == planned.sampleIndices.filter { !bad.contains(index.path(of: $0)) })
                #expect(batch.failures.map(\.sampleIndex) == planned.sampleIndices.filter { bad.contains(index.path(of: $0)) })
                #expect(batch.images.count == batch.count * transform.outputCount)
                for (slot, sample) in batch.sampleIndices.enumerated() {
                    let image = try decoder.decodeFile(atPath: index.path(of: sample), shorterSideAtLeast: 16)
                    let expected = transform.apply(image, seed: 3, epoch: batch.cursor.epoch, sampleIndex: sample)
                    #expect(Array(batch.images[(slot * transform.outputCount)..<((slot + 1) * transform.outputCount)]) == expected)
                }
                if batch.cursor.epoch == 0 { seen += batch.sampleIndices + batch.failures.map(\.sampleIndex) }
            }
            let failures = batches.flatMap(\.failures)
            #expect(prefetcher.skippedCount == failures.count)
            #expect(Set(warnings.all.map(\.path)) == Set(failures.map(\.path)), "every skip is reported by path")
            #expect(failures.allSatisfy { bad.contains($0.path) && $0.error.file == $0.path })
            allSkipped += failures.map(\.path)
        }
        #expect(Set(seen).count == 24, "epoch 0 of both ranks covers floor(27/6)*6 samples once")
        #expect(allSkipped.allSatisfy { bad.contains($0) })
    }

    @Test func moreThreadsGiveTheSameBatches() throws {
        let (directory, index, _) = try datasetWithBadFiles()
        _ = directory
        let sampler = try Sampler(sampleCount: index.count, globalBatch: 5, seed: 8)
        let transform = ImageTransform(size: 12, mode: .training)
        func run(threads: Int) -> [([Int], [Float])] {
            let plan = TrainingPlan(sampler: sampler, rank: 1, worldSize: 3, start: SamplerCursor(epoch: 1, step: 2), stepCount: 9)
            return drain(Prefetcher(source: index, transform: transform, plan: plan, threads: threads, depth: 3)).map { ($0.sampleIndices, $0.images) }
        }
        let one = run(threads: 1), three = run(threads: 3)
        #expect(one.count == 9)
        #expect(one.map(\.0) == three.map(\.0))
        #expect(one.map(\.1) == three.map(\.1))
    }

    @Test func queueIsBoundedAndStopEndsEarly() throws {
        let (directory, index, _) = try datasetWithBadFiles()
        _ = directory
        let sampler = try Sampler(sampleCount: index.count, globalBatch: 4, seed: 1)
        let plan = TrainingPlan(sampler: sampler, rank: 0, worldSize: 1, start: SamplerCursor(epoch: 0, step: 0))
        let prefetcher = Prefetcher(source: index, transform: ImageTransform(size: 16, mode: .training), plan: plan, threads: 2, depth: 2)
        // The producers fill the queue to its depth (bounded wait), then wait for the consumer.
        func waitUntilFull() -> Bool {
            for _ in 0..<3000 where prefetcher.stepsInFlight < 2 { usleep(10_000) }
            return prefetcher.stepsInFlight == 2
        }
        #expect(waitUntilFull(), "the queue fills to its depth")
        usleep(200_000)
        #expect(prefetcher.stepsInFlight == 2, "producers wait for the consumer instead of running ahead")
        #expect(prefetcher.next() != nil)
        #expect(waitUntilFull(), "taking a batch lets the producers refill one slot")
        usleep(200_000)
        #expect(prefetcher.stepsInFlight == 2)
        prefetcher.stop()
        #expect(prefetcher.next() == nil)
        // An endless plan whose prefetcher is dropped without stop() must not leave threads hanging.
        _ = Prefetcher(source: index, transform: ImageTransform(size: 16, mode: .training), plan: plan, threads: 2)
    }

    @Test func anEvaluationPassCountsEveryBadFileOnceAndDecodesTheRest() throws {
        let (directory, index, bad) = try datasetWithBadFiles()
        _ = directory
        // Every sample once, in index order, 8 per step (the last one shorter).
        let count = index.count
        let plan: @Sendable (Int) -> PlannedStep? = { k in
            guard k * 8 < count else { return nil }
            return PlannedStep(cursor: SamplerCursor(epoch: 0, step: k), sampleIndices: Array((k * 8)..<min((k + 1) * 8, count)))
        }
        let batches = drain(Prefetcher(source: index, transform: ImageTransform(size: 16, mode: .evaluation), seed: 0, plan: plan))
        #expect(batches.map(\.count).reduce(0, +) == index.count - bad.count)
        #expect(batches.flatMap(\.failures).count == bad.count)
    }
}
