import Data
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
        let bids: [StateAgreement.Bid] = [.replica(step: 41), .none, .replica(step: 42), .replica(step: 42)]
        let reduced = Self.reduce(bids)
        #expect(StateAgreement.bids(reduced, worldSize: 4) == bids)
        let decision = StateAgreement.decide(bids)
        #expect(decision?.source == 2 && decision?.step == 42 && decision?.broadcastNeeded == true)
    }

    @Test func equalReplicasNeedNoBroadcastAndNoReplicaMeansNoDecision() {
        #expect(StateAgreement.decide([.replica(step: 7), .replica(step: 7)])?.broadcastNeeded == false)
        #expect(StateAgreement.decide([.none, .none]) == nil)
    }

    @Test func largeStepsSurviveTheFloatSum() {
        let step = (1 << 31) + 12_345
        let reduced = Self.reduce([.none, .replica(step: step)])
        #expect(StateAgreement.bids(reduced, worldSize: 2) == [.none, .replica(step: step)])
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
        var receiver = RestoreReceiver()
        let model = WeightsFile.namedTensors(source.parameters, layout: layout)
        let moments = WeightsFile.namedTensors(source.optimizer.state.m, layout: layout, prefix: "m.")
            + WeightsFile.namedTensors(source.optimizer.state.v, layout: layout, prefix: "v.")
        for (transfer, tensors) in [(TransferKind.parameters, model), (.optimizerState, moments)] {
            for (i, tensor) in tensors.enumerated() {
                for chunk in TensorChunk.chunks(transfer: transfer, step: 9, tensorIndex: UInt32(i), tensorCount: UInt32(tensors.count),
                                                name: tensor.name, dtype: .float32, shape: tensor.shape.map { UInt64($0) },
                                                bytes: tensor.data, maxChunkBytes: 1000) {
                    try receiver.add(chunk)
                }
            }
        }
        try receiver.finish(CheckpointCommand(action: .restore, step: 9, epoch: 1, optimizerStep: 8))
        let taken = receiver.take()
        let restored = try #require(taken)
        #expect(restored.step == 9 && restored.epoch == 1 && restored.optimizerStep == 8)
        #expect(receiver.take() == nil, "taken once")
        let target = Self.replica(seed: 4)
        try RestoreReceiver.load(restored, into: target)
        #expect(target.parameters == source.parameters)
        #expect(target.optimizer.state.m == source.optimizer.state.m && target.optimizer.state.v == source.optimizer.state.v)
        #expect(target.optimizer.state.step == 8)
    }

    @Test func aRestoreClosedEarlyOrOfAnotherModelIsRefusedWithTheReason() throws {
        var receiver = RestoreReceiver()
        #expect(throws: RestoreReceiver.Failure.self) {
            try receiver.finish(CheckpointCommand(action: .restore, step: 3, epoch: 0))
        }
        let wrong = TensorChunk.chunks(transfer: .parameters, step: 3, tensorIndex: 0, tensorCount: 1, name: "not.a.parameter",
                                       dtype: .float32, shape: [2], bytes: [UInt8](repeating: 0, count: 8))
        for chunk in wrong { try receiver.add(chunk) }
        try receiver.finish(CheckpointCommand(action: .restore, step: 3, epoch: 0))
        let taken = receiver.take()
        let restored = try #require(taken)
        do {
            try RestoreReceiver.load(restored, into: Self.replica(seed: 5))
            Issue.record("a state of other names loaded")
        } catch {
            #expect("\(error)".contains("encoder") || "\(error)".contains("missing"), "\(error)")
        }
    }

    @Test func aReplicaKeepsItsStateWhenOnlyTheMicroBatchChanges() throws {
        let state = ReplicaState()
        let recipe = TrainingRecipe(learningRate: 1e-3, optimizer: "adam", warmupSteps: 0, schedule: "constant",
                                    totalSteps: 10, microBatch: 16, checksumEvery: 5)
        let first = state.prepare(config: .tiny, recipe: recipe, microBatch: 4)
        first.parameters[0] = 42
        state.synchronised(step: 6, runID: 99)
        let resized = state.prepare(config: .tiny, recipe: recipe, microBatch: 8)
        #expect(resized.microBatch == 8 && resized.parameters[0] == 42)
        #expect(state.bid(runID: 99) == .replica(step: 6))
        #expect(state.bid(runID: 100) == .none, "a replica of another coordinator's run bids nothing")
        var sgd = recipe
        sgd.optimizer = "sgd"
        _ = state.prepare(config: .tiny, recipe: sgd, microBatch: 8)
        #expect(state.bid(runID: 99) == .none, "another optimizer starts from nothing")
    }
}
