import ArgumentParser
import BuildInfo
import CommandOptions
import Foundation
import Logging
import Worker

@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scvae-worker",
        abstract: "One SC-VAE training rank: loads its data shard, computes gradients, all-reduces them with its ring neighbours.",
        version: BuildInfo.description)

    @Option(help: "Control-plane endpoint of the coordinator, e.g. tcp://HOST:5555.")
    var coordinator: String = "tcp://127.0.0.1:5555"

    @Option(help: "OpenBLAS threads for this worker (with N workers on one machine use cores/N).")
    var threads: Int = 1

    @OptionGroup var dataOptions: DataOptions

    @Option(name: .customLong("reconnect-timeout"), help: "Seconds to keep retrying a lost coordinator before exiting non-zero.")
    var reconnectTimeout: Double = 600


    @Option(help: "Address this worker's ring socket binds on and advertises (its neighbours connect to it). Default: the address of --ring-interface, else this machine's address on the route to the coordinator (127.0.0.1 for a coordinator on this machine).")
    var host: String?

    @Option(name: .customLong("ring-interface"), help: "Network interface whose IPv4 address the ring uses, e.g. eth0 or ib0 (like GLOO_SOCKET_IFNAME).")
    var ringInterface: String?

    @Option(name: .customLong("ring-connect-timeout"), help: "Seconds the ring connection to the next rank may take to come up; past it that rank's address is reported unreachable and the coordinator leaves that worker out.")
    var ringConnectTimeout: Double = 30

    @Option(name: .customLong("worker-id"), help: "Name of this worker in the run (default: HOST-PID).")
    var workerID: String?

    @Option(name: .customLong("data-order-log"), help: "Append one JSON line per applied step with the sample indices this rank trained on (for checking that every sample of an epoch is used once).")
    var dataOrderLog: String?

    @OptionGroup var security: SecurityOptions

    @OptionGroup var logging: LoggingOptions

    var settings: WorkerSettings {
        var s = WorkerSettings()
        s.coordinator = coordinator
        s.threads = threads
        s.dataPath = dataOptions.data
        s.reconnectTimeoutSeconds = reconnectTimeout
        s.cacheDirectory = dataOptions.cacheDir
        s.host = host
        s.ringInterface = ringInterface
        s.ringConnectTimeoutSeconds = ringConnectTimeout
        s.workerID = workerID
        s.dataOrderLogPath = dataOrderLog
        s.curveKeys = security.curveKeys
        s.insecure = security.insecure
        // Tests only: pretend to speak another protocol version.
        s.fakeProtocolVersion = ProcessInfo.processInfo.environment["SCVAE_FAKE_PROTOCOL_VERSION"].flatMap { UInt16($0) }
        return s
    }

    func validate() throws {
        if let problem = settings.problems().first { throw ValidationError(problem) }
        if let problem = coordinatorPortProblem(coordinator) { throw ValidationError(problem) }
    }

    func run() async throws {
        // This runs on a cooperative-pool thread, whose niceness libdispatch set (0 under
        // `nice -n 10` run as root). Linux keeps niceness per thread: the re-execution below
        // starts the new image at the exec'ing thread's niceness, and the session's thread
        // inherits this one's. So first give this thread the process's niceness.
        adoptProcessNiceness()
        logging.bootstrap()
        BLASKernels.useFastestKernels()
        // Started by `scvae-coordinator --local`: Ctrl-C reaches the whole process group, but the
        // coordinator owns this worker's end (it stops at a step boundary and saves the weights).
        if ProcessInfo.processInfo.environment["SCVAE_LOCAL_CHILD"] == "1" { signal(SIGINT, SIG_IGN) }
        var logger = Logger(label: "scvae.worker")
        logger[metadataKey: "role"] = "worker"
        let code = await runWorker(settings, logger: logger)
        if code != 0 { throw ExitCode(code) }
    }
}

/// Gives the calling thread the process's niceness (its main thread's, which `ps -o ni` shows).
/// On Linux niceness belongs to each thread and a new thread inherits its creator's. Lowering
/// it needs privileges: without them a thread above it stays where it is.
private func adoptProcessNiceness() {
    #if os(Linux)
    let which = __priority_which_t(PRIO_PROCESS.rawValue)
    #else
    let which = PRIO_PROCESS
    #endif
    errno = 0
    let target = getpriority(which, id_t(getpid()))  // a process id names its main thread
    guard !(target == -1 && errno != 0) else { return }
    errno = 0
    let current = getpriority(which, 0)  // 0: the calling thread
    guard !(current == -1 && errno != 0), current != target else { return }
    _ = setpriority(which, 0, target)
}

/// Why a tcp:// --coordinator cannot be connected to, as far as can be told without trying: a
/// missing host or a port outside 1...65535. ZeroMQ would otherwise retry it in silence until
/// --reconnect-timeout.
private func coordinatorPortProblem(_ endpoint: String) -> String? {
    guard endpoint.hasPrefix("tcp://") else { return nil }
    let address = endpoint.dropFirst("tcp://".count)
    guard let colon = address.lastIndex(of: ":"), colon != address.startIndex else {
        return "--coordinator \(endpoint) needs a host and a port, as in tcp://HOST:5555 (the address the coordinator logs as 'listening on')."
    }
    let port = address[address.index(after: colon)...]
    guard let number = Int(port), (1...65535).contains(number) else {
        return "--coordinator \(endpoint): the port must be a number from 1 to 65535, the one the coordinator logs as 'listening on'; got '\(port)'."
    }
    return nil
}
