import ArgumentParser
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

    @Option(help: "Dataset folder as seen from this worker (default: the built-in sample data); must match the coordinator's index.")
    var data: String?

    @Option(name: .customLong("reconnect-timeout"), help: "Seconds to keep retrying a lost coordinator before exiting non-zero.")
    var reconnectTimeout: Double = 600

    var settings: WorkerSettings {
        var s = WorkerSettings()
        s.coordinator = coordinator
        s.threads = threads
        s.dataPath = data
        s.reconnectTimeoutSeconds = reconnectTimeout
        return s
    }

    func validate() throws {
        if let problem = settings.problems().first { throw ValidationError(problem) }
    }

    func run() async throws {
        var logger = Logger(label: "scvae.worker")
        logger[metadataKey: "role"] = "worker"
        try await runWorker(settings, logger: logger)
    }
}
