import Launch

/// Defaults that schedulers and launchers put in the environment (Slurm, Kubernetes, torchrun's
/// MASTER_ADDR / MASTER_PORT / WORLD_SIZE, OpenMP's thread count), for options not given on the
/// command line. A flag always wins. The resolution is pure: the environment, the CPU allowance
/// and the host name come in as values, so every rule is tested without a machine. The order of
/// each option is in docs/launching.md.

/// A value and where it came from ("--threads", "SLURM_CPUS_PER_TASK", "the default").
public struct Resolved<Value: Sendable & Equatable>: Sendable, Equatable {
    public var value: Value
    public var source: String

    public init(_ value: Value, from source: String) {
        self.value = value
        self.source = source
    }
}

/// An environment variable that cannot be used, with what to do about it.
public enum LaunchEnvironmentError: Error, Equatable, CustomStringConvertible {
    /// A count (threads, workers, a task number) that is not a whole number of at least `minimum`.
    case notACount(variable: String, value: String, minimum: Int)
    /// An endpoint variable that is not tcp://HOST:PORT or ipc://PATH.
    case notAnEndpoint(variable: String, value: String)
    /// A port variable that is not a number from 1 to 65535.
    case notAPort(variable: String, value: String)
    /// MASTER_PORT is set but MASTER_ADDR is not, so there is no host to connect to.
    case portWithoutAddress(port: String)

    public var description: String {
        switch self {
        case let .notACount(variable, value, minimum):
            "\(variable)=\(value) is not a whole number of at least \(minimum): set it to one, unset it, or give the option on the command line (it wins over the environment)."
        case let .notAnEndpoint(variable, value):
            "\(variable)=\(value) is not a ZeroMQ endpoint such as tcp://HOST:5555: fix it, unset it, or give the option on the command line."
        case let .notAPort(variable, value):
            "\(variable)=\(value) is not a port from 1 to 65535: fix it, unset it, or give the option on the command line."
        case let .portWithoutAddress(port):
            "MASTER_PORT=\(port) is set but MASTER_ADDR is not: set MASTER_ADDR to the coordinator's host, or give --coordinator tcp://HOST:PORT."
        }
    }
}

/// `scvae-worker`'s --threads, --coordinator and --worker-id.
public struct WorkerLaunchDefaults: Sendable, Equatable {
    public var threads: Resolved<Int>
    public var coordinator: Resolved<String>
    public var workerID: Resolved<String>

    /// The flags as given (nil: not on the command line), the process's environment and CPUs,
    /// its host name and process id (for the default worker id).
    public static func resolve(threads threadsFlag: Int?, coordinator coordinatorFlag: String?, workerID workerIDFlag: String?,
                               environment: [String: String], cpus: CPUAllowance, host: String, pid: Int32) throws(LaunchEnvironmentError) -> Self {
        let env = Environment(environment)
        let threads: Resolved<Int>
        if let threadsFlag {
            threads = Resolved(threadsFlag, from: "--threads")
        } else if let found = try env.firstCount(of: ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SLURM_CPUS_PER_TASK"], minimum: 1) {
            threads = found
        } else {
            threads = Resolved(cpus.usable, from: cpus.explanation)
        }

        let coordinator: Resolved<String>
        if let coordinatorFlag {
            coordinator = Resolved(coordinatorFlag, from: "--coordinator")
        } else if let endpoint = env["SCVAE_COORDINATOR"] {
            guard isEndpoint(endpoint, portRange: 1...65535) else { throw .notAnEndpoint(variable: "SCVAE_COORDINATOR", value: endpoint) }
            coordinator = Resolved(endpoint, from: "SCVAE_COORDINATOR")
        } else if let address = env["MASTER_ADDR"] {
            let port = try env.port("MASTER_PORT")
            coordinator = Resolved("tcp://\(hostForEndpoint(address)):\(port ?? 5555)",
                                   from: port == nil ? "MASTER_ADDR, port 5555" : "MASTER_ADDR and MASTER_PORT")
        } else if let port = env["MASTER_PORT"] {
            throw .portWithoutAddress(port: port)
        } else {
            coordinator = Resolved("tcp://127.0.0.1:5555", from: "the default")
        }

        let workerID: Resolved<String>
        if let workerIDFlag {
            workerID = Resolved(workerIDFlag, from: "--worker-id")
        } else if let task = try env.firstCount(of: ["SLURM_PROCID"], minimum: 0) {
            workerID = Resolved("\(host)-task\(task.value)", from: "SLURM_PROCID")
        } else if let pod = env["POD_NAME"] {
            workerID = Resolved(pod, from: "POD_NAME")
        } else {
            workerID = Resolved("\(host)-\(pid)", from: "host name and process id")
        }
        return Self(threads: threads, coordinator: coordinator, workerID: workerID)
    }

    /// The start-up log line: "threads 4 (from SLURM_CPUS_PER_TASK), coordinator ... (from ...), ...".
    public var logLine: String {
        "threads \(threads.value) (from \(threads.source)), coordinator \(coordinator.value) (from \(coordinator.source)), worker id \(workerID.value) (from \(workerID.source))"
    }
}

/// `scvae-coordinator`'s --workers and --listen.
public struct CoordinatorLaunchDefaults: Sendable, Equatable {
    public var workers: Resolved<Int>
    public var listen: Resolved<String>

    public static func resolve(workers workersFlag: Int?, listen listenFlag: String?,
                               environment: [String: String]) throws(LaunchEnvironmentError) -> Self {
        let env = Environment(environment)
        let workers: Resolved<Int>
        if let workersFlag {
            workers = Resolved(workersFlag, from: "--workers")
        } else if let found = try env.firstCount(of: ["WORLD_SIZE", "SLURM_NTASKS"], minimum: 1) {
            workers = found
        } else {
            workers = Resolved(2, from: "the default")
        }

        let listen: Resolved<String>
        if let listenFlag {
            listen = Resolved(listenFlag, from: "--listen")
        } else if let endpoint = env["SCVAE_LISTEN"] {
            guard isEndpoint(endpoint, portRange: 0...65535) else { throw .notAnEndpoint(variable: "SCVAE_LISTEN", value: endpoint) }
            listen = Resolved(endpoint, from: "SCVAE_LISTEN")
        } else if let port = try env.port("MASTER_PORT") {
            listen = Resolved("tcp://0.0.0.0:\(port)", from: "MASTER_PORT")
        } else {
            listen = Resolved("tcp://127.0.0.1:5555", from: "the default")
        }
        return Self(workers: workers, listen: listen)
    }

    public var logLine: String {
        "workers \(workers.value) (from \(workers.source)), listen \(listen.value) (from \(listen.source))"
    }
}

/// The environment with empty variables treated as unset (`VAR= command` clears one).
private struct Environment {
    let values: [String: String]

    init(_ values: [String: String]) { self.values = values }

    subscript(name: String) -> String? {
        guard let value = values[name]?.trimmingWhitespace, !value.isEmpty else { return nil }
        return value
    }

    /// The first of `names` that is set, as a whole number of at least `minimum`.
    func firstCount(of names: [String], minimum: Int) throws(LaunchEnvironmentError) -> Resolved<Int>? {
        for name in names {
            guard let text = self[name] else { continue }
            guard let value = Int(text), value >= minimum else { throw .notACount(variable: name, value: text, minimum: minimum) }
            return Resolved(value, from: name)
        }
        return nil
    }

    func port(_ name: String) throws(LaunchEnvironmentError) -> Int? {
        guard let text = self[name] else { return nil }
        guard let port = Int(text), (1...65535).contains(port) else { throw .notAPort(variable: name, value: text) }
        return port
    }
}

/// tcp://HOST:PORT with the port in `portRange`, or ipc://PATH.
private func isEndpoint(_ text: String, portRange: ClosedRange<Int>) -> Bool {
    if text.hasPrefix("ipc://") { return text.count > "ipc://".count }
    guard text.hasPrefix("tcp://") else { return false }
    let address = text.dropFirst("tcp://".count)
    guard let colon = address.lastIndex(of: ":"), colon != address.startIndex,
          let port = Int(address[address.index(after: colon)...]) else { return false }
    return portRange.contains(port)
}

/// An IPv6 address goes in brackets in an endpoint.
private func hostForEndpoint(_ address: String) -> String {
    address.contains(":") && !address.hasPrefix("[") ? "[\(address)]" : address
}

private extension String {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
