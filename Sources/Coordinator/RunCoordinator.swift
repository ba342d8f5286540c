import Dataset
import Wire
import Checkpoints
import Foundation
import Launch
import Logging

/// How a run that did not fail ended.
public enum RunOutcome: Sendable, Equatable {
    /// Every planned step was trained (now or by an earlier run): exit status 0.
    case complete
    /// Stopped before its last step (a signal): the state was saved and the same command
    /// resumes it. Exit status `RunOutcome.stoppedEarlyStatus`.
    case stoppedEarly(step: Int, of: Int)

    /// 75, EX_TEMPFAIL ("try again later"): what the coordinator and its workers exit with when a
    /// run was stopped early, so that a scheduler restarts or requeues them rather than count the
    /// run as done (a Kubernetes Job would otherwise be Complete).
    public static let stoppedEarlyStatus = ChildExit.runStoppedEarly
}

/// Entry point of `scvae-coordinator`: runs a whole training job with these settings. Every
/// error that ends the run is logged here, once, before it is thrown; the caller exits non-zero.
public func runCoordinator(_ settings: CoordinatorSettings, stopSignal: StopSignal, logger: Logger) async throws -> RunOutcome {
    // Sockets and process waits block: the job runs on a thread of its own, not on the cooperative pool.
    let result: Result<RunOutcome, Error> = await withCheckedContinuation { continuation in
        let thread = Thread {
            // Created from a pool thread, whose niceness libdispatch chose: the job, its sockets'
            // threads and the --local workers it starts run at the niceness given to the process.
            ProcessPriority.adoptOnThisThread()
            continuation.resume(returning: Result { try runJob(settings, stopSignal: stopSignal, logger: logger) })
        }
        thread.name = "scvae-coordinator"
        thread.start()
    }
    return try result.get()
}

private func runJob(_ settings: CoordinatorSettings, stopSignal: StopSignal, logger: Logger) throws -> RunOutcome {
    var local: LocalWorkers?
    do {
        return try train(settings, stopSignal: stopSignal, logger: logger, local: &local)
    } catch {
        // The reason first, then the wait for the local workers.
        logger.error("\(error)")
        local?.stop(grace: .seconds(10))
        throw error
    }
}

private func train(_ settings: CoordinatorSettings, stopSignal: StopSignal, logger: Logger, local: inout LocalWorkers?) throws -> RunOutcome {
    if settings.dataPath == nil { logger.info("no --data: using the built-in sample data") }
    let index: TrainingData
    do {
        index = try DatasetLocation.resolve(dataPath: settings.dataPath, cacheDirectory: settings.cacheDirectory)
    } catch {
        throw CoordinatorFailure.dataset(settings.dataPath.map { "--data \($0): \(error)" } ?? "\(error)")
    }
    logger.info("dataset \(index.root): \(index.count) images, fingerprint \(index.fingerprint.prefix(16))")
    warnAboutNamesLeftOut(index, logger: logger)
    let windows: ShardWindows?
    do { windows = try index.shardWindows(settings.shardWindow) } catch {
        throw CoordinatorFailure.plan("--shard-window \(settings.shardWindow): \(error)")
    }
    let sampler: Sampler
    do { sampler = try Sampler(sampleCount: index.count, globalBatch: settings.globalBatch, seed: settings.seed, windows: windows) } catch {
        throw CoordinatorFailure.plan("\(index.root): \(error)")
    }
    if let windows {
        logger.info("shard windows: \(windows.shards.count) shards of \(index.root) in windows of \(windows.window), each window's samples shuffled together")
    }
    let totalSteps = settings.steps ?? (settings.epochs ?? 1) * sampler.stepsPerEpoch
    logger.info("plan: config \(settings.config), \(settings.workers) workers, global batch \(settings.globalBatch), \(totalSteps) steps (\(sampler.stepsPerEpoch) per epoch of \(index.count) images), \(settings.optimizer) lr \(settings.learningRate), seed \(settings.seed)")

    // Before anything is read from or removed in the folder: one coordinator per folder, and a
    // folder that cannot take a checkpoint is refused now rather than after the first steps.
    let lock: CheckpointDirectoryLock
    do { lock = try CheckpointDirectoryLock.acquire(directory: settings.outputDirectory) } catch {
        throw CoordinatorFailure.checkpointDirectory(error)
    }
    defer { lock.release() }
    let store = CheckpointStore(directory: settings.outputDirectory, keep: settings.keep)
    let resumeFrom = try findCheckpoint(store, lock: lock, settings: settings, index: index, logger: logger)
    if let resumeFrom, resumeFrom.state.step >= totalSteps {
        // Nothing left to train: the final weights come from the checkpoint.
        let path = try FinalWeights.write(resumeFrom.model, step: resumeFrom.state.step, epoch: resumeFrom.state.epoch,
                                          model: FinalWeights.Model(settings), into: settings.outputDirectory)
        logger.notice("the run in \(settings.outputDirectory) is already complete (step \(resumeFrom.state.step) of \(totalSteps)): wrote \(path); give more --steps to train further, or another --checkpoint-dir")
        return .complete
    }
    let recipePath = RecipeFile.path(in: settings.outputDirectory)
    do {
        try RecipeFile.render(settings, currentDirectory: FileManager.default.currentDirectoryPath)
            .write(toFile: recipePath, atomically: true, encoding: .utf8)
    } catch {
        throw CoordinatorFailure.cannotWrite(path: recipePath, reason: "\(error)")
    }
    let validation = try validationPlan(settings, stepsPerEpoch: sampler.stepsPerEpoch, logger: logger)
    let server = try CoordinatorServer(settings: settings, index: index, sampler: sampler, totalSteps: totalSteps,
                                       resumeFrom: resumeFrom, store: store, stopSignal: stopSignal, validation: validation,
                                       logger: logger)
    logger.info("listening on \(server.endpoint)")
    if let file = settings.endpointFile {
        do { try server.endpoint.write(toFile: file, atomically: true, encoding: .utf8) } catch {
            throw CoordinatorFailure.cannotWrite(path: file, reason: "\(error)")
        }
    }
    if settings.local {
        let workers = LocalWorkers(logger: logger)
        server.localWorkers = workers
        do { try workers.start(count: settings.workers, endpoint: server.endpoint, settings: settings) } catch {
            workers.stop(grace: .zero)
            throw error
        }
        local = workers
    }
    let started = ContinuousClock.now
    let outcome = try server.run()
    local?.stop(grace: .seconds(30))
    let seconds = (ContinuousClock.now - started).inSeconds
    try writeSummary(settings: settings, server: server, outcome: outcome, seconds: seconds, logger: logger)
    guard outcome.step < server.totalSteps else { return .complete }
    logger.notice("stopped early at step \(outcome.step) of \(server.totalSteps): the same command resumes the run from its saved state (exit status \(RunOutcome.stoppedEarlyStatus))")
    return .stoppedEarly(step: outcome.step, of: server.totalSteps)
}

/// What the run validates on and when, or nil without validation: --val-data, else the sample
/// data's held-out set when training on the sample data.
private func validationPlan(_ settings: CoordinatorSettings, stepsPerEpoch: Int, logger: Logger) throws -> ValidationPlan? {
    guard settings.validates else {
        if settings.validationEvery != 0 { logger.info("no --val-data: no validation (give --val-data DIR with a held-out set)") }
        return nil
    }
    let data: TrainingData
    do {
        data = try DatasetLocation.resolveValidation(dataPath: settings.validationDataPath, cacheDirectory: settings.cacheDirectory)
    } catch {
        throw CoordinatorFailure.dataset(settings.validationDataPath.map { "--val-data \($0): \(error)" } ?? "\(error)")
    }
    // Workers on this machine (--local) and on a shared file system open the same absolute path.
    let path = settings.validationDataPath.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    let every = settings.validationEvery ?? max(1, min(stepsPerEpoch, 500))
    let plan = ValidationPlan(dataPath: path, fingerprint: data.fingerprint, every: every,
                              images: min(settings.validationImages ?? data.count, data.count), gridImages: settings.gridImages)
    logger.info("validation: \(plan.images) images of \(data.root)\(path == nil ? " (the sample data's held-out set)" : "") every \(every) steps and after the last; DIR/best by \(settings.bestMetric.rawValue)")
    return plan
}

/// Once per run: files of an image folder whose names the index cannot hold are not trained on.
private func warnAboutNamesLeftOut(_ data: TrainingData, logger: Logger) {
    guard case let .folder(index) = data, !index.nonUTF8Names.isEmpty else { return }
    let names = index.nonUTF8Names
    let shown = names.prefix(3).joined(separator: ", ") + (names.count > 3 ? " and \(names.count - 3) more" : "")
    logger.warning("\(names.count) \(names.count == 1 ? "file or folder" : "files or folders") in \(index.root) left out of the dataset because \(names.count == 1 ? "its name is" : "their names are") not valid UTF-8: \(shown) (a folder with everything in it). Rename them to UTF-8 to train on them, e.g. convmv -f latin1 -t utf8 -r --notest \(index.root); the workers leave out the same files")
}

/// The newest valid checkpoint to resume from (docs/decisions.md: resuming is automatic; --resume
/// makes it mandatory). A checkpoint of another configuration, dataset, global batch or seed is
/// an error: it is never overwritten silently.
private func findCheckpoint(_ store: CheckpointStore, lock: CheckpointDirectoryLock, settings: CoordinatorSettings,
                            index: TrainingData, logger: Logger) throws -> Checkpoint? {
    for removed in store.removeTemporaries(holding: lock) { logger.warning("removed an incomplete checkpoint left by a crash: \(removed)") }
    guard let checkpoint = store.loadNewestValid(quarantining: lock, warning: { logger.warning("\($0)") }) else {
        if settings.resume { throw CoordinatorFailure.plan("--resume: no valid checkpoint in \(store.directory)") }
        return nil
    }
    let state = checkpoint.state
    var conflicts: [String] = []
    if state.config != settings.config { conflicts.append("configuration \(state.config) (this run: \(settings.config))") }
    if state.datasetFingerprint != index.fingerprint {
        conflicts.append("dataset fingerprint \(state.datasetFingerprint.prefix(16)) (this run: \(index.fingerprint.prefix(16)))")
    }
    if state.globalBatch != settings.globalBatch { conflicts.append("global batch \(state.globalBatch) (this run: \(settings.globalBatch))") }
    if state.seed != settings.seed { conflicts.append("seed \(state.seed) (this run: \(settings.seed))") }
    conflicts += recipeConflicts(checkpointRecipe: state.recipeJSON, settings: settings)
    guard conflicts.isEmpty else {
        throw CoordinatorFailure.plan("\(store.directory) holds a checkpoint of step \(state.step) with \(conflicts.joined(separator: ", ")); use another --checkpoint-dir or the same settings")
    }
    logger.notice("resuming from the checkpoint of step \(state.step) (epoch \(state.epoch), written by \(state.worldSize) workers) in \(store.directory)")
    return checkpoint
}

/// The recipe settings (beta, latent weight, shard window) in which a checkpoint's recipe differs from this run's,
/// described. A recipe without them was written at their defaults.
func recipeConflicts(checkpointRecipe json: String, settings: CoordinatorSettings) -> [String] {
    guard let recipe = try? TrainingRecipe.decode(json) else { return [] }
    var conflicts: [String] = []
    let beta = recipe.beta ?? 1
    if beta != settings.beta { conflicts.append("beta \(beta) (this run: \(settings.beta))") }
    let weight = recipe.latentWeight ?? .value(1)
    if weight != settings.latentWeight { conflicts.append("latent weight \(weight) (this run: \(settings.latentWeight))") }
    let window = recipe.shardWindow ?? 0
    if window != settings.shardWindow { conflicts.append("shard window \(window) (this run: \(settings.shardWindow))") }
    return conflicts
}

private func writeSummary(settings: CoordinatorSettings, server: CoordinatorServer,
                          outcome: (path: String, step: Int, epoch: Int), seconds: Double, logger: Logger) throws {
    let last = server.finalSummary
    let summary = RunSummary(settings: settings, outcome: outcome, plannedSteps: server.totalSteps, seconds: seconds, last: last)
    let path = ((outcome.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("summary.json")
    try summary.write(to: path)
    let loss = last.map { " final loss \(ProgressFormat.fixed($0.loss, 4)), sparsity \(ProgressFormat.fixed($0.sparsity, 3))," } ?? ""
    logger.notice("summary: \(outcome.step)/\(server.totalSteps) steps\(summary.stopped_early ? " (stopped early)" : "") in \(ProgressFormat.clock(seconds)),\(loss) weights \(outcome.path), summary \(path)")
}
