import Wire

/// Everything `scvae-worker` is told on its command line, validated.
public struct WorkerSettings: Sendable, Equatable {
    public var coordinator: String = "tcp://127.0.0.1:5555"
    public var threads: Int = 1
    public var dataPath: String? = nil
    public var reconnectTimeoutSeconds: Double = 600
    /// Index and sample-data cache (default `$XDG_CACHE_HOME/scvae`, else `~/.cache/scvae`).
    public var cacheDirectory: String? = nil
    /// Address the data-plane (ring) socket binds on; its neighbours connect to it.
    public var host: String = "127.0.0.1"
    /// Name of this worker in the run (default `<host>-<pid>`).
    public var workerID: String? = nil
    /// Appends one JSON line per applied step with the samples this rank used (--data-order-log).
    public var dataOrderLogPath: String? = nil
    /// CURVE: a folder with this worker's `NAME.key_secret` and `coordinator.key`.
    public var curveKeys: String? = nil
    /// Allows a --host reachable from other machines without CURVE.
    public var insecure: Bool = false
    /// Tests only: claim this protocol version in the hello (env SCVAE_FAKE_PROTOCOL_VERSION).
    public var fakeProtocolVersion: UInt16? = nil

    public init() {}

    /// Problems a person can act on, one sentence each; empty when the settings are usable.
    public func problems() -> [String] {
        var found: [String] = []
        if !(coordinator.hasPrefix("tcp://") || coordinator.hasPrefix("ipc://")) {
            found.append("--coordinator must be a ZeroMQ endpoint such as tcp://HOST:5555 (got '\(coordinator)').")
        }
        if threads < 1 { found.append("--threads must be at least 1 (got \(threads)).") }
        if !(reconnectTimeoutSeconds > 0) { found.append("--reconnect-timeout must be positive (got \(reconnectTimeoutSeconds)).") }
        if host.isEmpty || host.contains("/") { found.append("--host must be an address such as 10.0.0.3 (got '\(host)').") }
        if let workerID, workerID.isEmpty { found.append("--worker-id must not be empty.") }
        if curveKeys == nil && !insecure && !isLoopbackHost(host) {
            found.append("--host \(host) makes this worker's ring socket reachable from other machines: give --curve-keys DIR or --insecure to accept plain text.")
        }
        return found
    }
}
