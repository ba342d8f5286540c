import Dataset
import TensorFiles
import Foundation
import Model
import Testing
import Wire
@testable import Worker

/// `--exact-reduction`: N = 1, 2, 3 and 4 workers end with bit-identical weights.
@Suite struct ExactReductionTests {
    static let globalBatch = 8

    /// Endpoints the ranks of one world publish to each other.
    final class Board: @unchecked Sendable {
        private let condition = NSCondition()
        private var endpoints: [String?]
        init(count: Int) { endpoints = Array(repeating: nil, count: count) }

        func publish(_ endpoint: String, rank: Int) {
            condition.lock()
            endpoints[rank] = endpoint
            condition.broadcast()
            condition.unlock()
        }

        func all(within seconds: Double) -> [String]? {
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date(timeIntervalSinceNow: seconds)
            while endpoints.contains(where: { $0 == nil }) {
                guard condition.wait(until: deadline) else { return nil }
            }
            return endpoints.map { $0! }
        }
    }

    struct RankResult {
        var parameters: [Float]
        var state: OptimizerState
    }

    /// `steps` Adam steps of a world of `worldSize` ranks on threads. Each rank reduces as a
    /// worker does: a `RingReducer` over its own collective thread and ZeroMQ ring on TCP (a world
    /// of one too, whose ring returns at once), gradient buckets on, slices and exact slots as
    /// the training loop sets them.
    static func train(worldSize: Int, steps: Int, images: [Float]) -> [RankResult?] {
        let config = TrainingReplicaTests.config, imageFloats = TrainingReplicaTests.imageFloats
        let start = TrainingReplicaTests.initialParameters()
        let context: ZmqContext
        do { context = try ZmqContext() } catch { Issue.record("no ZeroMQ context: \(error)"); return [] }
        let board = Board(count: worldSize)
        let results = Unchecked([RankResult?](repeating: nil, count: worldSize))
        onThreads(worldSize) { rank in
            do {
                let settings = RingSettings(silenceDeadline: .seconds(Deadline.seconds(30)))
                let collectives = try CollectiveThread { () throws(RingError) -> RingCommunicator in
                    try RingCommunicator(context: context, rank: rank, worldSize: worldSize, runID: 7,
                                         bindTo: "tcp://127.0.0.1:*", settings: settings)
                }
                defer { collectives.stop() }
                board.publish(collectives.endpoint, rank: rank)
                guard let endpoints = board.all(within: Deadline.seconds(30)) else {
                    Issue.record("rank \(rank): the other ranks' endpoints never came")
                    return
                }
                _ = try collectives.wait(collectives.connect(toNext: endpoints[(rank + 1) % worldSize]))

                let slice = Sampler.sliceRange(rank: rank, worldSize: worldSize, globalBatch: globalBatch)
                let optimizer = Optimizer(settings: OptimizerSettings(kind: .adam, schedule: LearningRateSchedule(peak: 1e-3)),
                                          parameterCount: start.count)
                let replica = TrainingReplica(model: SCVAEModel(config: config, maxBatch: 4), parameters: start,
                                              optimizer: optimizer, microBatch: 4)
                // Small buckets: were exact mode to use them, every gradient would travel in many.
                replica.bucketElements = 10_000
                // The ranks share this process's OpenBLAS: its thread count stays as it is (the
                // process test below pins it in real workers).
                replica.exactSlots = .init(globalBatch: globalBatch, firstSlot: slice.lowerBound, blasThreads: nil)
                let reducer = RingReducer(collectives: collectives, generation: 1)
                for _ in 0..<steps {
                    let outcome = try images.withUnsafeBufferPointer {
                        try replica.step(images: $0.baseAddress! + slice.lowerBound * imageFloats, count: slice.count,
                                         reducer: reducer)
                    }
                    #expect(outcome.applied && outcome.samples == globalBatch)
                }
                results.value[rank] = RankResult(parameters: replica.parameters, state: replica.optimizer.state)
            } catch {
                Issue.record("rank \(rank) of \(worldSize): \(error)")
            }
        }
        return results.value
    }

    @Test func oneToFourRanksOnTheWorkersReducerEndBitIdentical() throws {
        let images = TrainingReplicaTests.images(Self.globalBatch)
        let worlds = (1...4).map { Self.train(worldSize: $0, steps: 3, images: images) }
        let reference = try #require(worlds[0].first ?? nil, "the world of one trained")
        #expect(reference.parameters != TrainingReplicaTests.initialParameters())
        #expect(reference.state.step == 3)
        for (index, world) in worlds.enumerated() {
            #expect(world.count == index + 1)
            for (rank, result) in world.enumerated() {
                let result = try #require(result, "N=\(index + 1) rank \(rank) trained")
                let differing = zip(result.parameters, reference.parameters).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "N=\(index + 1) rank \(rank): \(differing) parameters differ from N=1")
                #expect(result.state == reference.state, "N=\(index + 1) rank \(rank): Adam's state differs from N=1")
            }
        }
    }
}

extension ProcessTests {
    /// Real workers with the BLAS threads a machine gives them (cores / N: two for a world of
    /// one on two cores, one each for more), given explicitly so that any machine runs the same
    /// case. Exact mode computes the per-sample gradients on one thread whatever the count.
    @Test func exactReductionIsBitIdenticalForOneToFourWorkersWhateverTheirThreads() throws {
        let layout = ParameterLayout(config: .tiny)
        let runs: [(workers: Int, threads: Int)] = [(1, 2), (2, 1), (3, 1), (4, 1), (2, 2)]
        var weights: [[Float]] = []
        for run in runs {
            let folder = try Scratch.folder("exact-n\(run.workers)-t\(run.threads)")
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let coordinator = try Self.coordinator(["--workers", "\(run.workers)", "--local", "--worker-threads", "\(run.threads)",
                                                    "--steps", "10", "--global-batch", "8", "--seed", "4242",
                                                    "--exact-reduction", "--log-every", "10"],
                                                   folder: folder, local: false)
            let status = coordinator.waitForExit(seconds: 240)
            try #require(status == 0, "N=\(run.workers), \(run.threads) thread(s): exit \(status.map(String.init) ?? "none"):\n\(coordinator.output.suffix(4000))")
            weights.append(try WeightsFile.load("\(folder)/final/model.safetensors", layout: layout).parameters)
        }
        #expect(weights[0] != Self.initialParameters(seed: 4242))
        for (run, other) in zip(runs, weights).dropFirst() {
            let differing = layout.entries.filter { entry in
                zip(weights[0][entry.range], other[entry.range]).contains { $0.bitPattern != $1.bitPattern }
            }.map(\.name)
            let differingCount = differing.count
            #expect(differingCount == 0, """
                N=\(run.workers) with \(run.threads) thread(s) differs from N=1 with 2 threads in \(differingCount) of \
                \(layout.entries.count) tensors (first: \(differing.first ?? "-"))
                """)
        }
    }
}
