import TensorFiles
import Dataset
import Checkpoints
import Foundation
import Launch
import Logging
import Wire

/// The coordinator's shell: one dedicated thread owns the ROUTER control socket and turns what
/// happens (frames, a `--local` worker's exit, signals, the writer's and the loader's results,
/// the time) into events for `RunController`, then carries out its directives. No call in the
/// loop blocks for long: checkpoints are written and loaded on threads of their own, so
/// heartbeats keep going out. It is never on the per-step data path: workers all-reduce among
/// themselves.
final class CoordinatorServer {
    let settings: CoordinatorSettings
    var logger: Logger
    let totalSteps: Int
    let stopSignal: StopSignal
    let context: ZmqContext
    let socket: ZmqSocket
    /// The endpoint actually bound (port 0 resolved).
    let endpoint: String
    var localWorkers: LocalWorkers?
    let writer: CheckpointWriter
    private var controller: RunController
    private let loads = LoadResults()
    /// With --curve-keys: the ZAP handler admitting the listed workers' keys.
    private var authenticator: ZapAuthenticator?
    /// Logs connections refused during the handshake (a worker without keys, bytes that are not
    /// ZeroMQ), at most once per peer and reason every 10 s.
    private var handshakes: HandshakeMonitor?
    private var metrics: JSONLinesFile?
    private var events: JSONLinesFile?
    /// DIR/tensorboard: the step scalars of `metrics`, for `tensorboard --logdir DIR/tensorboard`.
    private var tensorBoard: TensorBoardEventFile?
    /// --timeline: the Chrome trace.
    private var timeline: TimelineFile?
    private var stopRequestsSeen = 0
    private let clockStart = ContinuousClock.now

    /// Control frames are tensor chunks of at most 8 MiB or small messages: anything larger is
    /// refused by libzmq before it is buffered.
    static let controlLimits = DecodeLimits(maxPayloadLength: 16 << 20)
    /// Frames queued from one peer before libzmq stops reading its connection (TCP backpressure).
    static let receiveHighWaterMark: Int32 = 4096

    /// Binds the control socket (on the calling thread, which must be the thread that calls `run`).
    init(settings: CoordinatorSettings, index: TrainingData, sampler: Sampler, totalSteps: Int, resumeFrom: Checkpoint?,
         store: CheckpointStore, stopSignal: StopSignal, validation: ValidationPlan? = nil, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        self.totalSteps = totalSteps
        self.stopSignal = stopSignal
        do {
            context = try ZmqContext()
            socket = try ZmqSocket(context, type: .router, linger: .seconds(2))
            try socket.setOption(ZMQ_ROUTER_MANDATORY_OPTION, 0, "ZMQ_ROUTER_MANDATORY")
            // Restores are hundreds of chunks: sends are never dropped on a full queue.
            try socket.setHighWaterMarks(send: 0, receive: Self.receiveHighWaterMark)
            try socket.limitMessageSize(to: Self.controlLimits)
        } catch {
            throw CoordinatorFailure.transport("cannot create the control socket: \(error)")
        }
        var admittedWorkerKeys: [String] = []
        if let folder = settings.curveKeys {
            do {
                let own = try CurveKeyFolder.ownKeyPair(in: folder, name: "coordinator")
                let admitted = try AdmittedKeys.load(folder: folder, excluding: own.publicKey)
                let authenticator = try ZapAuthenticator(context: context, admitted: admitted, onRefusal: { [logger] refusal in
                    logger.warning("refused a connection: \(refusal)")
                })
                self.authenticator = authenticator
                admittedWorkerKeys = admitted.names.keys.sorted()
                try socket.enableCurveServer(own, authenticatedBy: authenticator)
                logger.info("CURVE on: \(admitted.count) admitted worker key(s) from \(folder)")
            } catch {
                throw CoordinatorFailure.transport("--curve-keys \(folder): \(error)")
            }
        } else if !isLoopbackEndpoint(settings.listen) {
            logger.warning("--insecure: \(settings.listen) takes plain-text connections from anyone who can reach it")
        }
        do {
            // With CURVE the ZAP handler already names refused keys; the monitor adds the rest.
            let kinds: Set<HandshakeFailure.Kind> = authenticator == nil ? Set(HandshakeFailure.Kind.allCases) : [.protocolError, .noDetail]
            handshakes = try HandshakeMonitor(socket: socket, kinds: kinds) { [logger] failure in logger.warning("\(failure)") }
        } catch {
            logger.warning("refused connections will not be logged: \(error)")
        }
        do {
            endpoint = try socket.bind(settings.bindEndpoint)
        } catch {
            throw CoordinatorFailure.transport("cannot bind \(settings.listen): \(error)")
        }
        let plan = RunController.Plan(settings: settings,
                                      recipe: TrainingRecipe(settings: settings, totalSteps: totalSteps, validation: validation),
                                      totalSteps: totalSteps, runID: UInt64.random(in: 1...UInt64.max), sampler: sampler,
                                      datasetFingerprint: index.fingerprint, admittedWorkerKeys: admittedWorkerKeys,
                                      previousBest: BestSummary.read(directory: settings.outputDirectory)?.best)
        controller = RunController(plan: plan, resumeFrom: resumeFrom, now: 0)
        writer = CheckpointWriter(store: store)
        do {
            metrics = try JSONLinesFile(path: settings.metricsFile, truncating: resumeFrom == nil)
        } catch {
            throw CoordinatorFailure.cannotWrite(path: settings.metricsFile, reason: "\(error)")
        }
        do {
            events = try JSONLinesFile(path: (settings.outputDirectory as NSString).appendingPathComponent("events.jsonl"))
        } catch {
            logger.warning("\(error); events are not recorded")
        }
        if let path = settings.timelinePath {
            do { timeline = try TimelineFile(path: path) } catch {
                throw CoordinatorFailure.cannotWrite(path: path, reason: "\(error)")
            }
        }
        do {
            tensorBoard = try TensorBoardEventFile(folder: (settings.outputDirectory as NSString).appendingPathComponent("tensorboard"))
        } catch {
            logger.warning("\(error); TensorBoard scalars are not recorded")
        }
    }

    deinit {
        timeline?.close()
        writer.stop()
        _ = handshakes?.stop()
        socket.close()
        authenticator?.stop()
    }

    private var now: Double { (ContinuousClock.now - clockStart).inSeconds }

    /// The last completed step's summary, for the end-of-run summary.
    var finalSummary: RunProgress.StepSummary? { controller.lastSummary }

    /// Runs the job; returns the final weights' path, the step and epoch reached.
    func run() throws -> (path: String, step: Int, epoch: Int) {
        while true {
            var events: [ControllerEvent] = [.tick]
            let requests = stopSignal.requests
            if requests > stopRequestsSeen {
                stopRequestsSeen = requests
                events.append(.stopSignal(count: requests))
            }
            if let exited = localWorkers?.takeExited() {
                events.append(.localWorkerExited(workerID: exited.id, status: exited.status))
            }
            events += writer.takeResults().map(ControllerEvent.writer)
            if let loaded = loads.take() { events.append(.checkpointLoaded(loaded)) }
            if let received = receive() { events.append(received) }
            for event in events {
                let directives = controller.handle(event, now: now)
                if let end = carryOut(directives) {
                    switch end {
                    case let .completed(path, step, epoch): return (path, step, epoch)
                    case let .failed(failure): throw failure
                    }
                }
            }
        }
    }

    /// The next frame as an event, waiting at most 50 ms; nil when none came.
    private func receive() -> ControllerEvent? {
        let received: ReceivedEnvelope
        do {
            received = try socket.receiveEnvelope(deadline: .now + .milliseconds(50), limits: Self.controlLimits)
        } catch .timedOut {
            return nil
        } catch {
            logger.warning("control socket: \(error)")
            return nil
        }
        let peer = PeerID(bytes: received.identity ?? [])
        switch received.envelope {
        case let .success(envelope): return .received(envelope, from: peer, address: received.peerAddress)
        case let .failure(error): return .undecodable(error, from: peer)
        }
    }

    /// Does what the controller asked; returns how the run ended, if it did.
    private func carryOut(_ directives: [ControllerDirective]) -> RunEnd? {
        logger[metadataKey: "generation"] = "\(controller.generation)"
        for directive in directives {
            switch directive {
            case let .send(envelope, peer):
                guard !peer.bytes.isEmpty else { continue }
                do {
                    try socket.send(envelope, to: peer.bytes, deadline: .now + .seconds(2))
                } catch {
                    logger.warning("could not send \(envelope.message.kind) to peer \(peer): \(error)")
                }
            case let .log(level, text):
                logger.log(level: level, "\(text)")
            case let .record(event):
                do { try events?.append(TimedRunEvent(time: Date().timeIntervalSince1970, event: event)) } catch {
                    logger.warning("\(error)")
                }
                recordOnTimeline(event)
            case let .timeline(report, workerID, rank):
                do { try timeline?.append(report, from: workerID, rank: rank) } catch {
                    logger.error("\(error); the timeline is not recorded from now on")
                    timeline = nil
                }
            case let .metrics(line):
                do { try metrics?.append(line) } catch {
                    logger.error("\(error); metrics are not recorded from now on")
                    metrics = nil
                }
                do { try tensorBoard?.append(step: line.step, scalars: line.tensorBoardScalars) } catch {
                    logger.error("\(error); TensorBoard scalars are not recorded from now on")
                    tensorBoard = nil
                }
            case let .validation(result, isBest):
                recordValidation(result, isBest: isBest)
            case let .write(job):
                if let replaced = writer.submit(job) {
                    logger.warning("checkpoint of step \(replaced) skipped: the writer is still busy and a newer state is waiting")
                }
            case .loadNewestCheckpoint:
                loadNewestCheckpoint()
            case let .respawnLocalWorker(id):
                do { try localWorkers?.respawn(id: id) } catch { logger.error("cannot start a replacement for \(id): \(error)") }
            case let .end(end):
                return end
            }
        }
        return nil
    }

    /// The coordinator's events on its own track of the timeline: a checkpoint as the span it was
    /// written in, the others as instants.
    private func recordOnTimeline(_ event: RunEvent) {
        guard let timeline else { return }
        var seconds: Double?
        var args: [String: String] = [:]
        switch event {
        case let .checkpoint(step, _, _, written): seconds = written; args["step"] = "\(step)"
        case let .generationStarted(generation, workers, stateFrom, step):
            args = ["generation": "\(generation)", "workers": workers.joined(separator: " "), "state_from": stateFrom, "step": "\(step)"]
        case let .workerDown(workers, step, _): args = ["workers": workers.joined(separator: " "), "step": "\(step)"]
        case let .recovery(step, workers, sinceDown, _): args = ["step": "\(step)", "workers": "\(workers)", "seconds": "\(sinceDown)"]
        case let .validation(step, _, _, loss, psnr, _, best): args = ["step": "\(step)", "loss": "\(loss)", "psnr": "\(psnr)", "best": "\(best)"]
        default: break
        }
        do { try timeline.appendCoordinatorEvent(event.name, seconds: seconds, args: args) } catch {
            logger.error("\(error); the timeline is not recorded from now on")
            self.timeline = nil
        }
    }

    /// A completed validation: its metrics line, its TensorBoard scalars and pictures, and its
    /// PNGs in DIR/samples/.
    private func recordValidation(_ result: ValidationResult, isBest: Bool) {
        let line = ValidationMetrics(result, isBest: isBest)
        do { try metrics?.append(line) } catch {
            logger.error("\(error); metrics are not recorded from now on")
            metrics = nil
        }
        var images: [TensorBoardEvents.Image] = []
        do {
            let (_, atomsPNG) = try ValidationPictures.write(result, into: settings.outputDirectory)
            if let size = ValidationPictures.pngSize(result.gridPNG) {
                images.append(.init(tag: "validation/reconstructions", width: size.width, height: size.height, encoded: result.gridPNG))
            }
            if let size = ValidationPictures.pngSize(atomsPNG) {
                images.append(.init(tag: "validation/atom_usage", width: size.width, height: size.height, encoded: atomsPNG))
            }
        } catch {
            logger.warning("the pictures of the validation after step \(result.step) could not be written: \(error)")
        }
        do { try tensorBoard?.append(step: result.step, scalars: line.tensorBoardScalars, images: images) } catch {
            logger.error("\(error); TensorBoard scalars are not recorded from now on")
            tensorBoard = nil
        }
    }

    /// Loads the newest valid checkpoint on a thread of its own, after the writer has finished
    /// what it was given (the newest state may be on its way to disk).
    private func loadNewestCheckpoint() {
        let writer = self.writer, loads = self.loads, logger = self.logger
        let thread = Thread {
            if !writer.waitUntilIdle(timeout: .seconds(600)) {
                logger.warning("the checkpoint writer is still busy after 600 s; loading what is on disk")
            }
            loads.put(writer.store.loadNewestValid(warning: { logger.warning("\($0)") }))
        }
        thread.name = "scvae-checkpoint-load"
        thread.start()
    }
}

/// Results of checkpoint loads, handed from the loading thread to the control loop.
private final class LoadResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Checkpoint?] = []

    func put(_ checkpoint: Checkpoint?) { lock.withLock { results.append(checkpoint) } }

    /// The oldest result not taken yet: `.some(nil)` is a load that found no valid checkpoint.
    func take() -> Checkpoint?? {
        lock.withLock {
            guard !results.isEmpty else { return Checkpoint??.none }
            return Checkpoint??.some(results.removeFirst())
        }
    }
}

/// ZMQ_ROUTER_MANDATORY (33): off, so a message to a vanished worker is dropped rather than an error.
let ZMQ_ROUTER_MANDATORY_OPTION: Int32 = 33
