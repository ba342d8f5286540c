// Optimizers over the flat parameter and gradient buffers (docs/decisions.md, "One flat parameter buffer and one flat gradient buffer"): Adam and plain
// SGD, a warm-up learning-rate schedule, and clipping by the global gradient norm.
//
// Shape legend: N = parameters in the layout; parameters, gradients, m and v are all [N] and share
// the ParameterLayout offsets, so the state can be checkpointed or broadcast as named tensors.
// Every update is one sequential loop: the same inputs give the same bits on every replica.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The learning rate of each update: linear warm-up to `peak`, then constant or a cosine decay.
public struct LearningRateSchedule: Sendable, Equatable, Hashable, Codable {
    public enum Decay: Sendable, Equatable, Hashable, Codable {
        /// Stay at the peak after the warm-up.
        case constant
        /// Half a cosine from the peak at the end of the warm-up to `finalRate` at update `totalSteps`,
        /// then `finalRate`.
        case cosine(totalSteps: Int, finalRate: Float)
    }

    public var peak: Float
    /// Updates 1...warmupSteps ramp linearly: update u uses peak * u / warmupSteps.
    public var warmupSteps: Int
    public var decay: Decay

    public init(peak: Float = 4e-5, warmupSteps: Int = 0, decay: Decay = .constant) {
        precondition(peak >= 0 && warmupSteps >= 0, "learning rate \(peak) and warm-up \(warmupSteps) must be >= 0")
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.decay = decay
    }

    /// The rate for update number `update`, counted from 1 (the first update is 1).
    public func rate(update: Int) -> Float {
        if update <= warmupSteps {
            return Float(Double(peak) * Double(max(update, 0)) / Double(warmupSteps))
        }
        switch decay {
        case .constant:
            return peak
        case .cosine(let totalSteps, let finalRate):
            let span = max(totalSteps - warmupSteps, 1)
            let progress = min(Double(update - warmupSteps) / Double(span), 1)
            return Float(Double(finalRate) + Double(peak - finalRate) * 0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}

public enum OptimizerKind: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
    case adam
    /// Plain SGD, p -= lr * g: no momentum, so runs are comparable across world sizes exactly.
    case sgd
}

/// Adam's constants; the defaults are SC-VAE's (docs/model.md): betas (0.5, 0.9), eps 1e-8, no weight decay.
public struct AdamSettings: Sendable, Equatable, Hashable, Codable {
    public var beta1: Float = 0.5
    public var beta2: Float = 0.9
    public var epsilon: Float = 1e-8
    public init(beta1: Float = 0.5, beta2: Float = 0.9, epsilon: Float = 1e-8) {
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2) && epsilon > 0,
                     "Adam needs betas in [0, 1) and eps > 0, got \(beta1), \(beta2), \(epsilon)")
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }
}

public struct OptimizerSettings: Sendable, Equatable, Hashable, Codable {
    public var kind: OptimizerKind
    public var schedule: LearningRateSchedule
    public var adam: AdamSettings
    /// Clip by global norm: when ||g|| > maxGradientNorm, g is scaled by maxGradientNorm / (||g|| + 1e-6)
    /// (as torch.nn.utils.clip_grad_norm_). nil: no clipping.
    public var maxGradientNorm: Float?

    public init(kind: OptimizerKind = .adam, schedule: LearningRateSchedule = LearningRateSchedule(),
                adam: AdamSettings = AdamSettings(), maxGradientNorm: Float? = nil) {
        self.kind = kind
        self.schedule = schedule
        self.adam = adam
        self.maxGradientNorm = maxGradientNorm
    }
}

/// What an optimizer carries from one update to the next, flat in the parameter layout.
public struct OptimizerState: Sendable, Equatable {
    /// Updates applied so far; the next update is number step + 1 (bias correction, schedule).
    public var step: Int
    /// Adam's first moment [N]; empty for SGD.
    public var m: [Float]
    /// Adam's second moment [N]; empty for SGD.
    public var v: [Float]

    public init(step: Int, m: [Float], v: [Float]) {
        self.step = step
        self.m = m
        self.v = v
    }
}

/// One optimizer over a flat parameter buffer.
public struct Optimizer: Sendable {
    public let settings: OptimizerSettings
    public let parameterCount: Int
    public var state: OptimizerState

    /// A fresh optimizer (step 0, zero moments).
    public init(settings: OptimizerSettings, parameterCount: Int) {
        self.settings = settings
        self.parameterCount = parameterCount
        let moments = settings.kind == .adam ? parameterCount : 0
        state = OptimizerState(step: 0, m: [Float](repeating: 0, count: moments),
                               v: [Float](repeating: 0, count: moments))
    }

    /// An optimizer that continues from a saved state (checkpoint or broadcast).
    public init(settings: OptimizerSettings, parameterCount: Int, state: OptimizerState) {
        let moments = settings.kind == .adam ? parameterCount : 0
        precondition(state.m.count == moments && state.v.count == moments && state.step >= 0,
                     "optimizer state has \(state.m.count)/\(state.v.count) moments, \(settings.kind) needs \(moments)")
        self.settings = settings
        self.parameterCount = parameterCount
        self.state = state
    }

    public struct StepReport: Sendable, Equatable {
        /// False when the gradients were not finite: nothing was changed (docs/decisions.md: such a step
        /// is skipped on every rank, and every rank sees the same reduced gradients).
        public var applied: Bool
        /// The update's number (1 for the first); for a skipped step, the number it would have had.
        public var update: Int
        public var learningRate: Float
        /// ||g||_2 over the whole buffer, before clipping.
        public var gradientNorm: Double
        /// The factor the gradients were multiplied by (1 when not clipped).
        public var clipScale: Float
    }

    /// Applies one update to `parameters` from `gradients` (already averaged). The gradient buffer
    /// is not modified; clipping scales it on the fly. Non-finite gradients change nothing (see
    /// `StepReport.applied`), so one bad batch cannot poison the moments.
    @discardableResult
    public mutating func update(parameters: UnsafeMutableBufferPointer<Float>,
                                gradients: UnsafeBufferPointer<Float>) -> StepReport {
        precondition(parameters.count == parameterCount && gradients.count == parameterCount,
                     "optimizer over \(parameterCount) parameters got \(parameters.count) and \(gradients.count) gradients")
        let update = state.step + 1
        let rate = settings.schedule.rate(update: update)
        let norm = globalNorm(gradients)
        guard norm.isFinite else {
            return StepReport(applied: false, update: update, learningRate: rate, gradientNorm: norm, clipScale: 0)
        }
        var scale: Float = 1
        if let maxNorm = settings.maxGradientNorm, norm > Double(maxNorm) {
            scale = Float(Double(maxNorm) / (norm + 1e-6))
        }
        let p = parameters.baseAddress!, g = gradients.baseAddress!
        switch settings.kind {
        case .sgd:
            for i in 0..<parameterCount { p[i] -= rate * (g[i] * scale) }
        case .adam:
            let beta1 = settings.adam.beta1, beta2 = settings.adam.beta2, epsilon = settings.adam.epsilon
            // Bias correction as torch.optim.Adam writes it: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
            let correction1 = 1 - pow(Double(beta1), Double(update))
            let correction2 = 1 - pow(Double(beta2), Double(update))
            let stepSize = Float(Double(rate) / correction1)
            let rootCorrection2 = Float(correction2.squareRoot())
            state.m.withUnsafeMutableBufferPointer { m in
                state.v.withUnsafeMutableBufferPointer { v in
                    let m = m.baseAddress!, v = v.baseAddress!
                    for i in 0..<parameterCount {
                        let gradient = g[i] * scale
                        m[i] = beta1 * m[i] + (1 - beta1) * gradient
                        v[i] = beta2 * v[i] + (1 - beta2) * gradient * gradient
                        p[i] -= stepSize * m[i] / (v[i].squareRoot() / rootCorrection2 + epsilon)
                    }
                }
            }
        }
        state.step = update
        return StepReport(applied: true, update: update, learningRate: rate, gradientNorm: norm, clipScale: scale)
    }
}

/// ||x||_2, summed in Double in index order (deterministic). Non-finite if any element is.
public func globalNorm(_ values: UnsafeBufferPointer<Float>) -> Double {
    var sum: Double = 0
    for value in values { sum += Double(value) * Double(value) }
    return sum.squareRoot()
}
