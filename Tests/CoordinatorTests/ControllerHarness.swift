import TensorFiles
import Dataset
import Checkpoints
import Foundation
import Logging
import Testing
import Wire
@testable import Coordinator

/// A `RunController` driven by hand: workers are names, time is a number, and every directive
/// is kept for the test to read. No sockets, no threads, no files.
struct ControllerHarness {
    var controller: RunController
    var now = 0.0
    /// Every directive, in order.
    private(set) var directives: [ControllerDirective] = []
    /// Each worker's connection, and the process (instance) and join count its hellos carry.
    private var connections: [String: PeerID] = [:]
    private var instances: [String: UInt64] = [:]
    private var joins: [String: UInt32] = [:]
    private var nextPeer: UInt8 = 1

    static let fingerprint = "fingerprint-of-the-test-data"
    static let runID: UInt64 = 0xC0FFEE

    /// A run of `steps` steps, `workers` workers (`minimum` of them needed), global batch 8 over 64 samples.
    init(workers: Int = 2, minimum: Int? = nil, steps: Int = 20, checkpointEvery: Int = 5, resumeFrom: Checkpoint? = nil,
         validation: ValidationPlan? = nil, previousBest: BestValidation? = nil,
         settings adjust: (inout CoordinatorSettings) -> Void = { _ in }) {
        var settings = CoordinatorSettings()
        settings.workers = workers
        settings.minWorkers = minimum
        settings.globalBatch = 8
        settings.steps = steps
        settings.checkpointEvery = checkpointEvery
        settings.checksumEvery = 5
        settings.livenessDeadline = 2.5
        settings.stallSeconds = 30
        adjust(&settings)
        let plan = RunController.Plan(settings: settings,
                                      recipe: TrainingRecipe(settings: settings, totalSteps: steps, validation: validation),
                                      totalSteps: steps, runID: Self.runID,
                                      sampler: try! Sampler(sampleCount: 64, globalBatch: 8, seed: settings.seed),
                                      datasetFingerprint: Self.fingerprint, admittedWorkerKeys: [], previousBest: previousBest)
        controller = RunController(plan: plan, resumeFrom: resumeFrom, now: 0)
    }

    var lineage: UInt64 { controller.plan.lineage.id }

    // MARK: Driving

    @discardableResult
    mutating func handle(_ event: ControllerEvent) -> [ControllerDirective] {
        let out = controller.handle(event, now: now)
        directives += out
        return out
    }

    /// Lets `seconds` pass in turns of 0.05 s; the workers named in `alive` send a heartbeat every 0.5 s.
    mutating func advance(_ seconds: Double, alive: [String] = []) {
        let end = now + seconds
        var nextBeat = now
        while now < end {
            now = min(now + 0.05, end)
            if now >= nextBeat {
                for id in alive { send(.heartbeat(Heartbeat(sequence: 1, lastAppliedStep: 0)), from: id) }
                nextBeat = now + 0.5
            }
            handle(.tick)
        }
    }

    /// A hello from `id`: its first, or (with `rejoin`) the next join of the same process; `process`
    /// names another process using the same id.
    @discardableResult
    mutating func hello(_ id: String, replicaStep: Int? = nil, lineage: UInt64? = nil, rejoin: Bool = false,
                        process: UInt64? = nil, fingerprint: String = fingerprint, newConnection: Bool = false,
                        sharedMemory: Bool = false) -> [ControllerDirective] {
        if connections[id] == nil || newConnection || process != nil {
            connections[id] = PeerID(bytes: [nextPeer, 0xAB])
            nextPeer &+= 1
        }
        if let process { instances[id] = process } else if instances[id] == nil { instances[id] = UInt64(nextPeer) * 1000 }
        if rejoin { joins[id, default: 1] += 1 } else if joins[id] == nil { joins[id] = 1 }
        let claim = replicaStep.map { ReplicaClaim(lineage: lineage ?? self.lineage, step: UInt64($0)) }
        let hello = Hello(workerID: id, host: "host-\(id)", dataPlaneEndpoint: "tcp://127.0.0.1:4\(id.count)000",
                          capabilities: sharedMemory ? [SharedMemoryHost.capability] : [], datasetFingerprint: fingerprint,
                          sharedMemoryHost: sharedMemory ? "one-host" : "", instance: instances[id]!, joins: joins[id]!, replica: claim)
        return handle(.received(Envelope(generation: 0, runID: 0, message: .hello(hello)), from: connections[id]!))
    }

    /// A message from worker `id` in `generation` (default: the current one) of `runID` (default: this run).
    @discardableResult
    mutating func send(_ message: Message, from id: String, generation: UInt64? = nil, runID: UInt64 = runID) -> [ControllerDirective] {
        guard let peer = connections[id] else {
            Issue.record("\(id) never said hello")
            return []
        }
        return handle(.received(Envelope(generation: generation ?? controller.generation, runID: runID, message: message), from: peer))
    }

    /// Every rank of the current generation confirms its start with the same checksum.
    mutating func confirmStart(checksum: UInt32 = 0xABCD) {
        guard let record = controller.current else { Issue.record("no generation runs"); return }
        for id in record.ranks.keys.sorted() {
            send(.workerStatus(WorkerStatus(workerID: id, lastAppliedStep: UInt64(record.startStep),
                                            cursor: ShardCursor(epoch: 0, step: 0), parameterChecksum: checksum)), from: id)
        }
    }

    /// Every rank of the current generation reports steps `steps`.
    mutating func completeSteps(_ steps: ClosedRange<Int>, checksum: UInt32 = 0xABCD) {
        guard let record = controller.current else { Issue.record("no generation runs"); return }
        for step in steps {
            for (id, rank) in record.ranks.sorted(by: { $0.value < $1.value }) {
                send(.stepReport(Self.report(rank: rank, step: step, checksum: checksum)), from: id)
            }
        }
    }

    /// Every rank stops after `step` (its end status).
    mutating func finishAll(at step: Int, checksum: UInt32 = 0xABCD) {
        guard let record = controller.current else { Issue.record("no generation runs"); return }
        for id in record.ranks.keys.sorted() {
            send(.workerStatus(WorkerStatus(workerID: id, lastAppliedStep: UInt64(step), cursor: ShardCursor(epoch: 2, step: 4),
                                            parameterChecksum: checksum)), from: id)
        }
    }

    /// Worker `id` uploads a state of `step` whose parameters are `floats` (their CRC32C is the checksum).
    mutating func upload(from id: String, step: Int, floats: [Float] = [1, 2, 3]) {
        let tensor = NamedTensor(name: "w", shape: [floats.count], floats: floats)
        for chunk in TensorChunk.chunks(transfer: .parameters, step: UInt64(step), float32: [(tensor.name, tensor.shape, tensor.data)]) {
            send(.tensorChunk(chunk), from: id)
        }
        send(.checkpoint(CheckpointCommand(action: .uploadComplete, step: UInt64(step), epoch: 0, optimizerStep: UInt64(step))), from: id)
    }

    static func checksum(of floats: [Float]) -> UInt32 { crc32c(NamedTensor(name: "w", shape: [floats.count], floats: floats).data) }

    static func report(rank: Int, step: Int, checksum: UInt32) -> StepReport {
        StepReport(rank: UInt32(rank), epoch: 0, step: UInt64(step),
                   lossTerms: [LossTerm(name: "loss", value: 1), LossTerm(name: "applied", value: 1)],
                   goodSamples: 4, imagesPerSecond: 8,
                   timings: StepTimings(dataSeconds: 0.1, computeSeconds: 0.5, allReduceSeconds: 0.1), parameterChecksum: checksum)
    }

    // MARK: Reading

    /// The messages sent to worker `id`, oldest first.
    func messages(to id: String) -> [Envelope] {
        guard let peer = connections[id] else { return [] }
        return directives.compactMap { if case let .send(envelope, to) = $0, to == peer { envelope } else { nil } }
    }

    /// The newest assignment sent to `id`.
    func assignment(of id: String) -> Assignment? {
        messages(to: id).compactMap { if case let .assignment(a) = $0.message { a } else { nil } }.last
    }

    var logLines: [String] { directives.compactMap { if case let .log(_, text) = $0 { text } else { nil } } }
    var warnings: [String] { directives.compactMap { if case let .log(level, text) = $0, level >= .warning { text } else { nil } } }
    var events: [RunEvent] { directives.compactMap { if case let .record(event) = $0 { event } else { nil } } }
    var ended: RunEnd? { directives.compactMap { if case let .end(end) = $0 { end } else { nil } }.first }
    var writes: [WriterJob] { directives.compactMap { if case let .write(job) = $0 { job } else { nil } } }
    var loadsAsked: Int { directives.filter { if case .loadNewestCheckpoint = $0 { true } else { false } }.count }

    var failed: Bool { if case .failed? = ended { true } else { false } }

    mutating func clear() { directives.removeAll() }

    /// A checkpoint of `step` as the store would load it.
    static func checkpoint(step: Int, settings: CoordinatorSettings = CoordinatorSettings()) -> Checkpoint {
        let state = CheckpointState(step: step, epoch: step / 8, cursorEpoch: step / 8, cursorStep: step % 8, optimizerStep: step,
                                    worldSize: 2, config: "tiny", globalBatch: 8, seed: 0, datasetFingerprint: fingerprint,
                                    codeVersion: "test", recipeJSON: "{}", rng: "keyed")
        return Checkpoint(state: state, model: [NamedTensor(name: "w", shape: [3], floats: [1, 2, 3])], optimizer: [])
    }
}
