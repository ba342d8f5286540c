import Foundation
import LogOutput
import Logging
import Wire

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
    /// "adam" (default) or "sgd" (plain SGD, for N-invariance checks).
    public var optimizer: String = "adam"
    public var warmupSteps: Int = 0
    /// "constant" or "cosine" after the warm-up.
    public var schedule: String = "constant"
    /// Images per forward/backward on a worker; larger slices are accumulated.
    public var microBatch: Int = 16
    /// Replicas compare parameter checksums every this many steps (and at start and end).
    public var checksumEvery: Int = 10
    /// Verification mode: per-sample gradient slots, all-reduced exactly, summed in batch order,
    /// so runs with any N are bit-identical (G times the all-reduce traffic).
    public var exactReduction: Bool = false
    public var seed: UInt64 = 0
    /// --beta: LISTA's threshold scale (theta = beta / c).
    public var beta: Double = 1
    /// --latent-weight: the weight of the latent term in the loss, or `auto` (1 / (H * W * C)).
    public var latentWeight: LatentWeight = .value(1)
    /// --shard-window: shards per shuffle window on a shard directory (0: one permutation of
    /// the whole dataset).
    public var shardWindow: Int = 0
    public var listen: String = "tcp://127.0.0.1:5555"
    /// Where `listen` came from when not from --listen (an environment variable such as
    /// MASTER_PORT), for the messages about it.
    public var listenSource: String? = nil
    /// Written with the endpoint actually bound (useful with port 0), when given.
    public var endpointFile: String? = nil
    public var checkpointDir: String? = nil
    /// Steps between checkpoints (0: only the final one).
    public var checkpointEvery: Int = 500
    /// MiB per gradient bucket, all-reduced while backward goes on (0: after backward).
    public var bucketMiB: Int = 16
    /// Checkpoints kept (the newest ones).
    public var keep: Int = 3
    /// Require a checkpoint to resume from (resuming is automatic when one exists).
    public var resume: Bool = false
    /// A rank that has not reported a step this long after another rank did is named in the log.
    public var stallSeconds: Double = 60
    public var local: Bool = false
    /// BLAS threads of each --local worker; nil: max(1, cores / N).
    public var workerThreads: Int? = nil
    public var metricsPath: String? = nil
    /// --val-data: the held-out set (nil: the built-in sample data's held-out set when training
    /// on the sample data, else no validation).
    public var validationDataPath: String? = nil
    /// --val-every: steps between validations (nil: each epoch or every 500 steps, whichever
    /// comes first; 0: no validation).
    public var validationEvery: Int? = nil
    /// --val-images: validate on the set's first this many images (nil: all).
    public var validationImages: Int? = nil
    /// --grid-images: images in each validation's reconstruction grid.
    public var gridImages: Int = 16
    /// --timeline FILE: a Chrome trace of every rank's steps and the coordinator's events.
    public var timelinePath: String? = nil
    /// --best-metric: what chooses DIR/best/.
    public var bestMetric: BestMetric = .loss

    /// Where the step metrics go: --metrics, else DIR/metrics.jsonl (what `scvae report` reads).
    public var metricsFile: String { metricsPath ?? (outputDirectory as NSString).appendingPathComponent("metrics.jsonl") }
    /// Index and sample-data cache, passed to --local workers too.
    public var cacheDirectory: String? = nil
    /// Seconds to wait for all --workers to connect before giving up.
    public var rendezvousTimeout: Double = 300
    /// Seconds without a message after which a worker is declared down (heartbeats come every 0.5 s).
    public var livenessDeadline: Double = 2.5
    /// Progress lines every this many steps (metrics are written for every step).
    public var logEvery: Int = 1

    /// --ring-transport: auto, tcp or shm (`RingTransportMode`).
    public var ringTransport: String = RingTransportMode.tcp.rawValue

    /// What the --local workers are told to log with (`--log-level`, `--log-format`): the coordinator's own.
    public var logLevel: Logger.Level = .info
    public var logFormat: LogFormat = .text
    /// --log-dir: each --local worker's standard output and error go to DIR/<worker-id>.log
    /// (appended to, so a replacement continues its rank's file); nil: this terminal.
    public var localLogDirectory: String? = nil

    /// CURVE: a folder with `coordinator.key_secret` and the `*.key` of the admitted workers.
    public var curveKeys: String? = nil
    /// Allows a non-loopback --listen without CURVE (plain text, anyone can join).
    public var insecure: Bool = false

    public init() {}


    /// The model configurations (the coordinator never links the model: a test holds this list
    /// to the model's own, `ModelConfig.all`).
    public enum ConfigName: String, CaseIterable, Sendable {
        case tiny, small
        case imagenetF8 = "imagenet-f8"
        case imagenetF16 = "imagenet-f16"
        case im256SCVAE1x1 = "im256-scvae1x1"
        case im256SCVAE4x4 = "im256-scvae4x4"
        case im256SCVAE16x16 = "im256-scvae16x16"
        case im256SCVAE32x32 = "im256-scvae32x32"
        case ffhq256SCVAE1x1 = "ffhq256-scvae1x1"
        case ffhq256SCVAE4x4 = "ffhq256-scvae4x4"
        case ffhq256SCVAE16x16 = "ffhq256-scvae16x16"
        case ffhq256SCVAE32x32 = "ffhq256-scvae32x32"
    }

    /// `ConfigName`'s names, in the model's order.
    public static let configNames = ConfigName.allCases.map(\.rawValue)

    /// Where the final weights and the summary go when --checkpoint-dir is not given.
    public static let defaultOutputDirectory = "scvae-run"

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
        if !TrainingRecipe.optimizers.contains(optimizer) {
            found.append("--optimizer must be \(TrainingRecipe.optimizers.sorted().joined(separator: " or ")) (got '\(optimizer)').")
        }
        if !TrainingRecipe.schedules.contains(schedule) {
            found.append("--schedule must be \(TrainingRecipe.schedules.sorted().joined(separator: " or ")) (got '\(schedule)').")
        }
        if !(beta > 0 && beta.isFinite) { found.append("--beta must be a positive number (got \(beta)).") }
        if let problem = latentWeight.problem {
            found.append("--latent-weight must be a number of 0 or more, or auto (got \(problem)).")
        }
        if shardWindow < 0 { found.append("--shard-window must be 0 (one permutation of the whole dataset) or more shards (got \(shardWindow)).") }
        if warmupSteps < 0 { found.append("--warmup must be 0 or more steps (got \(warmupSteps)).") }
        if microBatch < 1 { found.append("--micro-batch must be at least 1 (got \(microBatch)).") }
        if checksumEvery < 1 { found.append("--checksum-every must be at least 1 (got \(checksumEvery)).") }
        if let workerThreads, workerThreads < 1 { found.append("--worker-threads must be at least 1 (got \(workerThreads)).") }
        if logEvery < 1 { found.append("--log-every must be at least 1 (got \(logEvery)).") }
        if checkpointEvery < 0 { found.append("--checkpoint-every must be 0 (only at the end) or more steps (got \(checkpointEvery)).") }
        if bucketMiB < 0 || bucketMiB > 4096 { found.append("--bucket-mib must be between 0 and 4096 (got \(bucketMiB)).") }
        if let validationEvery, validationEvery < 0 { found.append("--val-every must be 0 (no validation) or more steps (got \(validationEvery)).") }
        if let validationImages, validationImages < 1 { found.append("--val-images must be at least 1 (got \(validationImages)).") }
        if gridImages < 0 || gridImages > 64 { found.append("--grid-images must be between 0 and 64 (got \(gridImages)).") }
        if validationEvery == 0 && validationDataPath != nil { found.append("--val-every 0 turns validation off; leave out --val-data too.") }
        if keep < 1 { found.append("--keep must be at least 1 (got \(keep)).") }
        if !(stallSeconds > 0) { found.append("--stall-seconds must be positive (got \(stallSeconds)).") }
        if !(rendezvousTimeout > 0) { found.append("--rendezvous-timeout must be positive (got \(rendezvousTimeout)).") }
        if !(livenessDeadline > 0) { found.append("--liveness-deadline must be positive (got \(livenessDeadline)).") }
        if RingTransportMode(rawValue: ringTransport) == nil {
            found.append("--ring-transport must be auto, tcp or shm (got '\(ringTransport)').")
        }
        if !(listen.hasPrefix("tcp://") || listen.hasPrefix("ipc://")) {
            found.append("--listen must be a ZeroMQ endpoint such as tcp://0.0.0.0:5555 (got '\(listen)').")
        } else if let problem = Self.listenAddressProblem(listen) {
            found.append(problem)
        }
        if curveKeys == nil && !insecure && !isLoopbackEndpoint(listen) {
            let named = listenSource.map { "The listen address \(listen) (from \($0))" } ?? "--listen \(listen)"
            found.append("\(named) is reachable from other machines: give --curve-keys DIR (authenticated, encrypted traffic) or --insecure to accept plain text that anyone on the network can join.")
        }
        if localLogDirectory != nil && !local {
            found.append("--log-dir is where --local workers write their output; without --local redirect each scvae-worker's output yourself.")
        }
        if curveKeys != nil && local {
            found.append("--local runs every process on this machine over loopback; --curve-keys is for runs across machines (start the workers with scvae-worker --curve-keys).")
        }
        return found
    }

    /// Why a tcp:// or ipc:// --listen cannot be bound, as far as can be told without binding:
    /// a missing host or path, a port that is not 0...65535 (or ZeroMQ's `*`). Nil when it looks
    /// usable; an address in use or not of this machine is found by the bind.
    static func listenAddressProblem(_ listen: String) -> String? {
        if listen.hasPrefix("ipc://") {
            return listen.count > "ipc://".count ? nil : "--listen ipc:// needs a path, as in ipc:///tmp/scvae.sock."
        }
        let address = listen.dropFirst("tcp://".count)
        guard let colon = address.lastIndex(of: ":"), colon != address.startIndex else {
            return "--listen \(listen) needs a host and a port, as in tcp://0.0.0.0:5555 (port 0 picks a free one)."
        }
        let port = address[address.index(after: colon)...]
        if port == "*" { return nil }
        guard let number = Int(port), (0...65535).contains(number) else {
            return "--listen \(listen): the port must be a number from 0 to 65535 (0 picks a free one); got '\(port)'."
        }
        return nil
    }

    /// --ring-transport as its mode (auto when invalid; `problems()` names that).
    public var ringTransportMode: RingTransportMode { RingTransportMode(rawValue: ringTransport) ?? .auto }

    /// --listen with port 0 spelled as ZeroMQ's wildcard.
    var bindEndpoint: String {
        listen.hasSuffix(":0") ? String(listen.dropLast()) + "*" : listen
    }

    /// Whether this run validates: on --val-data, or on the sample data's held-out set when it
    /// trains on the sample data; never with --val-every 0.
    public var validates: Bool {
        validationEvery != 0 && (validationDataPath != nil || dataPath == nil)
    }

    /// The folder that receives the checkpoints (`step-NNNNNNNN/`) and `final/model.safetensors`.
    public var outputDirectory: String { checkpointDir ?? Self.defaultOutputDirectory }
}
