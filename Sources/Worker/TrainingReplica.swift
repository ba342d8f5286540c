import Model

/// Sums a float buffer across all ranks, in place; every rank ends with the same bytes.
public protocol GradientReducer: AnyObject {
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
}

/// A reducer that can start summing parts of the buffer while backward is still computing the
/// rest (as PyTorch DDP's gradient buckets do). Parts are queued in the same order on every rank.
public protocol OverlappingReducer: GradientReducer {
    /// Queues the all-reduce of `part` and returns at once; `part` must stay untouched until
    /// `finishAll` returns.
    func startAllReduce(_ part: UnsafeMutableBufferPointer<Float>)
    /// Waits until every queued part is reduced (also after a failure: no part is in use on
    /// return, except after `RingError.bufferStillInUse`), then throws the first failure.
    func finishAll() throws
}

/// The reducer of a world of one: the local sum is the global sum.
public final class SingleRankReducer: GradientReducer {
    public init() {}
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
}

/// What one optimizer step did, seen identically by every rank.
public struct StepOutcome: Sendable, Equatable {
    /// False when a non-finite loss or gradient on some rank made every rank skip the update.
    public var applied: Bool
    /// Samples that contributed, summed over ranks (the divisor of the gradient sum).
    public var samples: Int
    /// Global means over the step's samples.
    public var loss: Double
    public var recon: Double
    public var latent: Double
    /// Fraction of exactly-zero codes over the step's samples.
    public var sparsity: Double
    public var learningRate: Float
    public var gradientNorm: Double
    /// True when some rank asked to stop after this step: every rank sees the same answer, so
    /// all ranks leave the ring at the same step boundary.
    public var stopRequested: Bool = false
}

/// One replica of the model and its optimizer: gradients of the local slice, all-reduced, applied.
///
/// The buffer that is all-reduced is the flat gradient buffer followed by a trailer of
/// statistics, so one collective carries the count of good samples (the divisor), the
/// non-finite flag and the loss terms (docs/decisions.md: the divisor is the global count of samples
/// that decoded; a non-finite value anywhere skips the step on every rank).
public final class TrainingReplica {
    public let model: SCVAEModel
    public var parameters: [Float]
    public var optimizer: Optimizer
    /// Largest number of images one forward/backward handles; a larger slice is accumulated.
    public let microBatch: Int
    private var buffer: [Float]
    /// Reduction buffers libzmq may still read after a failed collective: kept alive, never reused.
    private var abandoned: [[Float]] = []

    private enum Trailer: Int, CaseIterable {
        case samples, nonFinite, loss, recon, latent, zeroCodes, codes, stopRequests
    }

    public var parameterCount: Int { model.layout.totalCount }

    /// After `RingError.bufferStillInUse`: keeps the reduction buffer alive and untouched (libzmq
    /// may still read it) and steps on with a new one.
    public func abandonReductionBuffer() {
        abandoned.append(buffer)
        buffer = [Float](repeating: 0, count: buffer.count)
    }

    public init(model: SCVAEModel, parameters: [Float], optimizer: Optimizer, microBatch: Int) {
        precondition(parameters.count == model.layout.totalCount, "parameter buffer does not match the layout")
        precondition(microBatch >= 1, "micro-batch must hold at least one image")
        self.model = model
        self.parameters = parameters
        self.optimizer = optimizer
        self.microBatch = microBatch
        self.buffer = [Float](repeating: 0, count: model.layout.totalCount + Trailer.allCases.count)
    }

    /// Exact reduction (a verification mode, G times the all-reduce traffic): each sample's
    /// gradient goes to its own slot of a G-slot buffer, the others stay zero, so the all-reduce
    /// only ever adds zeros (exact), and every rank sums the slots in global-batch order. Each
    /// sample's gradient is computed alone (a batch of one) with a fixed number of BLAS threads,
    /// so it has the same bits on every rank: the result is bit-identical whatever N, where the
    /// summed mode differs by float rounding that soft-threshold flips can amplify.
    public struct ExactSlots: Sendable, Equatable {
        public var globalBatch: Int
        /// The slot of this rank's first sample (its slice's start in the global batch).
        public var firstSlot: Int
        /// OpenBLAS threads the per-sample gradients are computed with (nil: the process's count).
        /// OpenBLAS's sums depend on its thread count, and a worker's count follows N (cores / N
        /// by default): on OpenBLAS's AVX2 kernels a world of one with two threads ended 10 steps
        /// away from worlds of two and four with one thread each in every tensor (up to 1.1e-4),
        /// bit-identical to them with one thread. The count is set for the whole process while
        /// the gradients are computed, then put back: pin it in at most one replica per process.
        public var blasThreads: Int?
        public init(globalBatch: Int, firstSlot: Int, blasThreads: Int? = 1) {
            self.globalBatch = globalBatch
            self.firstSlot = firstSlot
            self.blasThreads = blasThreads
        }
    }

    /// Set to reduce exactly (see `ExactSlots`); nil (the default) all-reduces one summed buffer.
    public var exactSlots: ExactSlots?

    /// With an `OverlappingReducer`: gradients are all-reduced in buckets of at most this many
    /// floats, each started as soon as backward has finished the parameters it holds (0: one
    /// all-reduce after backward). Not used in exact-reduction mode.
    public var bucketElements = 4 << 20

    /// One step on this rank's slice of the global batch: `count` images, NCHW in [-1, 1].
    /// `stopRequested` rides in the reduced trailer: if any rank sets it, every rank's outcome says so.
    public func step(images: UnsafePointer<Float>, count: Int, reducer: GradientReducer,
                     stopRequested: Bool = false) throws -> StepOutcome {
        let n = parameterCount
        let slots = exactSlots?.globalBatch ?? 1
        let t = slots * n  // where the trailer starts
        if buffer.count != t + Trailer.allCases.count {
            buffer = [Float](repeating: 0, count: t + Trailer.allCases.count)
        }
        let imageFloats = 3 * model.config.imageSize * model.config.imageSize
        let overlapping = exactSlots == nil && bucketElements > 0 ? reducer as? OverlappingReducer : nil
        let stages = model.backwardStages
        try buffer.withUnsafeMutableBufferPointer { buffer throws in
            StepProfile.measure("zero the gradients") { buffer.update(repeating: 0) }
            var terms = (loss: 0.0, recon: 0.0, latent: 0.0, zero: 0, codes: 0)
            func add(_ l: LossTerms) {
                terms.loss += l.total
                terms.recon += l.recon
                terms.latent += l.latent
                terms.zero += l.zeroCodes
                terms.codes += l.codeCount
            }
            // Overlap: a finished stage's gradients are checked for finiteness (while still
            // local) and queued in buckets; the trailer and any stage not yet sent go last.
            let whole = buffer, bucket = bucketElements
            var sent = Set<Int>()
            var stagesFinite = true
            func send(stage: Int) {
                guard let overlapping, !sent.contains(stage) else { return }
                sent.insert(stage)
                let range = stages[stage]
                stagesFinite = stagesFinite && globalNorm(UnsafeBufferPointer(rebasing: whole[range])).isFinite
                var start = range.lowerBound
                while start < range.upperBound {
                    let end = min(start + bucket, range.upperBound)
                    overlapping.startAllReduce(UnsafeMutableBufferPointer(rebasing: whole[start..<end]))
                    start = end
                }
            }
            parameters.withUnsafeBufferPointer { params in
                if let exact = exactSlots {
                    precondition(exact.firstSlot + count <= exact.globalBatch, "slice runs past the global batch")
                    Self.withBLASThreads(exact.blasThreads) {
                        for j in 0..<count {
                            let slot = (exact.firstSlot + j) * n
                            add(model.forwardBackward(parameters: params, images: images + j * imageFloats, batch: 1,
                                                      gradients: UnsafeMutableBufferPointer(rebasing: buffer[slot..<(slot + n)]),
                                                      gradientScale: 1))
                        }
                    }
                    return
                }
                let gradients = UnsafeMutableBufferPointer(rebasing: buffer[0..<n])
                var done = 0
                while done < count {
                    let part = min(microBatch, count - done)
                    let last = done + part == count
                    add(model.forwardBackward(parameters: params, images: images + done * imageFloats, batch: part,
                                              gradients: gradients, gradientScale: 1,
                                              onStageDone: last && overlapping != nil ? { send(stage: $0) } : nil))
                    done += part
                }
            }
            for stage in stages.indices { send(stage: stage) }
            let finite: Bool
            if overlapping != nil {
                finite = terms.loss.isFinite && stagesFinite
            } else {
                finite = StepProfile.measure("finiteness check") {
                    terms.loss.isFinite && globalNorm(UnsafeBufferPointer(rebasing: buffer[0..<t])).isFinite
                }
            }
            buffer[t + Trailer.samples.rawValue] = Float(count)
            buffer[t + Trailer.nonFinite.rawValue] = finite ? 0 : 1
            buffer[t + Trailer.loss.rawValue] = finite ? Float(terms.loss) : 0
            buffer[t + Trailer.recon.rawValue] = finite ? Float(terms.recon) : 0
            buffer[t + Trailer.latent.rawValue] = finite ? Float(terms.latent) : 0
            buffer[t + Trailer.zeroCodes.rawValue] = Float(terms.zero)
            buffer[t + Trailer.codes.rawValue] = Float(terms.codes)
            buffer[t + Trailer.stopRequests.rawValue] = stopRequested ? 1 : 0
            if let overlapping {
                // Sent parts may already hold non-finite sums; the flag makes every rank skip them.
                overlapping.startAllReduce(UnsafeMutableBufferPointer(rebasing: buffer[t...]))
                try overlapping.finishAll()
                return
            }
            if !finite {
                // Keep the reduced sum finite so every rank sees the flag, not NaN bytes.
                UnsafeMutableBufferPointer(rebasing: buffer[0..<t]).update(repeating: 0)
            }
            try StepProfile.measure("all-reduce") { try reducer.allReduceSum(buffer) }
        }
        if slots > 1 {
            // Sum the slots in global-batch order into slot 0: the same order on every rank and N.
            buffer.withUnsafeMutableBufferPointer { buffer in
                for slot in 1..<slots {
                    let base = slot * n
                    for i in 0..<n { buffer[i] += buffer[base + i] }
                }
            }
        }

        let samples = Int(buffer[t + Trailer.samples.rawValue])
        let skip = buffer[t + Trailer.nonFinite.rawValue] > 0 || samples == 0
        let divisor = Double(max(samples, 1))
        var outcome = StepOutcome(
            applied: !skip, samples: samples,
            loss: Double(buffer[t + Trailer.loss.rawValue]) / divisor,
            recon: Double(buffer[t + Trailer.recon.rawValue]) / divisor,
            latent: Double(buffer[t + Trailer.latent.rawValue]) / divisor,
            sparsity: Double(buffer[t + Trailer.zeroCodes.rawValue]) / Double(max(buffer[t + Trailer.codes.rawValue], 1)),
            learningRate: 0, gradientNorm: 0,
            stopRequested: buffer[t + Trailer.stopRequests.rawValue] > 0)
        guard !skip else { return outcome }
        let inverse = Float(1 / divisor)
        StepProfile.measure("optimizer") {
            buffer.withUnsafeMutableBufferPointer { buffer in
                for i in 0..<n { buffer[i] *= inverse }
                parameters.withUnsafeMutableBufferPointer { params in
                    let report = optimizer.update(parameters: params, gradients: UnsafeBufferPointer(rebasing: buffer[0..<n]))
                    outcome.applied = report.applied
                    outcome.learningRate = report.learningRate
                    outcome.gradientNorm = report.gradientNorm
                }
            }
        }
        return outcome
    }

    /// Runs `body` with OpenBLAS on `threads` threads (nil: as it is), then restores the count.
    private static func withBLASThreads(_ threads: Int?, _ body: () -> Void) {
        let previous = BLAS.threads
        guard let threads, threads != previous else { return body() }
        BLAS.setThreads(threads)
        defer { BLAS.setThreads(previous) }
        body()
    }
}
