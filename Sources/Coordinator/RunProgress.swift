import Wire

/// The coordinator's view of training progress, as a value with no I/O (an Instance): it takes
/// the workers' step reports and statuses and says when a step is complete on every rank, when
/// replicas disagree, and when the run has finished.
///
/// Each rank of a generation sends two `WorkerStatus`es: one after the parameters were broadcast
/// (the start) and one after its last step (the end); in between, one `StepReport` per step.
/// Checksums are compared at the start, at the steps the recipe names, and at the end
/// (docs/decisions.md, "Bit-identical replicas"): any difference is an error naming the ranks.
public struct RunProgress: Sendable {
    /// One step as every rank saw it.
    public struct StepSummary: Equatable, Sendable {
        /// Steps completed (the report of step 1 is the first).
        public var step: Int
        public var epoch: Int
        /// Global means over the step's samples (identical on every rank: they come from the all-reduce).
        public var loss: Double
        public var recon: Double
        public var latent: Double
        public var sparsity: Double
        public var learningRate: Double
        /// False when the step was skipped (non-finite loss or gradient).
        public var applied: Bool
        /// Images that decoded, summed over ranks.
        public var samples: Int
        /// Per-phase seconds, the maximum over ranks (the slowest rank sets the pace).
        public var dataSeconds: Double
        public var computeSeconds: Double
        /// All-reduce time exposed (waited for after backward), and hidden behind backward.
        public var allReduceSeconds: Double
        public var hiddenAllReduceSeconds: Double = 0
        /// The slowest rank's whole step.
        public var stepSeconds: Double

        public var imagesPerSecond: Double { stepSeconds > 0 ? Double(samples) / stepSeconds : 0 }
    }

    public enum Event: Equatable, Sendable {
        /// All ranks hold the same parameters at `step` (0: the start).
        case replicasAgree(step: Int, checksum: UInt32)
        case stepCompleted(StepSummary)
        /// Ranks hold different parameters after `step`: checksums by rank.
        case checksumMismatch(step: Int, checksums: [Int: UInt32])
        /// Every rank stopped after `step` with the same parameters; the run can be finished.
        case finished(step: Int, epoch: Int, checksum: UInt32)
        /// Ranks stopped after different steps (by rank): their replicas cannot be the same.
        case finalStepsDiffer(steps: [Int: Int])
    }

    public let worldSize: Int
    public let recipe: TrainingRecipe
    public private(set) var lastCompletedStep = 0
    private var started: [Int: UInt32] = [:]
    private var ended: [Int: (step: Int, epoch: Int, checksum: UInt32)] = [:]
    private var pending: [Int: [Int: StepReport]] = [:]

    /// The progress of one generation of `worldSize` ranks, after `completedStep` steps were
    /// completed by earlier generations (or the checkpoint resumed from).
    public init(worldSize: Int, recipe: TrainingRecipe, completedStep: Int = 0) {
        self.worldSize = worldSize
        self.recipe = recipe
        self.lastCompletedStep = completedStep
    }

    /// How far beyond the last completed step a report is kept.
    static let pendingWindow = 8

    /// The ranks all started from `step`, which the coordinator had guessed otherwise (a step
    /// completed while the generation was being formed): count from there.
    public mutating func rebase(completedStep step: Int) {
        lastCompletedStep = step
        pending = pending.filter { $0.key > step && $0.key <= step + Self.pendingWindow }
    }

    /// The oldest step some ranks reported and others not yet: the step and the ranks missing.
    public var oldestIncompleteStep: (step: Int, missingRanks: [Int])? {
        guard let step = pending.keys.min(), let reported = pending[step] else { return nil }
        return (step, (0..<worldSize).filter { reported[$0] == nil })
    }

    /// True once every rank has reported its start status.
    public var allStarted: Bool { started.count == worldSize }

    /// The ranks that have not confirmed the generation's start yet.
    public var ranksNotStarted: [Int] { (0..<worldSize).filter { started[$0] == nil } }

    /// A rank's `WorkerStatus`: the first is its start, the second its end.
    public mutating func status(rank: Int, lastAppliedStep: Int, epoch: Int, checksum: UInt32) -> [Event] {
        guard (0..<worldSize).contains(rank) else { return [] }
        if started[rank] == nil {
            started[rank] = checksum
            guard started.count == worldSize else { return [] }
            return [compare(started, step: lastAppliedStep, agreed: { .replicasAgree(step: lastAppliedStep, checksum: $0) })]
        }
        guard ended[rank] == nil else { return [] }
        ended[rank] = (lastAppliedStep, epoch, checksum)
        guard ended.count == worldSize else { return [] }
        let steps = ended.mapValues(\.step)
        guard Set(steps.values).count == 1 else { return [.finalStepsDiffer(steps: steps)] }
        let first = ended[0]!
        return [compare(ended.mapValues(\.checksum), step: first.step,
                        agreed: { .finished(step: first.step, epoch: first.epoch, checksum: $0) })]
    }

    /// A rank's report of one step.
    public mutating func report(rank: Int, _ report: StepReport) -> [Event] {
        // Ranks are at most a step apart (the ring keeps them in lockstep): a report far ahead is
        // not kept, so a bogus one cannot grow `pending`.
        guard let step = Int(exactly: report.step), (0..<worldSize).contains(rank), step > lastCompletedStep,
              step <= lastCompletedStep + Self.pendingWindow else { return [] }
        pending[step, default: [:]][rank] = report
        guard let reports = pending[step], reports.count == worldSize else { return [] }
        pending[step] = nil
        lastCompletedStep = max(lastCompletedStep, step)
        var events: [Event] = [.stepCompleted(summary(step: step, reports))]
        if recipe.comparesChecksum(afterStep: step) {
            events.append(compare(reports.mapValues(\.parameterChecksum), step: step, agreed: { .replicasAgree(step: step, checksum: $0) }))
        }
        return events
    }

    private func compare(_ checksums: [Int: UInt32], step: Int, agreed: (UInt32) -> Event) -> Event {
        Set(checksums.values).count == 1 ? agreed(checksums.values.first!) : .checksumMismatch(step: step, checksums: checksums)
    }

    private func summary(step: Int, _ reports: [Int: StepReport]) -> StepSummary {
        let any = reports[0] ?? reports.values.first!
        func term(_ name: String) -> Double { any.lossTerms.first { $0.name == name }?.value ?? 0 }
        let timings = reports.values.map(\.timings)
        return StepSummary(
            step: step, epoch: Int(any.epoch), loss: term("loss"), recon: term("recon"), latent: term("latent"),
            sparsity: term("sparsity"), learningRate: term("lr"), applied: term("applied") != 0,
            samples: reports.values.reduce(0) { $0 + Int($1.goodSamples) },
            dataSeconds: timings.map(\.dataSeconds).max() ?? 0,
            computeSeconds: timings.map(\.computeSeconds).max() ?? 0,
            allReduceSeconds: timings.map(\.allReduceSeconds).max() ?? 0,
            hiddenAllReduceSeconds: timings.map(\.hiddenAllReduceSeconds).min() ?? 0,
            stepSeconds: timings.map { $0.dataSeconds + $0.computeSeconds + $0.allReduceSeconds }.max() ?? 0)
    }
}

extension RunProgress.Event {
    /// The sentence for a checksum mismatch: every rank's checksum, and which differ from rank 0.
    public static func describeMismatch(step: Int, checksums: [Int: UInt32]) -> String {
        let listed = checksums.keys.sorted().map { "rank \($0) 0x\(String(checksums[$0]!, radix: 16))" }.joined(separator: ", ")
        let reference = checksums[0]
        let differing = checksums.keys.sorted().filter { checksums[$0] != reference }
        return "parameter checksums differ after step \(step): \(listed); ranks \(differing.map(String.init).joined(separator: ", ")) differ from rank 0"
    }
}
