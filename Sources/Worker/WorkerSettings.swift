/// Everything `scvae-worker` is told on its command line, validated.
public struct WorkerSettings: Sendable, Equatable {
    public var coordinator: String = "tcp://127.0.0.1:5555"
    public var threads: Int = 1
    public var dataPath: String? = nil
    public var reconnectTimeoutSeconds: Double = 600

    public init() {}

    /// Problems a person can act on, one sentence each; empty when the settings are usable.
    public func problems() -> [String] {
        var found: [String] = []
        if !(coordinator.hasPrefix("tcp://") || coordinator.hasPrefix("ipc://")) {
            found.append("--coordinator must be a ZeroMQ endpoint such as tcp://HOST:5555 (got '\(coordinator)').")
        }
        if threads < 1 { found.append("--threads must be at least 1 (got \(threads)).") }
        if !(reconnectTimeoutSeconds > 0) { found.append("--reconnect-timeout must be positive (got \(reconnectTimeoutSeconds)).") }
        return found
    }
}
