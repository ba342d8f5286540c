import TensorFiles
import Testing
import Wire
@testable import Coordinator

/// The socket-free parts of failure handling: membership changes, progress across generations,
/// state uploads and the checkpoint schedule.
@Suite struct RecoveryTests {
    @Test func aLostWorkerStartsANewGenerationOfTheSurvivorsAndAJoinerAnother() throws {
        var m = MembershipTests.membership(target: 3, minimum: 2)
        for id in ["a", "b", "c"] { _ = m.receive(hello: MembershipTests.hello(id), now: 0) }
        m.applied(step: 5, by: "a", generation: 1, now: 1)
        m.applied(step: 6, by: "c", generation: 1, now: 1)
        let afterLoss = m.lost("b", now: 2)
        #expect(afterLoss.first == .declaredDown(workerIDs: ["b"], generation: 1))
        let (generation, placements, resume, source) = try #require(MembershipTests.started(afterLoss))
        #expect(generation == 2 && placements.map(\.workerID) == ["a", "c"])
        #expect(resume == 6 && source == 1, "the most advanced replica (c, step 6) is the source")
        let joined = m.receive(hello: MembershipTests.hello("d"), now: 3)
        let (next, again, _, _) = try #require(MembershipTests.started(joined))
        #expect(next == 3 && again.map(\.workerID) == ["a", "c", "d"])
    }

    @Test func belowTheMinimumTrainingPausesUntilAWorkerJoins() throws {
        var m = MembershipTests.membership(target: 2, minimum: 2)
        for id in ["a", "b"] { _ = m.receive(hello: MembershipTests.hello(id), now: 0) }
        #expect(m.lost("b", now: 1).contains(.pause(liveWorkers: 1, minimumWorkers: 2)))
        #expect(m.ranked.isEmpty)
        let (generation, placements, _, _) = try #require(MembershipTests.started(m.receive(hello: MembershipTests.hello("c"), now: 2)))
        #expect(generation == 2 && placements.map(\.workerID) == ["a", "c"])
    }

    @Test func reformingKeepsTheMembersInANewGeneration() throws {
        var m = MembershipTests.membership(target: 2)
        #expect(m.reform().isEmpty, "nothing to reform before the first generation")
        for id in ["a", "b"] { _ = m.receive(hello: MembershipTests.hello(id), now: 0) }
        let (generation, placements, _, _) = try #require(MembershipTests.started(m.reform()))
        #expect(generation == 2 && placements.map(\.workerID) == ["a", "b"])
    }

    @Test func progressOfANewGenerationContinuesFromTheCompletedStepAndNamesLaggards() {
        var progress = RunProgress(worldSize: 3, recipe: RunProgressTests.recipe(total: 20, every: 5), completedStep: 7)
        #expect(progress.report(rank: 0, RunProgressTests.report(rank: 0, step: 7)).isEmpty, "steps before the start are ignored")
        _ = progress.report(rank: 0, RunProgressTests.report(rank: 0, step: 8))
        _ = progress.report(rank: 2, RunProgressTests.report(rank: 2, step: 8))
        #expect(progress.oldestIncompleteStep?.step == 8 && progress.oldestIncompleteStep?.missingRanks == [1])
        let events = progress.report(rank: 1, RunProgressTests.report(rank: 1, step: 8))
        #expect(events.contains { if case .stepCompleted = $0 { true } else { false } })
        #expect(progress.oldestIncompleteStep == nil && progress.lastCompletedStep == 8)
    }

    @Test func checkpointStepsAreChecksumStepsBeforeTheLast() {
        var settings = CoordinatorSettings()
        settings.checksumEvery = 7
        settings.checkpointEvery = 4
        let recipe = TrainingRecipe(settings: settings, totalSteps: 12)
        #expect((1...12).filter(recipe.checkpoints(afterStep:)) == [4, 8])
        #expect((1...12).filter(recipe.comparesChecksum(afterStep:)) == [4, 7, 8, 12])
        settings.checkpointEvery = 0
        #expect((1...12).filter(TrainingRecipe(settings: settings, totalSteps: 12).checkpoints(afterStep:)).isEmpty)
    }

    static func chunks(_ tensors: [NamedTensor], transfer: TransferKind, step: UInt64) -> [TensorChunk] {
        tensors.enumerated().flatMap { i, tensor in
            TensorChunk.chunks(transfer: transfer, step: step, tensorIndex: UInt32(i), tensorCount: UInt32(tensors.count),
                               name: tensor.name, dtype: .float32, shape: tensor.shape.map { UInt64($0) }, bytes: tensor.data,
                               maxChunkBytes: 16)
        }
    }

    @Test func anUploadAssemblesTheStateAndItsChecksumIsTheReplicasParameterChecksum() throws {
        let a = NamedTensor(name: "w", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        let b = NamedTensor(name: "c", shape: [1], floats: [0.5])
        var upload = StateUpload(workerID: "w0", step: 4)
        for chunk in Self.chunks([a, b], transfer: .parameters, step: 4) + Self.chunks([NamedTensor(name: "m.w", shape: [2, 3], floats: [0, 0, 0, 0, 0, 1])], transfer: .optimizerState, step: 4) {
            try upload.add(chunk)
        }
        let done = try upload.finish(CheckpointCommand(action: .uploadComplete, step: 4, epoch: 1, optimizerStep: 3))
        #expect(done.model.map(\.name) == ["w", "c"] && done.optimizer.map(\.name) == ["m.w"])
        #expect(done.step == 4 && done.epoch == 1 && done.optimizerStep == 3)
        // The flat parameter buffer's CRC32C, as every rank computes it.
        #expect(done.parameterChecksum == crc32c(a.data + b.data))

        var other = StateUpload(workerID: "w0", step: 4)
        #expect(throws: CoordinatorFailure.self) { try other.add(Self.chunks([a], transfer: .parameters, step: 5)[0]) }
        #expect(throws: CoordinatorFailure.self) {
            try other.finish(CheckpointCommand(action: .uploadComplete, step: 4, epoch: 1))
        }
    }
}
