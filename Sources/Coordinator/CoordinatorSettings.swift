/// Everything `scvae-coordinator` is told on its command line, validated.
public struct CoordinatorSettings: Sendable, Equatable {
    public var workers: Int = 2
    public var minWorkers: Int? = nil
    public var dataPath: String? = nil
    public var config: String = "tiny"
    public var globalBatch: Int = 16
    public var steps: Int? = 20
    public var epochs: Int? = nil
    public var learningRate: Double = 4e-5
    public var seed: UInt64 = 0
    public var listen: String = "tcp://127.0.0.1:5555"
    public var checkpointDir: String? = nil
    public var checkpointEvery: Int = 0
    public var local: Bool = false
    public var metricsPath: String? = nil

    public init() {}

    /// The configuration names SCVAE.md defines.
    public static let configNames = ["tiny", "small", "imagenet-f8", "imagenet-f16"]

    /// Problems a person can act on, one sentence each; empty when the settings are usable.
    public func problems() -> [String] {
        var found: [String] = []
        if workers < 1 { found.append("--workers must be at least 1 (got \(workers)).") }
        if let minWorkers, minWorkers < 1 || minWorkers > workers {
            found.append("--min-workers must be between 1 and --workers (\(workers)); got \(minWorkers).")
        }
        if !Self.configNames.contains(config) {
            found.append("--config must be one of \(Self.configNames.joined(separator: ", ")); got '\(config)'.")
        }
        if globalBatch < workers {
            found.append("--global-batch (\(globalBatch)) must be at least --workers (\(workers)) so every rank gets a sample.")
        }
        if steps != nil && epochs != nil { found.append("Give --steps or --epochs, not both.") }
        if let steps, steps < 1 { found.append("--steps must be at least 1 (got \(steps)).") }
        if let epochs, epochs < 1 { found.append("--epochs must be at least 1 (got \(epochs)).") }
        if !(learningRate > 0 && learningRate.isFinite) { found.append("--lr must be a positive number (got \(learningRate)).") }
        if checkpointEvery < 0 { found.append("--checkpoint-every must be 0 (only at the end) or positive.") }
        if !(listen.hasPrefix("tcp://") || listen.hasPrefix("ipc://")) {
            found.append("--listen must be a ZeroMQ endpoint such as tcp://0.0.0.0:5555 (got '\(listen)').")
        }
        return found
    }
}
