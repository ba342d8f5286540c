import Model
import Wire

/// What a worker keeps between generations: its replica (parameters and optimizer state), the
/// steps it has applied, and the coordinator incarnation (run id) it was last synchronised in.
/// A new generation starts from the most advanced replica of the current run
/// (DECISIONS.md, step commit in a ring); a replica of an earlier coordinator never counts.
final class ReplicaState {
    private(set) var replica: TrainingReplica?
    /// Steps applied by `replica`; meaningful only when `replica` is set.
    private(set) var appliedStep = 0
    /// The run id of the coordinator whose generation last synchronised the replica.
    private(set) var runID: UInt64 = 0

    /// This worker's bid in the state agreement of a generation of run `runID`.
    func bid(runID: UInt64) -> StateAgreement.Bid {
        guard replica != nil, self.runID == runID else { return .none }
        return .replica(step: appliedStep)
    }

    /// The replica for `config` and `recipe`, handling slices of up to `microBatch` images. A
    /// replica of another micro-batch keeps its state (the world size changed); one of another
    /// model or optimizer is replaced by a zeroed one that bids nothing until a generation fills it.
    func prepare(config: ModelConfig, recipe: TrainingRecipe, microBatch: Int) -> TrainingReplica {
        let settings = recipe.optimizerSettings
        if let replica, replica.model.config == config, replica.optimizer.settings == settings {
            if replica.microBatch == microBatch { return replica }
            let resized = TrainingReplica(model: SCVAEModel(config: config, maxBatch: microBatch), parameters: replica.parameters,
                                          optimizer: replica.optimizer, microBatch: microBatch)
            self.replica = resized
            return resized
        }
        let layout = ParameterLayout(config: config)
        let made = TrainingReplica(model: SCVAEModel(config: config, maxBatch: microBatch),
                                   parameters: [Float](repeating: 0, count: layout.totalCount),
                                   optimizer: Optimizer(settings: settings, parameterCount: layout.totalCount),
                                   microBatch: microBatch)
        runID = 0
        appliedStep = 0
        replica = made
        return made
    }

    /// The replica now holds the state of `step` agreed in run `runID`.
    func synchronised(step: Int, runID: UInt64) {
        appliedStep = step
        self.runID = runID
    }

    /// The replica is being overwritten: it bids nothing until `synchronised` again.
    func unsynchronise() { runID = 0 }

    /// One more step applied (by the training loop).
    func applied(step: Int) { appliedStep = step }

    /// Drops the replica (its buffers can no longer be trusted).
    func discard() {
        replica = nil
        runID = 0
        appliedStep = 0
    }
}

/// The state agreement that starts a generation of `.replicas` origin: each rank puts its bid
/// (applied step, or none) in its own slots of a small buffer; after an all-reduce (sum) every
/// rank reads every bid and picks the same source: the highest step, the lowest rank among ties.
/// Only one rank writes each slot, so the sum is exact; a step is split in 16-bit halves so
/// any step below 2^32 is an exact float.
enum StateAgreement {
    enum Bid: Equatable {
        case none
        case replica(step: Int)
    }

    static let slotsPerRank = 3

    /// This rank's contribution: zeros except its own slots.
    static func contribution(rank: Int, worldSize: Int, bid: Bid) -> [Float] {
        var buffer = [Float](repeating: 0, count: worldSize * slotsPerRank)
        if case let .replica(step) = bid {
            precondition(step >= 0 && step < 1 << 32, "step \(step) out of range")
            buffer[rank * slotsPerRank] = 1
            buffer[rank * slotsPerRank + 1] = Float(step >> 16)
            buffer[rank * slotsPerRank + 2] = Float(step & 0xFFFF)
        }
        return buffer
    }

    /// Every rank's bid from the reduced buffer.
    static func bids(_ reduced: [Float], worldSize: Int) -> [Bid] {
        (0..<worldSize).map { rank in
            let base = rank * slotsPerRank
            guard reduced[base] == 1 else { return .none }
            return .replica(step: Int(reduced[base + 1]) << 16 | Int(reduced[base + 2]))
        }
    }

    /// The agreed source: the most advanced replica (lowest rank among equals), its step, and
    /// whether any rank lacks that state (then the source must broadcast). Nil when no rank
    /// holds a replica of this run.
    static func decide(_ bids: [Bid]) -> (source: Int, step: Int, broadcastNeeded: Bool)? {
        var best: (rank: Int, step: Int)?
        for (rank, bid) in bids.enumerated() {
            if case let .replica(step) = bid, step > (best?.step ?? -1) { best = (rank, step) }
        }
        guard let best else { return nil }
        let behind = bids.contains { $0 != .replica(step: best.step) }
        return (best.rank, best.step, behind)
    }
}
