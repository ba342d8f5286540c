import Testing
@testable import Dataset

@Suite struct SamplerTests {
    @Test func permutationIsTheDocumentedFisherYates() throws {
        // Computed independently (Python) from the algorithm in Sampler's documentation.
        let sampler = try Sampler(sampleCount: 12, globalBatch: 4, seed: 2024)
        #expect(sampler.permutation(epoch: 5) == [11, 1, 6, 2, 10, 7, 8, 0, 3, 5, 9, 4])
    }

    @Test func eachEpochIsAPermutationAndEpochsDiffer() throws {
        let sampler = try Sampler(sampleCount: 1000, globalBatch: 16, seed: 1)
        let first = sampler.permutation(epoch: 0), second = sampler.permutation(epoch: 1)
        #expect(first.sorted() == Array(0..<1000))
        #expect(second.sorted() == Array(0..<1000))
        #expect(first != second)
        #expect(try Sampler(sampleCount: 1000, globalBatch: 16, seed: 2).permutation(epoch: 0) != first)
        #expect(sampler.permutation(epoch: 0) == first, "the same key gives the same order")
    }

    @Test func ranksSlicesAreDisjointAndCoverTheEpoch() throws {
        for worldSize in 1...5 {
            for globalBatch in [7, 10, 13, 3] {
                let sampler = try Sampler(sampleCount: 53, globalBatch: globalBatch, seed: 11)
                let order = sampler.epoch(4)
                var seen: [Int] = []
                for step in 0..<sampler.stepsPerEpoch {
                    var batch: [Int] = []
                    var sizes: [Int] = []
                    for rank in 0..<worldSize {
                        let slice = order.slice(step: step, rank: rank, worldSize: worldSize)
                        batch += slice
                        sizes.append(slice.count)
                    }
                    #expect(batch == Array(order.batch(step: step)), "N=\(worldSize) G=\(globalBatch): slices in rank order make the batch")
                    #expect(sizes.max()! - sizes.min()! <= 1, "N=\(worldSize) G=\(globalBatch): sizes \(sizes)")
                    seen += batch
                }
                let kept = (53 / globalBatch) * globalBatch
                #expect(seen == Array(order.permutation[0..<kept]), "N=\(worldSize) G=\(globalBatch): covers the first floor(n/G)*G positions")
                #expect(Set(seen).count == seen.count, "no sample twice within an epoch")
            }
        }
    }

    @Test func resumingFromACursorContinuesTheSameSequenceWhateverN() throws {
        let sampler = try Sampler(sampleCount: 40, globalBatch: 6, seed: 5)
        #expect(sampler.stepsPerEpoch == 6)
        func run(from start: SamplerCursor, steps: Int, worldSize: Int) -> [(SamplerCursor, [Int])] {
            var cursor = start
            var out: [(SamplerCursor, [Int])] = []
            for _ in 0..<steps {
                let order = sampler.epoch(cursor.epoch)
                let batch = (0..<worldSize).flatMap { order.slice(step: cursor.step, rank: $0, worldSize: worldSize) }
                out.append((cursor, batch))
                cursor = sampler.advanced(cursor)
            }
            return out
        }
        let full = run(from: SamplerCursor(epoch: 0, step: 0), steps: 20, worldSize: 2)
        #expect(full[6].0 == SamplerCursor(epoch: 1, step: 0), "epochs roll over after floor(n/G) steps")
        for resumeAt in [1, 5, 6, 13] {
            for worldSize in [1, 3, 4] {
                let cursor = sampler.cursor(afterSteps: resumeAt)
                #expect(sampler.stepsBefore(cursor) == resumeAt)
                let resumed = run(from: cursor, steps: 20 - resumeAt, worldSize: worldSize)
                #expect(resumed.map(\.0) == full[resumeAt...].map(\.0))
                #expect(resumed.map(\.1) == full[resumeAt...].map(\.1), "resume at \(resumeAt) with N=\(worldSize)")
            }
        }
    }

    @Test func sliceRangesAndErrors() throws {
        #expect(Sampler.sliceRange(rank: 0, worldSize: 3, globalBatch: 8) == 0..<3)
        #expect(Sampler.sliceRange(rank: 1, worldSize: 3, globalBatch: 8) == 3..<6)
        #expect(Sampler.sliceRange(rank: 2, worldSize: 3, globalBatch: 8) == 6..<8)
        #expect(Sampler.sliceRange(rank: 4, worldSize: 5, globalBatch: 3) == 3..<3, "more ranks than samples: empty slices")
        #expect(throws: SamplerError.invalidGlobalBatch(0)) { try Sampler(sampleCount: 10, globalBatch: 0, seed: 0) }
        #expect(throws: SamplerError.datasetSmallerThanBatch(samples: 3, globalBatch: 4)) {
            try Sampler(sampleCount: 3, globalBatch: 4, seed: 0)
        }
        #expect(SamplerCursor(epoch: 1, step: 0) > SamplerCursor(epoch: 0, step: 9))
    }
}
