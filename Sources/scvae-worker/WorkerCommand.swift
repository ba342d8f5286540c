import ArgumentParser
import Foundation
import Logging
import Worker

@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scvae-worker",
        abstract: "One SC-VAE training rank: loads its data shard, computes gradients, all-reduces them with its ring neighbours.")

    @Option(help: "Control-plane endpoint of the coordinator, e.g. tcp://HOST:5555.")
    var coordinator: String = "tcp://127.0.0.1:5555"

    @Option(help: "OpenBLAS threads for this worker (with N workers on one machine use cores/N).")
    var threads: Int = 1

    @Option(help: "Dataset folder or shard directory as seen from this worker (default: the built-in sample data); must match the coordinator's fingerprint.")
    var data: String?

    @Option(name: .customLong("reconnect-timeout"), help: "Seconds to keep retrying a lost coordinator before exiting non-zero.")
    var reconnectTimeout: Double = 600

    @Option(name: .customLong("cache-dir"), help: "Index and sample-data cache (default: $XDG_CACHE_HOME/scvae, else ~/.cache/scvae).")
    var cacheDir: String?

    @Option(help: "Address this worker's ring socket binds on (reachable by its neighbours).")
    var host: String = "127.0.0.1"

    @Option(name: .customLong("worker-id"), help: "Name of this worker in the run (default: HOST-PID).")
    var workerID: String?

    @Option(name: .customLong("data-order-log"), help: "Append one JSON line per applied step with the sample indices this rank trained on (for checking that every sample of an epoch is used once).")
    var dataOrderLog: String?

    @Option(name: .customLong("curve-keys"), help: "CURVE: a folder with this worker's NAME.key_secret and coordinator.key (scvae keygen). Control and ring traffic are then authenticated and encrypted.")
    var curveKeys: String?

    @Flag(help: "Allow a --host reachable from other machines without --curve-keys (plain-text ring traffic).")
    var insecure = false

    var settings: WorkerSettings {
        var s = WorkerSettings()
        s.coordinator = coordinator
        s.threads = threads
        s.dataPath = data
        s.reconnectTimeoutSeconds = reconnectTimeout
        s.cacheDirectory = cacheDir
        s.host = host
        s.workerID = workerID
        s.dataOrderLogPath = dataOrderLog
        s.curveKeys = curveKeys
        s.insecure = insecure
        // Tests only: pretend to speak another protocol version.
        s.fakeProtocolVersion = ProcessInfo.processInfo.environment["SCVAE_FAKE_PROTOCOL_VERSION"].flatMap { UInt16($0) }
        return s
    }

    func validate() throws {
        if let problem = settings.problems().first { throw ValidationError(problem) }
    }

    func run() async throws {
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
