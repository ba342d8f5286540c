import Data
import Foundation
import Logging
import Model
import Wire

/// The worker's shell: rendezvous with the coordinator, the ring, the training loop, the final
/// upload. Runs on one dedicated thread (BLAS and ring waits block; DECISIONS.md), with the
/// control channel and the collectives on threads of their own.
///
/// Control protocol, worker side:
/// 1. hello -> welcome (heartbeats start) or refuse (exit non-zero with the coordinator's reason);
/// 2. assignment -> ring formed, parameters broadcast from the state-source rank, a
///    `WorkerStatus` with the starting checksum;
/// 3. one `StepReport` per step; a `Shutdown` during training asks to stop: the request rides in
///    the next step's all-reduce so that every rank stops after the same step;
/// 4. after the last step a `WorkerStatus` with the final checksum, then the worker serves
///    `CheckpointCommand.upload` (parameters as `TensorChunk`s, then `uploadComplete`) until a
///    `Shutdown`, whose exit code it exits with. An `Abort` ends the worker at once.
final class WorkerSession {
    let settings: WorkerSettings
    var logger: Logger
    let context: ZmqContext
    let control: ControlChannel
    let workerID: String

    init(settings: WorkerSettings, logger: Logger) throws(ZmqError) {
        self.settings = settings
        self.logger = logger
        context = try ZmqContext()
        control = ControlChannel(endpoint: settings.coordinator, context: context,
                                 fakeProtocolVersion: settings.fakeProtocolVersion, logger: logger)
        workerID = settings.workerID ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    }

    /// Runs the session; returns the exit code the coordinator asked for, or 1 after a failure,
    /// which is logged (with this worker's rank and generation once it has them) and also sent
    /// to the coordinator as an `Abort`, so the run ends with its reason.
    func run() -> Int32 {
        defer { control.stop() }
        do {
            return try session()
        } catch {
            logger.error("\(error)")
            switch error as? WorkerFailure {
            case .refused?, .aborted?, .coordinatorSilent?: break
            default: control.send(.abort(Abort(reason: "worker \(workerID): \(error)")))
            }
            return 1
        }
    }

    private func session() throws -> Int32 {
        let index = try DatasetLocation.resolve(dataPath: settings.dataPath, cacheDirectory: settings.cacheDirectory)
        logger.debug("dataset \(index.root): \(index.count) images, fingerprint \(index.fingerprint.prefix(16))")
        let dataEndpoint = try reserveDataPlaneEndpoint()
        control.send(.hello(Hello(workerID: workerID, host: ProcessInfo.processInfo.hostName,
                                  dataPlaneEndpoint: dataEndpoint, datasetFingerprint: index.fingerprint)))
        logger.info("worker \(workerID): hello to \(settings.coordinator), data plane \(dataEndpoint), dataset of \(index.count) images")

        let welcome = try awaitMessage("a welcome")
        switch welcome.message {
        case let .welcome(body):
            control.setHeader(runID: welcome.runID, generation: 0)
            control.startHeartbeats(every: .milliseconds(Int(max(body.heartbeatIntervalMilliseconds, 50))))
        case let .refuse(body):
            throw WorkerFailure.refused(reason: body.reason, detail: body.detail)
        case let .shutdown(body):
            return body.exitCode
        default:
            throw WorkerFailure.unexpectedMessage(expected: "welcome or refuse", found: "\(welcome.message.kind)")
        }

        while true {
            let envelope = try awaitMessage("an assignment")
            switch envelope.message {
            case let .assignment(assignment):
                return try train(assignment, runID: envelope.runID, index: index, dataEndpoint: dataEndpoint)
            case let .shutdown(body):
                logger.notice("coordinator ended the run before training: \(body.reason)")
                return body.exitCode
            case let .abort(body):
                throw WorkerFailure.aborted(reason: body.reason)
            default:
                logger.debug("ignored \(envelope.message.kind) while waiting for an assignment")
            }
        }
    }

    /// Binds a socket on port 0 of `--host` to learn a free port for the ring's receiver, which
    /// is created (and binds that port) once the assignment says the rank and world size.
    private func reserveDataPlaneEndpoint() throws(ZmqError) -> String {
        let probe = try ZmqSocket(context, type: .pull)
        let endpoint = try probe.bind("tcp://\(settings.host):*")
        probe.close()
        return endpoint
    }

    /// The next message, or an error once the coordinator has been silent for --reconnect-timeout.
    func awaitMessage(_ what: String) throws -> Envelope {
        let timeout = settings.reconnectTimeoutSeconds
        let envelope: Envelope?
        do { envelope = try control.receive(timeout: .milliseconds(Int(timeout * 1000))) } catch { throw WorkerFailure.control(error) }
        guard let envelope else {
            throw WorkerFailure.coordinatorSilent(endpoint: settings.coordinator, seconds: timeout, waitingFor: what)
        }
        return envelope
    }

    private func train(_ assignment: Assignment, runID: UInt64, index: DatasetIndex, dataEndpoint: String) throws -> Int32 {
        let rank = Int(assignment.rank), world = Int(assignment.worldSize), generation = assignment.generation
        logger[metadataKey: "rank"] = "\(rank)"
        logger[metadataKey: "generation"] = "\(generation)"
        control.setHeader(runID: runID, generation: generation)
        guard let config = ModelConfig.named(assignment.configurationName) else {
            throw WorkerFailure.unknownConfiguration(assignment.configurationName)
        }
        let recipe: TrainingRecipe
        do { recipe = try TrainingRecipe.decode(assignment.settingsJSON) } catch { throw WorkerFailure.recipe(error) }
        let sampler: Sampler
        do {
            sampler = try Sampler(sampleCount: index.count, globalBatch: Int(assignment.globalBatch), seed: assignment.seed)
        } catch {
            throw WorkerFailure.sampler("\(error)")
        }

        let collectives = try formRing(assignment, runID: runID, dataEndpoint: dataEndpoint)
        defer { collectives.stop() }
        let layout = ParameterLayout(config: config)
        var parameters = [Float](repeating: 0, count: layout.totalCount)
        if rank == Int(assignment.stateSourceRank) {
            parameters.withUnsafeMutableBufferPointer {
                initializeParameters($0, layout: layout, config: config, seed: assignment.seed)
            }
        }
        do {
            try parameters.withUnsafeMutableBufferPointer { buffer throws(RingError) in
                _ = try collectives.wait(collectives.broadcast(buffer, root: Int(assignment.stateSourceRank), generation: generation))
            }
        } catch {
            throw WorkerFailure.ring(step: 0, error)
        }

        let start = SamplerCursor(epoch: Int(assignment.cursor.epoch), step: Int(assignment.cursor.step))
        let done = sampler.stepsBefore(start)
        let slice = Sampler.sliceRange(rank: rank, worldSize: world, globalBatch: Int(assignment.globalBatch)).count
        let microBatch = min(recipe.microBatch, max(slice, 1))
        let replica = TrainingReplica(model: SCVAEModel(config: config, maxBatch: microBatch), parameters: parameters,
                                      optimizer: Optimizer(settings: recipe.optimizerSettings, parameterCount: layout.totalCount),
                                      microBatch: microBatch)
        control.send(.workerStatus(WorkerStatus(workerID: workerID, lastAppliedStep: UInt64(done), cursor: assignment.cursor,
                                                parameterChecksum: parameterChecksum(replica.parameters))))
        logger.info("rank \(rank) of \(world): \(config.name), slice of \(slice) images per step, from \(start), \(recipe.totalSteps - done) steps to go")

        let loop = TrainingLoop(replica: replica, sampler: sampler, recipe: recipe, index: index, rank: rank, world: world,
                                start: start, collectives: collectives, generation: generation, control: control, logger: logger)
        let applied = try loop.run()

        control.send(.workerStatus(WorkerStatus(
            workerID: workerID, lastAppliedStep: UInt64(applied.steps),
            cursor: ShardCursor(epoch: UInt64(applied.cursor.epoch), step: UInt64(applied.cursor.step)),
            parameterChecksum: parameterChecksum(replica.parameters))))
        return try serveUntilShutdown(replica: replica, layout: layout, step: applied.steps, epoch: applied.cursor.epoch)
    }

    private func formRing(_ assignment: Assignment, runID: UInt64, dataEndpoint: String) throws -> CollectiveThread {
        let context = self.context, control = self.control, logger = self.logger
        let ringSettings = RingSettings(
            silenceDeadline: .seconds(5),
            // A silent neighbour is waited for until the coordinator (which hears every
            // worker's heartbeats) aborts the run: slow is not dead (DECISIONS.md).
            isPeerAlive: { _ in control.abortReason == nil },
            onStall: { rank, waited in logger.warning("ring: rank \(rank) silent for \(Int(waited.seconds)) s (alive per the coordinator); still waiting") })
        do {
            let collectives = try CollectiveThread {
                () throws(RingError) -> RingCommunicator in
                try RingCommunicator(context: context, rank: Int(assignment.rank), worldSize: Int(assignment.worldSize),
                                     runID: runID, bindTo: dataEndpoint, settings: ringSettings)
            }
            _ = try collectives.wait(collectives.connect(toNext: assignment.next.endpoint))
            return collectives
        } catch {
            throw WorkerFailure.ring(step: 0, error)
        }
    }

    private func serveUntilShutdown(replica: TrainingReplica, layout: ParameterLayout, step: Int, epoch: Int) throws -> Int32 {
        while true {
            let envelope = try awaitMessage("the end of the run")
            switch envelope.message {
            case let .checkpoint(command) where command.action == .upload:
                upload(replica.parameters, layout: layout, step: step, epoch: epoch)
            case let .shutdown(body) where body.reason == TrainingRecipe.stopRequestReason:
                // A stop request that arrived after this rank stopped (through a neighbour's
                // request, or at the last step): the end of the run is still to come.
                logger.debug("stop request arrived after training ended")
            case let .shutdown(body):
                logger.info("shutdown: \(body.reason)")
                return body.exitCode
            case let .abort(body):
                throw WorkerFailure.aborted(reason: body.reason)
            default:
                logger.debug("ignored \(envelope.message.kind) after training")
            }
        }
    }

    /// Sends the parameters as named float32 tensors (SCVAE.md names), then `uploadComplete`.
    private func upload(_ parameters: [Float], layout: ParameterLayout, step: Int, epoch: Int) {
        let tensors = WeightsFile.namedTensors(parameters, layout: layout)
        for (i, tensor) in tensors.enumerated() {
            for chunk in TensorChunk.chunks(transfer: .parameters, step: UInt64(step), tensorIndex: UInt32(i),
                                            tensorCount: UInt32(tensors.count), name: tensor.name, dtype: .float32,
                                            shape: tensor.shape.map { UInt64($0) }, bytes: tensor.data) {
                control.send(.tensorChunk(chunk))
            }
        }
        control.send(.checkpoint(CheckpointCommand(action: .uploadComplete, step: UInt64(step), epoch: UInt64(epoch))))
        logger.info("uploaded \(tensors.count) parameter tensors of step \(step)")
    }
}
