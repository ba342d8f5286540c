import ArgumentParser
import BuildInfo
import CommandOptions
import Coordinator
import Foundation
import Launch
import Logging
import Wire

@main
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scvae-coordinator",
        abstract: "Coordinate distributed data-parallel SC-VAE training across worker processes.",
        discussion: """
            Shards the dataset across --workers worker processes, keeps membership, reports \
            progress and owns the checkpoints. With --local it starts the workers itself.
            """,
        version: BuildInfo.description)

    @Option(help: ArgumentHelp("Read the training options from this YAML or JSON file (keys: the options' names without dashes, e.g. 'global-batch: 64'); options on the command line override it. The run's resolved recipe is written to DIR/recipe.yaml.", valueName: "file"))
    var recipe: String?

    @Option(help: "Number of worker processes (ranks) to train with (default: $WORLD_SIZE, else $SLURM_NTASKS, else 2).")
    var workers: Int?

    @Option(name: .customLong("min-workers"), help: "Fewest live workers the run goes on with (default: --workers). When a worker is lost the survivors continue in a new generation if at least this many are live; below it training pauses until workers join.")
    var minWorkers: Int?

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "Model configuration.")
    var config: CoordinatorSettings.ConfigName = .tiny

    @Option(name: .customLong("global-batch"), help: "Images per optimizer step, summed over all workers (fixed whatever the world size).")
    var globalBatch: Int = 16

    @Option(help: "Number of optimizer steps to train (default 20 unless --epochs is given).")
    var steps: Int?

    @Option(help: "Number of epochs to train instead of a step count.")
    var epochs: Int?

    @Option(help: "Learning rate after warm-up.")
    var lr: Double = 4e-5

    @Option(help: "Optimizer: adam, or sgd (plain SGD, for N-invariance checks).")
    var optimizer: TrainingRecipe.OptimizerName = .adam

    @Option(help: "Warm-up steps (linear ramp to --lr).")
    var warmup: Int = 0

    @Option(help: "Learning-rate schedule after the warm-up.")
    var schedule: TrainingRecipe.ScheduleName = .constant

    @Option(name: .customLong("shard-window"), help: "On a shard directory: shuffle the shards each epoch and the samples within windows of this many shards, so that each worker reads its samples shard by shard in large sequential reads (network file systems, object stores). 0: one permutation of the whole dataset.")
    var shardWindow: Int = 0

    @Option(name: .customLong("micro-batch"), help: "Images per forward/backward on a worker; larger slices are accumulated.")
    var microBatch: Int = 16

    @Flag(name: .customLong("exact-reduction"), inversion: .prefixedNo, help: "Verification mode: per-sample gradient slots reduced exactly, so any N gives bit-identical weights (G times the all-reduce traffic).")
    var exactReduction = false

    @Option(name: .customLong("checksum-every"), help: "Compare the replicas' parameter checksums every this many steps.")
    var checksumEvery: Int = 10

    @Option(help: "Seed of initialisation, data order and augmentation.")
    var seed: UInt64 = 0

    @Option(help: "LISTA's threshold scale: theta = beta / c, so a larger beta gives sparser codes.")
    var beta: Double = 1

    @Option(name: .customLong("latent-weight"), help: "Weight of the latent term MSE(h, D z) in the loss, or auto: 1/(H*W*C) for the configuration's latent grid, the SC-VAE authors' default.")
    var latentWeight: LatentWeight = .value(1)

    @Option(help: """
        Control-plane endpoint to bind, e.g. tcp://0.0.0.0:5555 (default: $SCVAE_LISTEN, else tcp://0.0.0.0:$MASTER_PORT \
        when MASTER_PORT is set, else tcp://127.0.0.1:5555).
        """)
    var listen: String?

    @Option(name: .customLong("checkpoint-dir"), help: "Folder for checkpoints (step-NNNNNNNN/), final/model.safetensors and final/summary.json (default: ./scvae-run). A run whose folder holds a valid checkpoint resumes from the newest one.")
    var checkpointDir: String?

    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every this many steps (0: only at the end).")
    var checkpointEvery: Int = 500

    @Option(name: .customLong("bucket-mib"), help: "MiB of gradients per all-reduce bucket; each bucket is reduced while backward computes the rest (0: one all-reduce after backward).")
    var bucketMiB: Int = 16

    @Option(help: "Number of checkpoints to keep (the newest).")
    var keep: Int = 3

    @Flag(help: "Require a valid checkpoint in --checkpoint-dir to resume from (an error if there is none); without it a run resumes when there is one and starts fresh otherwise.")
    var resume = false

    @Option(name: .customLong("stall-seconds"), help: "Name a rank in the log when it has not reported a step this many seconds after another rank did.")
    var stallSeconds: Double = 60

    @Flag(help: "Start the workers as child processes on this machine (cores/N BLAS threads each).")
    var local = false

    @Option(name: .customLong("worker-threads"), help: "BLAS threads of each --local worker (default: max(1, cores / N)).")
    var workerThreads: Int?

    @Option(help: "Write one JSON object per step to this file (JSON lines; default: DIR/metrics.jsonl in --checkpoint-dir, which scvae report reads).")
    var metrics: String?

    @Option(name: .customLong("val-data"), help: "Held-out images to validate on (a folder or a shard directory, as --data); every worker opens the same path unless given its own --val-data. Default: the built-in sample data's held-out set when training on the sample data, else no validation.")
    var valData: String?

    @Option(name: .customLong("val-every"), help: "Validate every this many steps, and after the last (default: each epoch or every 500 steps, whichever comes first; 0: never).")
    var valEvery: Int?

    @Option(name: .customLong("val-images"), help: "Validate on the first this many images of the set (default: all).")
    var valImages: Int?

    @Option(name: .customLong("grid-images"), help: "Images in each validation's reconstruction grid (DIR/samples/step-NNNNNNNN.png, TensorBoard).")
    var gridImages: Int = 16

    @Option(name: .customLong("best-metric"), help: "What chooses DIR/best/: the lowest validation loss, or the highest PSNR.")
    var bestMetric: BestMetric = .loss

    @Option(help: "Write a Chrome trace of the run (chrome://tracing, Perfetto): a track per rank with each step's data wait, forward/backward, all-reduce (each bucket, on the collective thread), optimizer, uploads and validations, and the coordinator's events; workers' clocks aligned to the coordinator's.")
    var timeline: String?

    @Option(name: .customLong("endpoint-file"), help: "Write the control endpoint actually bound here (useful with port 0).")
    var endpointFile: String?

    @Option(name: .customLong("rendezvous-timeout"), help: "Seconds to wait for all workers to connect.")
    var rendezvousTimeout: Double = 300

    @Option(name: .customLong("liveness-deadline"), help: "Seconds of silence after which a worker is declared down (workers send heartbeats every 0.5 s).")
    var livenessDeadline: Double = 2.5

    @Option(name: .customLong("log-every"), help: "Print a progress line every this many steps.")
    var logEvery: Int = 1

    @Option(name: .customLong("ring-transport"), help: "What carries the workers' ring all-reduce: tcp (ZeroMQ), auto (shared memory when every rank of a generation is on one host and supports it, else TCP), or shm (shared memory; an error when the ranks are not all on one host). Workers log which one each generation uses. tcp is the default: with one core per worker the shared-memory ring's waiting costs backward more than it saves (BENCHMARKS.md).")
    var ringTransport: RingTransportMode = .tcp

    @Option(name: .customLong("log-dir"), help: "With --local: write each worker's standard output and error to DIR/<worker-id>.log (appended to, also by a replacement of that worker) instead of this terminal.")
    var logDir: String?

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var security: SecurityOptions

    /// --workers and --listen, from the flags, else the environment.
    func launchDefaults() throws -> CoordinatorLaunchDefaults {
        do {
            return try CoordinatorLaunchDefaults.resolve(workers: workers, listen: listen, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func settings(_ defaults: CoordinatorLaunchDefaults) -> CoordinatorSettings {
        var s = CoordinatorSettings()
        s.workers = defaults.workers.value
        s.minWorkers = minWorkers
        s.dataPath = dataOptions.data
        s.config = config.rawValue
        s.globalBatch = globalBatch
        s.steps = (steps == nil && epochs == nil) ? 20 : steps
        s.epochs = epochs
        s.learningRate = lr
        s.seed = seed
        s.beta = beta
        s.latentWeight = latentWeight
        s.shardWindow = shardWindow
        s.listen = defaults.listen.value
        s.listenSource = defaults.listen.source == "--listen" ? nil : defaults.listen.source
        s.checkpointDir = checkpointDir
        s.checkpointEvery = checkpointEvery
        s.keep = keep
        s.bucketMiB = bucketMiB
        s.curveKeys = security.curveKeys
        s.insecure = security.insecure
        s.resume = resume
        s.stallSeconds = stallSeconds
        s.local = local
        s.metricsPath = metrics
        s.optimizer = optimizer.rawValue
        s.warmupSteps = warmup
        s.schedule = schedule.rawValue
        s.microBatch = microBatch
        s.checksumEvery = checksumEvery
        s.cacheDirectory = dataOptions.cacheDir
        s.endpointFile = endpointFile
        s.rendezvousTimeout = rendezvousTimeout
        s.livenessDeadline = livenessDeadline
        s.logEvery = logEvery
        s.workerThreads = workerThreads
        s.exactReduction = exactReduction
        s.ringTransport = ringTransport.rawValue
        s.localLogDirectory = logDir
        s.validationDataPath = valData
        s.validationEvery = valEvery
        s.validationImages = valImages
        s.gridImages = gridImages
        s.bestMetric = bestMetric
        s.timelinePath = timeline
        if let chosen = try? logging.resolved(environment: ProcessInfo.processInfo.environment) {
            (s.logLevel, s.logFormat) = chosen
        }
        return s
    }

    func validate() throws {
        if let problem = try settings(launchDefaults()).problems().first { throw ValidationError(problem) }
    }

    /// Parses the command line with the `--recipe` file's options in front of it.
    static func main() async {
        let commandLine = Array(CommandLine.arguments.dropFirst())
        do {
            await main(try RecipeFile.expand(commandLine, read: RecipeFile.readFile))
        } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
    }

    func run() async throws {
        logging.bootstrap()
        var logger = Logger(label: "scvae.coordinator")
        logger[metadataKey: "role"] = "coordinator"
        let defaults = try launchDefaults()
        logger.info("\(defaults.logLine)")
        let stopSignal = StopSignal()
        stopSignal.install()
        let outcome: RunOutcome
        do {
            outcome = try await runCoordinator(settings(defaults), stopSignal: stopSignal, logger: logger)
        } catch {
            // runCoordinator has logged the error with what to do about it.
            throw ExitCode.failure
        }
        if case .stoppedEarly = outcome { throw ExitCode(RunOutcome.stoppedEarlyStatus) }
    }
}

extension CoordinatorSettings.ConfigName: ExpressibleByArgument {}
extension TrainingRecipe.OptimizerName: ExpressibleByArgument {}
extension TrainingRecipe.ScheduleName: ExpressibleByArgument {}
extension RingTransportMode: ExpressibleByArgument {}
extension BestMetric: ExpressibleByArgument {}

extension LatentWeight: ExpressibleByArgument {
    public init?(argument: String) { self.init(text: argument) }
    public var defaultValueDescription: String { description }
}
