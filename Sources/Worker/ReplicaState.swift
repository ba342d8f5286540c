import Model
import Wire

/// What a worker keeps between generations, and between coordinators: its replica (parameters
/// and optimizer state), the steps it has applied, and the run lineage (`RunLineage.id`) whose
/// state it holds. A new generation starts from the most advanced replica of the lineage, under
/// this coordinator or a restarted one (docs/architecture.md, "Where a generation's state comes
/// from"); a replica of another lineage never counts.
final class ReplicaState {
    private(set) var replica: TrainingReplica?
    /// Steps applied by `replica`; meaningful only when `lineage` is set.
    private(set) var appliedStep = 0
    /// The lineage whose state `replica` holds; nil while it holds none (new, or being overwritten).
    private(set) var lineage: UInt64?

    /// What the hello says of this replica.
    var claim: ReplicaClaim? {
        guard replica != nil, let lineage else { return nil }
        return ReplicaClaim(lineage: lineage, step: UInt64(appliedStep))
    }

    /// This worker's bid in the state agreement of a generation of `lineage`: its step and the
    /// checksum of its parameters (two replicas of one step may differ, if they got there by
    /// different generations; then one of them is broadcast).
    func bid(lineage: UInt64) -> StateAgreement.Bid {
        guard let replica, self.lineage == lineage else { return .none }
        return .replica(step: appliedStep, checksum: parameterChecksum(replica.parameters))
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
        lineage = nil
        appliedStep = 0
        replica = made
        return made
    }

    /// The replica now holds the state of `step` of `lineage`, as every rank of a generation agreed.
    func synchronised(step: Int, lineage: UInt64) {
        appliedStep = step
        self.lineage = lineage
    }

    /// The replica is being overwritten: it bids nothing until `synchronised` again.
    func unsynchronise() { lineage = nil }

    /// One more step applied (by the training loop).
    func applied(step: Int) { appliedStep = step }
}

/// The state agreement that starts a generation of `.replicas` origin: each rank puts its bid
/// (applied step and parameter checksum, or none) in its own slots of a small buffer; after an
/// all-reduce (sum) every rank reads every bid and picks the same source: the highest step, the
/// lowest rank among ties. Only one rank writes each slot, so the sum is exact; steps and
/// checksums are split in 16-bit halves, each an exact float.
enum StateAgreement {
    enum Bid: Equatable {
        case none
        case replica(step: Int, checksum: UInt32)

        var step: Int? { if case let .replica(step, _) = self { step } else { nil } }
    }

    static let slotsPerRank = 5

    /// This rank's contribution: zeros except its own slots.
    static func contribution(rank: Int, worldSize: Int, bid: Bid) -> [Float] {
        var buffer = [Float](repeating: 0, count: worldSize * slotsPerRank)
        if case let .replica(step, checksum) = bid {
            precondition(step >= 0 && step < 1 << 32, "step \(step) out of range")
            let base = rank * slotsPerRank
            buffer[base] = 1
            buffer[base + 1] = Float(step >> 16)
            buffer[base + 2] = Float(step & 0xFFFF)
            buffer[base + 3] = Float(checksum >> 16)
            buffer[base + 4] = Float(checksum & 0xFFFF)
        }
        return buffer
    }

    /// Every rank's bid from the reduced buffer.
    static func bids(_ reduced: [Float], worldSize: Int) -> [Bid] {
        (0..<worldSize).map { rank in
            let base = rank * slotsPerRank
            guard reduced[base] == 1 else { return .none }
            return .replica(step: Int(reduced[base + 1]) << 16 | Int(reduced[base + 2]),
                            checksum: UInt32(reduced[base + 3]) << 16 | UInt32(reduced[base + 4]))
        }
    }

    /// The agreed source: the most advanced replica (lowest rank among equals), its step, and
    /// whether any rank lacks exactly that state (another step, no replica, or the same step with
    /// other parameters): then the source broadcasts. Nil when no rank holds a replica.
    static func decide(_ bids: [Bid]) -> (source: Int, step: Int, broadcastNeeded: Bool)? {
        var best: (rank: Int, step: Int)?
        for (rank, bid) in bids.enumerated() {
            if let step = bid.step, step > (best?.step ?? -1) { best = (rank, step) }
        }
        guard let best else { return nil }
        let behind = bids.contains { $0 != bids[best.rank] }
        return (best.rank, best.step, behind)
    }
}
