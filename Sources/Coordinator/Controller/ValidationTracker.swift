import Wire

/// Which validation figure chooses `DIR/best/` (`--best-metric`).
public enum BestMetric: String, CaseIterable, Sendable, Codable {
    /// The lowest validation loss.
    case loss
    /// The highest validation PSNR.
    case psnr

    /// Whether `candidate` is better than `incumbent` by this metric.
    func prefers(_ candidate: Double, over incumbent: Double) -> Bool {
        switch self {
        case .loss: candidate < incumbent
        case .psnr: candidate > incumbent
        }
    }

    func value(of result: ValidationResult) -> Double {
        switch self {
        case .loss: result.loss
        case .psnr: result.psnr
        }
    }
}

/// The figures of one complete validation: means over every evaluated image of the set.
struct ValidationResult: Equatable, Sendable {
    var step: Int
    var images: Int
    /// Images of the set that could not be read (left out of the means).
    var skipped: Int
    var loss: Double
    var recon: Double
    var latent: Double
    var psnr: Double
    var ssim: Double
    /// Fraction of exactly-zero codes.
    var sparsity: Double
    /// Non-zero codes per atom over the whole set.
    var atomUsage: [UInt64]
    /// Rank 0's reconstruction grid (PNG), empty when it sent none.
    var gridPNG: [UInt8]
    /// The slowest rank's seconds.
    var seconds: Double
}

/// The best validation so far: its step and figure (`DIR/best/summary.json` keeps it across
/// coordinator restarts).
struct BestValidation: Equatable, Sendable {
    var step: Int
    var metric: BestMetric
    var value: Double
}

/// Collects the ranks' `ValidationReport`s of each validated step and, once every block of the
/// set is in, adds the blocks up in block order: the same sums whatever the world size. A pure
/// value: the controller feeds it reports and generation changes.
///
/// A validation is complete only with every block: one cut short by a lost rank is dropped when
/// the next generation starts (`newGeneration` names its step, which that generation validates
/// again before training on), so a figure is never computed from part of the set.
struct ValidationTracker: Equatable {
    let plan: ValidationPlan
    let metric: BestMetric
    private(set) var best: BestValidation?
    /// Steps whose validation completed.
    private(set) var completed: Set<Int> = []
    private var partial: [Int: Partial] = [:]
    /// A validation cut short by the end of a generation, not yet redone.
    private(set) var redo: Int?

    struct Partial: Equatable {
        var blocks: [Int: ValidationBlock] = [:]
        var ranks: Set<UInt32> = []
        var atomUsage: [UInt64]?
        var gridPNG: [UInt8] = []
        var seconds = 0.0
    }

    enum Outcome: Equatable {
        /// Taken; blocks are still missing.
        case incomplete
        case complete(ValidationResult, isBest: Bool)
        /// Dropped, for this reason (a report that does not fit the plan or repeats one).
        case rejected(String)
    }

    init(plan: ValidationPlan, metric: BestMetric, best: BestValidation? = nil) {
        self.plan = plan
        self.metric = metric
        self.best = best?.metric == metric ? best : nil
    }

    /// The validation after `step` that was under way, if any (the newest one).
    var incompleteStep: Int? { partial.keys.max() }

    /// Takes rank `rank`'s report (of a world of `worldSize`).
    mutating func add(_ report: ValidationReport, rank: Int, worldSize: Int) -> Outcome {
        let step = Int(report.step)
        guard report.rank == UInt32(rank) else { return .rejected("it claims rank \(report.rank), the sender is rank \(rank)") }
        guard !completed.contains(step) else { return .rejected("the validation after step \(step) is already complete") }
        let expected = plan.blocks(rank: rank, worldSize: worldSize)
        guard report.blocks.map({ Int($0.index) }) == Array(expected) else {
            return .rejected("blocks \(report.blocks.map(\.index)), rank \(rank) of \(worldSize) evaluates blocks \(expected)")
        }
        for block in report.blocks where Int(block.images) + Int(block.skipped) != plan.images(ofBlock: Int(block.index)).count {
            return .rejected("block \(block.index) counts \(block.images) + \(block.skipped) images, it has \(plan.images(ofBlock: Int(block.index)).count)")
        }
        var entry = partial[step] ?? Partial()
        guard !entry.ranks.contains(report.rank) else { return .rejected("rank \(rank) already reported the validation after step \(step)") }
        if let usage = entry.atomUsage, usage.count != report.atomUsage.count {
            return .rejected("\(report.atomUsage.count) atoms, other ranks counted \(usage.count)")
        }
        entry.ranks.insert(report.rank)
        for block in report.blocks { entry.blocks[Int(block.index)] = block }
        if let usage = entry.atomUsage {
            entry.atomUsage = zip(usage, report.atomUsage).map { $0.addingReportingOverflow($1).partialValue }
        } else {
            entry.atomUsage = report.atomUsage
        }
        if !report.gridPNG.isEmpty { entry.gridPNG = report.gridPNG }
        entry.seconds = max(entry.seconds, report.seconds)
        guard entry.blocks.count == plan.blockCount else {
            partial[step] = entry
            return .incomplete
        }
        partial[step] = nil
        completed.insert(step)
        let result = Self.result(step: step, entry)
        guard result.images > 0, result.loss.isFinite else { return .complete(result, isBest: false) }
        let value = metric.value(of: result)
        let isBest = best.map { metric.prefers(value, over: $0.value) } ?? true
        if isBest { best = BestValidation(step: step, metric: metric, value: value) }
        return .complete(result, isBest: isBest)
    }

    /// A new generation starts: partial validations are dropped. Returns the step of the
    /// validation to redo (the newest one cut short, now or by an earlier generation), which the
    /// generation validates again if it starts from that step.
    mutating func newGeneration() -> Int? {
        if let step = incompleteStep { redo = max(step, redo ?? step) }
        partial.removeAll()
        if let step = redo, completed.contains(step) { redo = nil }
        return redo
    }

    /// Sums in block order, then means over the evaluated images.
    private static func result(step: Int, _ entry: Partial) -> ValidationResult {
        var images = 0, skipped = 0
        var loss = 0.0, recon = 0.0, latent = 0.0, psnr = 0.0, ssim = 0.0
        var zeros: UInt64 = 0, codes: UInt64 = 0
        for index in entry.blocks.keys.sorted() {
            let block = entry.blocks[index]!
            images += Int(block.images)
            skipped += Int(block.skipped)
            loss += block.loss
            recon += block.recon
            latent += block.latent
            psnr += block.psnr
            ssim += block.ssim
            zeros &+= block.zeroCodes
            codes &+= block.codes
        }
        let n = Double(max(images, 1))
        return ValidationResult(step: step, images: images, skipped: skipped, loss: loss / n, recon: recon / n,
                                latent: latent / n, psnr: psnr / n, ssim: ssim / n,
                                sparsity: codes == 0 ? 0 : Double(zeros) / Double(codes),
                                atomUsage: entry.atomUsage ?? [], gridPNG: entry.gridPNG, seconds: entry.seconds)
    }
}
