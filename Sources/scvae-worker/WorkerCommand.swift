import ArgumentParser
import BuildInfo
import CommandOptions
import Foundation
import Launch
import Logging
import Worker

@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scvae-worker",
        abstract: "One SC-VAE training rank: loads its data shard, computes gradients, all-reduces them with its ring neighbours.",
        version: BuildInfo.description)

    @Option(help: """
        Control-plane endpoint of the coordinator, e.g. tcp://HOST:5555 (default: $SCVAE_COORDINATOR, else \
        tcp://$MASTER_ADDR:$MASTER_PORT, port 5555 when MASTER_PORT is unset, else tcp://127.0.0.1:5555).
        """)
    var coordinator: String?

    @Option(help: """
        OpenBLAS threads for this worker (default: $OMP_NUM_THREADS, else $OPENBLAS_NUM_THREADS, else \
        $SLURM_CPUS_PER_TASK, else the CPUs this process may use: its affinity mask capped by its cgroup's CPU \
        quota). With --nproc-per-node: per rank; its default is then this default divided among the ranks.
        """)
    var threads: Int?

    @Option(name: .customLong("nproc-per-node"), help: """
        Start this many worker ranks on this machine, each a child scvae-worker with the id WORKER-ID-I, its own \
        slice of the CPUs, and threads shared out; a rank that dies is started again (with a back-off, at most \
        5 times in 10 minutes); SIGTERM or SIGINT stops them all.
        """)
    var nprocPerNode: Int?

    @OptionGroup var dataOptions: DataOptions

    @Option(name: .customLong("val-data"), help: "The run's validation set as this worker sees it, when its path differs from the coordinator's --val-data (another mount point); the fingerprints must match.")
    var valData: String?

    @Option(name: .customLong("reconnect-timeout"), help: "Seconds to keep retrying a lost coordinator before exiting non-zero.")
    var reconnectTimeout: Double = 600


    @Option(help: "Address this worker's ring socket binds on and advertises (its neighbours connect to it). Default: the address of --ring-interface, else this machine's address on the route to the coordinator (127.0.0.1 for a coordinator on this machine).")
    var host: String?

    @Option(name: .customLong("ring-interface"), help: "Network interface whose IPv4 address the ring uses, e.g. eth0 or ib0 (like GLOO_SOCKET_IFNAME).")
    var ringInterface: String?

    @Option(name: .customLong("ring-connect-timeout"), help: "Seconds the ring connection to the next rank may take to come up; past it that rank's address is reported unreachable and the coordinator leaves that worker out.")
    var ringConnectTimeout: Double = 30

    @Option(name: .customLong("worker-id"), help: """
        Name of this worker in the run (default: HOST-taskN from $SLURM_PROCID, else $POD_NAME, else HOST-PID).
        """)
    var workerID: String?

    @Option(name: .customLong("data-order-log"), help: "Append one JSON line per applied step with the sample indices this rank trained on (for checking that every sample of an epoch is used once).")
    var dataOrderLog: String?

    @OptionGroup var security: SecurityOptions

    @OptionGroup var logging: LoggingOptions

    /// --threads, --coordinator and --worker-id, from the flags, else the environment.
    func launchDefaults() throws -> WorkerLaunchDefaults {
        do {
            return try WorkerLaunchDefaults.resolve(threads: threads, coordinator: coordinator, workerID: workerID,
                                                    environment: ProcessInfo.processInfo.environment, cpus: CPUAllowance.current(),
                                                    host: ProcessInfo.processInfo.hostName, pid: getpid())
        } catch {
            throw ValidationError(error.description)
        }
    }

    func settings(_ defaults: WorkerLaunchDefaults) -> WorkerSettings {
        var s = WorkerSettings()
        s.coordinator = defaults.coordinator.value
        s.threads = defaults.threads.value
        s.dataPath = dataOptions.data
        s.validationDataPath = valData
        s.reconnectTimeoutSeconds = reconnectTimeout
        s.cacheDirectory = dataOptions.cacheDir
        s.host = host
        s.ringInterface = ringInterface
        s.ringConnectTimeoutSeconds = ringConnectTimeout
        s.workerID = defaults.workerID.value
        s.dataOrderLogPath = dataOrderLog
        s.curveKeys = security.curveKeys
        s.insecure = security.insecure
        // Tests only: pretend to speak another protocol version.
        s.fakeProtocolVersion = ProcessInfo.processInfo.environment["SCVAE_FAKE_PROTOCOL_VERSION"].flatMap { UInt16($0) }
        s.validationPauseSeconds = ProcessInfo.processInfo.environment["SCVAE_TEST_VALIDATION_PAUSE"].flatMap { Double($0) }
        return s
    }

    func validate() throws {
        let defaults = try launchDefaults()
        if let problem = settings(defaults).problems().first { throw ValidationError(problem) }
        if let problem = coordinatorPortProblem(defaults.coordinator.value) { throw ValidationError(problem) }
        if let nprocPerNode, nprocPerNode < 1 { throw ValidationError("--nproc-per-node must be at least 1 (got \(nprocPerNode)).") }
    }

    func run() async throws {
        // This runs on a cooperative-pool thread, whose niceness libdispatch set (0 under
        // `nice -n 10` run as root). Linux keeps niceness per thread: the re-execution below
        // starts the new image at the exec'ing thread's niceness, and the session's thread
        // inherits this one's. So first give this thread the process's niceness.
        ProcessPriority.adoptOnThisThread()
        logging.bootstrap()
        let defaults = try launchDefaults()
        var logger = Logger(label: "scvae.worker")
        logger[metadataKey: "role"] = "worker"
        if let nprocPerNode {
            logger.info("\(defaults.logLine)")
            let code = await superviseRanks(nprocPerNode, defaults: defaults, logger: logger)
            if code != 0 { throw ExitCode(code) }
            return
        }
        // May re-execute this process (with the same command line and environment).
        BLASKernels.useFastestKernels()
        logger.info("\(defaults.logLine)")
        // Started by `scvae-coordinator --local` or `--nproc-per-node`: Ctrl-C reaches the whole
        // process group, but the parent owns this worker's end (the coordinator stops at a step
        // boundary and saves the weights; the node supervisor sends SIGTERM).
        if ProcessInfo.processInfo.environment["SCVAE_LOCAL_CHILD"] == "1" { signal(SIGINT, SIG_IGN) }
        let code = await runWorker(settings(defaults), logger: logger)
        if code != 0 { throw ExitCode(code) }
    }

    /// --nproc-per-node: this process starts the ranks, each this command line without
    /// --nproc-per-node and with its own --threads and --worker-id, and watches them.
    private func superviseRanks(_ count: Int, defaults: WorkerLaunchDefaults, logger: Logger) async -> Int32 {
        let cpus = CPUAllowance.current()
        let layouts = RankLayout.plan(baseID: defaults.workerID.value, count: count, threadsPerRank: threads,
                                      processThreads: defaults.threads.value, cpus: cpus.affinity)
        let common = removingOptions(["--nproc-per-node", "--threads", "--worker-id", "--coordinator"],
                                     from: Array(CommandLine.arguments.dropFirst()))
        let ranks = layouts.map { layout in
            NodeSupervisor.Rank(id: layout.id, arguments: common + ["--coordinator", defaults.coordinator.value,
                                                                    "--threads", "\(layout.threads)", "--worker-id", layout.id],
                                cpus: layout.cpus)
        }
        logger.info("starting \(count) ranks, \(layouts.first?.threads ?? 1) BLAS thread(s) each (\(threads == nil ? "\(defaults.threads.value) shared out" : "--threads"))")
        let stopSignal = StopSignal()
        stopSignal.install()
        let supervisor = NodeSupervisor(executable: ChildLauncher.ownExecutable, ranks: ranks,
                                        environment: ProcessInfo.processInfo.environment, logger: logger)
        return await supervisor.runOnOwnThread(stopSignal: stopSignal)
    }
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
