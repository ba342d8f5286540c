import Checkpoints
import Foundation
import Testing
import Wire
@testable import Coordinator

/// Validation on the coordinator's side: the sums of the ranks' blocks (`ValidationTracker`),
/// and what the controller does with a complete validation (figures, `DIR/best/`, a validation
/// cut short by a lost rank).
@Suite struct ValidationTrackerTests {
    /// 37 images in blocks of 4: 10 blocks, the last one of 1 image.
    static let plan = ValidationPlan(dataPath: nil, fingerprint: "f", every: 5, images: 37, blockSize: 4, gridImages: 4)

    /// Block `index` with figures that differ from block to block in their low bits, so that
    /// adding them in another order would change the sums.
    static func block(_ index: Int, step: Int = 5) -> ValidationBlock {
        let images = plan.images(ofBlock: index).count
        let x = Double(index + 1) * 0.1 + Double(step) * 1e-3
        return ValidationBlock(index: UInt32(index), images: UInt32(images), loss: x * 1.000001 * Double(images),
                               recon: x * 0.7 * Double(images), latent: x * 0.3 * Double(images),
                               psnr: (20 + x) * Double(images), ssim: (0.5 + x / 10) * Double(images),
                               zeroCodes: UInt64(100 * images - index), codes: UInt64(128 * images))
    }

    static func reports(step: Int, worldSize: Int, tweak: (inout ValidationBlock) -> Void = { _ in }) -> [ValidationReport] {
        (0..<worldSize).map { rank in
            let blocks = plan.blocks(rank: rank, worldSize: worldSize).map { index -> ValidationBlock in
                var block = block(index, step: step)
                tweak(&block)
                return block
            }
            return ValidationReport(rank: UInt32(rank), step: UInt64(step), blocks: blocks,
                                    atomUsage: [UInt64(rank + 1), 2, 0], gridPNG: rank == 0 ? [1, 2, 3] : [], seconds: Double(rank))
        }
    }

    @Test func everyRankGetsContiguousBlocksAndTogetherTheyCoverTheSetOnce() {
        for world in 1...12 {
            let ranges = (0..<world).map { Self.plan.blocks(rank: $0, worldSize: world) }
            #expect(ranges.flatMap { Array($0) } == Array(0..<10), "world \(world): \(ranges)")
        }
        #expect(Self.plan.images(ofBlock: 9) == 36..<37)
    }

    @Test func theFiguresAreTheSameWhateverTheWorldSizeAndComeOnlyWithTheLastBlock() throws {
        var results: [ValidationResult] = []
        for world in [1, 2, 3, 7] {
            var tracker = ValidationTracker(plan: Self.plan, metric: .loss)
            let reports = Self.reports(step: 5, worldSize: world)
            for (rank, report) in reports.enumerated().reversed() {
                let outcome = tracker.add(report, rank: rank, worldSize: world)
                if rank > 0 { #expect(outcome == .incomplete, "world \(world), rank \(rank)") }
                if rank == 0, case let .complete(result, isBest) = outcome {
                    #expect(isBest)
                    results.append(result)
                } else if rank == 0 {
                    Issue.record("world \(world): \(outcome)")
                }
            }
        }
        let first = try #require(results.first)
        for result in results.dropFirst() {
            var same = result
            same.seconds = first.seconds
            same.atomUsage = first.atomUsage
            #expect(same == first, "bit-identical figures whatever N")
        }
        #expect(first.images == 37 && first.skipped == 0 && first.gridPNG == [1, 2, 3])
        let blocks = (0..<10).map { Self.block($0) }
        let loss = blocks.reduce(0.0) { $0 + $1.loss } / 37
        #expect(first.loss == loss, "the sum in block order over every image, divided by their number")
        #expect(first.psnr == blocks.reduce(0.0) { $0 + $1.psnr } / 37)
        let zeros = blocks.reduce(UInt64(0)) { $0 + $1.zeroCodes }
        #expect(first.sparsity == Double(zeros) / Double(128 * 37))
        #expect(results[1].atomUsage == [3, 4, 0] && results[3].seconds == 6, "usage summed, the slowest rank's seconds")
    }

    @Test func reportsThatDoNotFitThePlanAreRejectedAndLeaveNothingBehind() {
        var tracker = ValidationTracker(plan: Self.plan, metric: .loss)
        let reports = Self.reports(step: 5, worldSize: 2)
        func rejected(_ outcome: ValidationTracker.Outcome) -> Bool { if case .rejected = outcome { true } else { false } }
        #expect(rejected(tracker.add(reports[1], rank: 0, worldSize: 2)), "rank 1's blocks from rank 0")
        #expect(rejected(tracker.add(reports[0], rank: 0, worldSize: 3)), "blocks of another world size")
        var short = reports[0]
        short.blocks.removeLast()
        #expect(rejected(tracker.add(short, rank: 0, worldSize: 2)), "a block missing")
        var miscounted = reports[0]
        miscounted.blocks[0].images -= 1
        #expect(rejected(tracker.add(miscounted, rank: 0, worldSize: 2)), "images that do not add up to the block")
        #expect(tracker.add(reports[0], rank: 0, worldSize: 2) == .incomplete)
        #expect(rejected(tracker.add(reports[0], rank: 0, worldSize: 2)), "the same rank twice")
        var otherAtoms = reports[1]
        otherAtoms.atomUsage = [1]
        #expect(rejected(tracker.add(otherAtoms, rank: 1, worldSize: 2)), "another dictionary size")
        guard case .complete = tracker.add(reports[1], rank: 1, worldSize: 2) else { Issue.record("not complete"); return }
        #expect(rejected(tracker.add(reports[1], rank: 1, worldSize: 2)), "a step already validated")
    }

    @Test func theBestIsTheLowestLossOrTheHighestPSNRAndAnEarlierRunsBestCounts() {
        func run(_ metric: BestMetric, previous: BestValidation? = nil) -> [Bool] {
            var tracker = ValidationTracker(plan: Self.plan, metric: metric, best: previous)
            // Loss falls then rises; PSNR rises then falls.
            let offsets: [(step: Int, delta: Double)] = [(5, 0), (10, -0.05), (15, 0.1), (20, -0.02)]
            return offsets.map { step, delta in
                var best = false
                for (rank, report) in Self.reports(step: step, worldSize: 2, tweak: { block in
                    block.loss += delta * Double(block.images)
                    block.psnr -= delta * 100 * Double(block.images)
                }).enumerated() {
                    if case let .complete(_, isBest) = tracker.add(report, rank: rank, worldSize: 2) { best = isBest }
                }
                return best
            }
        }
        #expect(run(.loss) == [true, true, false, false])
        #expect(run(.psnr) == [true, true, false, false])
        #expect(run(.loss, previous: BestValidation(step: 3, metric: .loss, value: 0)) == [false, false, false, false],
                "a restarted coordinator keeps DIR/best/ unless a validation beats it")
        #expect(run(.psnr, previous: BestValidation(step: 3, metric: .loss, value: 0)) == [true, true, false, false],
                "a best chosen by another metric does not count")
    }

    @Test func aValidationCutShortIsDroppedAndRedoneByTheNextGenerationUntilItCompletes() {
        var tracker = ValidationTracker(plan: Self.plan, metric: .loss)
        let reports = Self.reports(step: 10, worldSize: 3)
        #expect(tracker.add(reports[0], rank: 0, worldSize: 3) == .incomplete)
        #expect(tracker.newGeneration() == 10, "the rank holding the rest was lost")
        #expect(tracker.newGeneration() == 10, "a generation that broke before redoing it passes it on")
        let again = Self.reports(step: 10, worldSize: 2)
        #expect(tracker.add(again[0], rank: 0, worldSize: 2) == .incomplete, "none of the old generation's blocks count")
        guard case let .complete(result, _) = tracker.add(again[1], rank: 1, worldSize: 2) else { Issue.record("not complete"); return }
        #expect(result.images == 37)
        #expect(tracker.newGeneration() == nil)
    }
}

@Suite struct ValidationControllerTests {
    typealias H = ControllerHarness
    static let plan = ValidationPlan(dataPath: nil, fingerprint: "f", every: 5, images: 16, blockSize: 4, gridImages: 4)

    static func validate(_ h: inout H, step: Int, loss: Double, ranks: [String] = ["a", "b"]) {
        for (rank, id) in ranks.enumerated() {
            let blocks = plan.blocks(rank: rank, worldSize: ranks.count).map {
                ValidationBlock(index: UInt32($0), images: 4, loss: loss * 4, recon: loss * 2, latent: loss * 2, psnr: 80, ssim: 2,
                                zeroCodes: 10, codes: 20)
            }
            h.send(.validationReport(ValidationReport(rank: UInt32(rank), step: UInt64(step), blocks: blocks, atomUsage: [1, 2],
                                                      gridPNG: rank == 0 ? [9] : [])), from: id)
        }
    }

    var validations: (H) -> [(ValidationResult, Bool)] = { h in
        h.directives.compactMap { if case let .validation(result, best) = $0 { (result, best) } else { nil } }
    }

    @Test func aBetterValidationBecomesBestFromItsCheckpointAndTheFinalOneFromTheFinalState() throws {
        var h = H(workers: 2, steps: 15, checkpointEvery: 0, validation: Self.plan)
        h.hello("a"); h.hello("b")
        #expect(h.controller.plan.recipe.checkpoints(afterStep: 5), "rank 0 uploads after each validation step")
        h.confirmStart()
        let five: [Float] = [5]
        h.completeSteps(1...5, checksum: H.checksum(of: five))
        h.upload(from: "a", step: 5, floats: five)
        guard case .checkpoint? = h.writes.last else { Issue.record("\(h.writes)"); return }
        Self.validate(&h, step: 5, loss: 0.5)
        let first = try #require(validations(h).last)
        #expect(first.0.step == 5 && first.0.loss == 0.5 && first.0.images == 16 && first.0.psnr == 20 && first.1)
        guard case let .best(checkpoint, summary)? = h.writes.last else { Issue.record("\(h.writes)"); return }
        #expect(checkpoint.state.step == 5 && (try? checkpoint.model.first?.floats()) == five && summary.step == 5 && summary.loss == 0.5)
        #expect(h.events.contains(.validation(step: 5, images: 16, skipped: 0, loss: 0.5, psnr: 20, ssim: 0.5, best: true)))

        let ten: [Float] = [10]
        h.completeSteps(6...10, checksum: H.checksum(of: ten))
        h.upload(from: "a", step: 10, floats: ten)
        let writes = h.writes.count
        Self.validate(&h, step: 10, loss: 0.6)
        #expect(validations(h).last?.1 == false && h.writes.count == writes, "a worse validation writes no best")

        let fifteen: [Float] = [15]
        h.completeSteps(11...15, checksum: H.checksum(of: fifteen))
        Self.validate(&h, step: 15, loss: 0.25)
        #expect(validations(h).last?.1 == true && h.writes.count == writes, "the final state is not here yet")
        h.finishAll(at: 15, checksum: H.checksum(of: fifteen))
        h.upload(from: "a", step: 15, floats: fifteen)
        let last = Array(h.writes.suffix(2))
        guard last.count == 2, case let .best(bestCheckpoint, bestSummary) = last[0], case .final = last[1] else {
            Issue.record("\(last)"); return
        }
        #expect(bestCheckpoint.state.step == 15 && bestSummary.step == 15, "best/ from the final state, before the final write")
        h.handle(.writer(.bestWritten(step: 15, path: "/run/best")))
        #expect(h.events.contains(.bestWritten(step: 15, path: "/run/best")))
    }

    @Test func aRankLostDuringAValidationMakesTheNextGenerationValidateThatStepAgain() throws {
        var h = H(workers: 3, minimum: 2, steps: 20, checkpointEvery: 0, validation: Self.plan)
        for id in ["a", "b", "c"] { h.hello(id) }
        h.confirmStart()
        let five: [Float] = [5]
        h.completeSteps(1...5, checksum: H.checksum(of: five))
        h.upload(from: "a", step: 5, floats: five)
        // a and b report their parts; c dies before it reports.
        for (rank, id) in [(0, "a"), (1, "b")] {
            let blocks = Self.plan.blocks(rank: rank, worldSize: 3).map {
                ValidationBlock(index: UInt32($0), images: 4, loss: 1, recon: 0.5, latent: 0.5, psnr: 80, ssim: 2, zeroCodes: 1, codes: 2)
            }
            h.send(.validationReport(ValidationReport(rank: UInt32(rank), step: 5, blocks: blocks, atomUsage: [1])), from: id)
        }
        #expect(validations(h).isEmpty)
        h.advance(3, alive: ["a", "b"])
        let a = try #require(h.assignment(of: "a"))
        #expect(a.generation == 2 && a.worldSize == 2)
        let recipe = try TrainingRecipe.decode(a.settingsJSON)
        #expect(recipe.validateAtStart == 5 && recipe.validates(afterStep: 5))
        h.confirmStart(checksum: H.checksum(of: five))
        Self.validate(&h, step: 5, loss: 0.5)
        let result = try #require(validations(h).last)
        #expect(result.0.step == 5 && result.0.images == 16 && validations(h).count == 1, "one complete validation, from the new generation's ranks")
        guard case let .best(checkpoint, _)? = h.writes.last else { Issue.record("\(h.writes)"); return }
        #expect(checkpoint.state.step == 5, "the checkpoint taken before the loss is still the one validated")
    }
}
