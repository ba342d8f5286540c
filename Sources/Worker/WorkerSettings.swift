import Wire

/// Everything `scvae-worker` is told on its command line, validated.
public struct WorkerSettings: Sendable, Equatable {
    public var coordinator: String = "tcp://127.0.0.1:5555"
    public var threads: Int = 1
    public var dataPath: String? = nil
    /// --val-data: this worker's path to the run's validation set, when it differs from the
    /// coordinator's (another mount point); nil: the path the coordinator sends.
    public var validationDataPath: String? = nil
    public var reconnectTimeoutSeconds: Double = 600
    /// Seconds this worker's ring connection to its next rank may take to come up before that
    /// rank's address is reported unreachable (the coordinator then leaves it out).
    public var ringConnectTimeoutSeconds: Double = 30
    /// Index and sample-data cache (default `$XDG_CACHE_HOME/scvae`, else `~/.cache/scvae`).
    public var cacheDirectory: String? = nil
    /// Address the data-plane (ring) socket binds on and advertises; its neighbours connect to
    /// it. Nil: the address of `ringInterface`, else the one whose route reaches the coordinator.
    public var host: String? = nil
    /// The network interface whose IPv4 address the ring uses (like GLOO_SOCKET_IFNAME).
    public var ringInterface: String? = nil
    /// Name of this worker in the run (default `<host>-<pid>`).
    public var workerID: String? = nil
    /// Appends one JSON line per applied step with the samples this rank used (--data-order-log).
    public var dataOrderLogPath: String? = nil
    /// CURVE: a folder with this worker's `NAME.key_secret` and `coordinator.key`.
    public var curveKeys: String? = nil
    /// Allows a ring address reachable from other machines without CURVE.
    public var insecure: Bool = false
    /// Tests only: claim this protocol version in the hello (env SCVAE_FAKE_PROTOCOL_VERSION).
    public var fakeProtocolVersion: UInt16? = nil
    /// Tests only: seconds to wait before each validation block, so a test can stop a worker in
    /// the middle of a validation (env SCVAE_TEST_VALIDATION_PAUSE).
    public var validationPauseSeconds: Double? = nil

    public init() {}

    /// Problems a person can act on, one sentence each; empty when the settings are usable.
    public func problems() -> [String] {
        var found: [String] = []
        if !(coordinator.hasPrefix("tcp://") || coordinator.hasPrefix("ipc://")) {
            found.append("--coordinator must be a ZeroMQ endpoint such as tcp://HOST:5555 (got '\(coordinator)').")
        }
        if threads < 1 { found.append("--threads must be at least 1 (got \(threads)).") }
        if !(reconnectTimeoutSeconds > 0) { found.append("--reconnect-timeout must be positive (got \(reconnectTimeoutSeconds)).") }
        if !(ringConnectTimeoutSeconds > 0 && ringConnectTimeoutSeconds <= 86_400) {
            found.append("--ring-connect-timeout must be between 0 and 86400 seconds (got \(ringConnectTimeoutSeconds)).")
        }
        if let host, host.isEmpty || host.contains("/") { found.append("--host must be an address such as 10.0.0.3 (got '\(host)').") }
        if host != nil && ringInterface != nil { found.append("Give --host or --ring-interface, not both.") }
        if let ringInterface, ringInterface.isEmpty { found.append("--ring-interface must name an interface such as eth0.") }
        if let workerID, workerID.isEmpty { found.append("--worker-id must not be empty.") }
        if let host, let problem = ringAddressProblem(host, how: "--host \(host)") { found.append(problem) }
        return found
    }

    /// Why this worker may not put its ring on `address`: reachable from other machines without
    /// CURVE or --insecure. `how` says where the address came from.
    public func ringAddressProblem(_ address: String, how: String) -> String? {
        guard curveKeys == nil && !insecure && !isLoopbackHost(address) else { return nil }
        return "\(how) makes this worker's ring socket reachable from other machines: give --curve-keys DIR (authenticated, encrypted) or --insecure to accept plain text."
    }

    /// The address the ring binds on and advertises, and where it came from: --host,
    /// --ring-interface, or the address whose route reaches the coordinator.
    public func resolveRingAddress() -> Result<(address: String, source: String), WorkerFailure> {
        if let host { return .success((host, "--host")) }
        if let ringInterface {
            guard let address = LocalAddress.ofInterface(ringInterface) else {
                let names = LocalAddress.interfaceNames().joined(separator: ", ")
                return .failure(.ringAddress("--ring-interface \(ringInterface): no IPv4 address on such an interface (interfaces with one: \(names))"))
            }
            return .success((address, "--ring-interface \(ringInterface)"))
        }
        guard let address = LocalAddress.toward(endpoint: coordinator) else {
            return .failure(.ringAddress("no route from this machine to the coordinator at \(coordinator): give --host ADDRESS or --ring-interface NAME for the ring"))
        }
        return .success((address, "the address that reaches the coordinator"))
    }
}
