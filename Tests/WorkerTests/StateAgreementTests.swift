
import Model
import Testing
import Wire
@testable import Worker

@Suite struct StateAgreementTests {
    /// Every rank's contribution summed, as the all-reduce would.
    static func reduce(_ bids: [StateAgreement.Bid]) -> [Float] {
        let parts = bids.enumerated().map { StateAgreement.contribution(rank: $0.offset, worldSize: bids.count, bid: $0.element) }
        return parts.dropFirst().reduce(parts[0]) { zip($0, $1).map { $0 + $1 } }
    }

    @Test func everyRankReadsEveryBidAndPicksTheMostAdvancedReplicaLowestRankFirst() {
        let bids: [StateAgreement.Bid] = [.replica(step: 41, checksum: 1), .none, .replica(step: 42, checksum: 0xFFFF_FFFF),
                                          .replica(step: 42, checksum: 0xFFFF_FFFF)]
        let reduced = Self.reduce(bids)
        #expect(StateAgreement.bids(reduced, worldSize: 4) == bids)
        let decision = StateAgreement.decide(bids)
        #expect(decision?.source == 2 && decision?.step == 42 && decision?.broadcastNeeded == true)
    }

    @Test func equalReplicasNeedNoBroadcastAndNoReplicaMeansNoDecision() {
        #expect(StateAgreement.decide([.replica(step: 7, checksum: 5), .replica(step: 7, checksum: 5)])?.broadcastNeeded == false)
        #expect(StateAgreement.decide([.none, .none]) == nil)
    }

    /// Two replicas can reach one step along different generations (one rank applied a step its
    /// ring then lost; the other recomputed it with fewer ranks): their parameters differ, so the
    /// generation must not start from both.
    @Test func replicasOfOneStepWithDifferentParametersAreMadeEqualByABroadcast() {
        let bids: [StateAgreement.Bid] = [.replica(step: 9, checksum: 0xAAAA_0001), .replica(step: 9, checksum: 0xAAAA_0002)]
        let decision = StateAgreement.decide(StateAgreement.bids(Self.reduce(bids), worldSize: 2))
        #expect(decision?.source == 0 && decision?.step == 9 && decision?.broadcastNeeded == true)
    }

    @Test func largeStepsAndChecksumsSurviveTheFloatSum() {
        let step = (1 << 31) + 12_345
        let reduced = Self.reduce([.none, .replica(step: step, checksum: 0xFFFF_FFFE)])
        #expect(StateAgreement.bids(reduced, worldSize: 2) == [.none, .replica(step: step, checksum: 0xFFFF_FFFE)])
    }

    static func replica(seed: UInt64, optimizer: OptimizerKind = .adam) -> TrainingReplica {
        let layout = ParameterLayout(config: .tiny)
        var parameters = [Float](repeating: 0, count: layout.totalCount)
        parameters.withUnsafeMutableBufferPointer { initializeParameters($0, layout: layout, config: .tiny, seed: seed) }
        let settings = OptimizerSettings(kind: optimizer)
        var state = Optimizer(settings: settings, parameterCount: layout.totalCount).state
        state.step = 1234
        for i in state.m.indices { state.m[i] = Float(i % 97) * 0.01; state.v[i] = Float(i % 89) * 0.001 }
        return TrainingReplica(model: SCVAEModel(config: .tiny, maxBatch: 2), parameters: parameters,
                               optimizer: Optimizer(settings: settings, parameterCount: layout.totalCount, state: state), microBatch: 2)
    }

    @Test func theStateVectorCarriesParametersMomentsAndBothCountsExactly() {
        let source = Self.replica(seed: 1)
        let vector = StateVector.pack(source, appliedStep: 70_000)
        let target = Self.replica(seed: 2)
        target.optimizer = Optimizer(settings: target.optimizer.settings, parameterCount: target.parameterCount)
        #expect(StateVector.unpack(vector, into: target) == 70_000)
        #expect(target.parameters == source.parameters)
        #expect(target.optimizer.state == source.optimizer.state)
    }

    @Test func aRestoreLoadsTheNamedTensorsTheCoordinatorSends() throws {
        let source = Self.replica(seed: 3)
        let layout = source.model.layout
        var receiver = RestoreStash()
        let model = WeightsFile.namedTensors(source.parameters, layout: layout)
        let moments = WeightsFile.namedTensors(source.optimizer.state.m, layout: layout, prefix: "m.")
            + WeightsFile.namedTensors(source.optimizer.state.v, layout: layout, prefix: "v.")
        for (transfer, tensors) in [(TransferKind.parameters, model), (.optimizerState, moments)] {
            for (i, tensor) in tensors.enumerated() {
                for chunk in TensorChunk.chunks(transfer: transfer, step: 9, tensorIndex: UInt32(i), tensorCount: UInt32(tensors.count),
                                                name: tensor.name, dtype: .float32, shape: tensor.shape.map { UInt64($0) },
                                                bytes: tensor.data, maxChunkBytes: 1000) {
                    try receiver.add(chunk, generation: 4)
                }
            }
        }
        try receiver.finish(CheckpointCommand(action: .restore, step: 9, epoch: 1, optimizerStep: 8), generation: 4)
        #expect(receiver.take(step: 8, generation: 4) == nil, "a restore is taken for its own step only")
        #expect(receiver.take(step: 9, generation: 3) == nil, "and by the generation it was sent for (a newer one's stays for it)")
        let taken = receiver.take(step: 9, generation: 4)
        let restored = try #require(taken)
        #expect(restored.step == 9 && restored.epoch == 1 && restored.optimizerStep == 8)
        #expect(receiver.take(step: 9, generation: 4) == nil, "taken once")
        let target = Self.replica(seed: 4)
        try RestoreStash.load(restored, into: target)
        #expect(target.parameters == source.parameters)
        #expect(target.optimizer.state.m == source.optimizer.state.m && target.optimizer.state.v == source.optimizer.state.v)
        #expect(target.optimizer.state.step == 8)
    }

    @Test func aRestoreClosedEarlyOrOfAnotherModelIsRefusedWithTheReason() throws {
        var receiver = RestoreStash()
        #expect(throws: RestoreStash.Failure.self) {
            try receiver.finish(CheckpointCommand(action: .restore, step: 3, epoch: 0), generation: 1)
        }
        let wrong = TensorChunk.chunks(transfer: .parameters, step: 3, tensorIndex: 0, tensorCount: 1, name: "not.a.parameter",
                                       dtype: .float32, shape: [2], bytes: [UInt8](repeating: 0, count: 8))
        for chunk in wrong { try receiver.add(chunk, generation: 1) }
        try receiver.finish(CheckpointCommand(action: .restore, step: 3, epoch: 0), generation: 1)
        let taken = receiver.take(step: 3, generation: 1)
        let restored = try #require(taken)
        do {
            try RestoreStash.load(restored, into: Self.replica(seed: 5))
            Issue.record("a state of other names loaded")
        } catch {
            #expect("\(error)".contains("encoder") || "\(error)".contains("missing"), "\(error)")
        }
    }

    /// The transfer for generation 5 starts while generation 4's was half sent (that generation
    /// was replaced): the half-sent one is dropped, the new one completes; a closing command of
    /// the old generation completes nothing.
    @Test func aRestoreForANewerGenerationReplacesAHalfSentOne() throws {
        let tensor = (name: "w", shape: [4], bytes: [UInt8](repeating: 1, count: 16))
        let second = (name: "c", shape: [1], bytes: [UInt8](repeating: 2, count: 4))
        var stash = RestoreStash()
        let old = TensorChunk.chunks(transfer: .parameters, step: 7, float32: [tensor, second])
        try stash.add(old[0], generation: 4)
        for chunk in TensorChunk.chunks(transfer: .parameters, step: 7, float32: [tensor, second]) {
            try stash.add(chunk, generation: 5)
        }
        #expect(throws: RestoreStash.Failure.self) {
            try stash.finish(CheckpointCommand(action: .restore, step: 7, epoch: 0), generation: 4)
        }
        for chunk in TensorChunk.chunks(transfer: .parameters, step: 7, float32: [tensor, second]) {
            try stash.add(chunk, generation: 5)
        }
        try stash.finish(CheckpointCommand(action: .restore, step: 7, epoch: 0), generation: 5)
        let taken = stash.take(step: 7, generation: 5)
        let restored = try #require(taken)
        #expect(restored.parameters.map(\.name) == ["w", "c"])
    }

    @Test func aReplicaKeepsItsStateWhenOnlyTheMicroBatchChanges() throws {
        let state = ReplicaState()
        let recipe = TrainingRecipe(learningRate: 1e-3, optimizer: "adam", warmupSteps: 0, schedule: "constant",
                                    totalSteps: 10, microBatch: 16, checksumEvery: 5)
        let first = state.prepare(config: .tiny, recipe: recipe, microBatch: 4)
        first.parameters[0] = 42
        state.synchronised(step: 6, lineage: 99)
        let resized = state.prepare(config: .tiny, recipe: recipe, microBatch: 8)
        #expect(resized.microBatch == 8 && resized.parameters[0] == 42)
        #expect(state.bid(lineage: 99) == .replica(step: 6, checksum: parameterChecksum(resized.parameters)))
        #expect(state.claim == ReplicaClaim(lineage: 99, step: 6), "the hello claims it")
        #expect(state.bid(lineage: 100) == .none, "a replica of another lineage bids nothing")
        state.unsynchronise()
        #expect(state.claim == nil && state.bid(lineage: 99) == .none, "a replica being overwritten claims nothing")
        state.synchronised(step: 6, lineage: 99)
        var sgd = recipe
        sgd.optimizer = "sgd"
        _ = state.prepare(config: .tiny, recipe: sgd, microBatch: 8)
        #expect(state.bid(lineage: 99) == .none, "another optimizer starts from nothing")
    }
}
