import Foundation
import Testing
import Wire
@testable import Worker

/// The worker's side of the protocol, message by message, without sockets or threads.
@Suite struct WorkerProtocolTests {
    typealias D = WorkerProtocol.Directive
    static let run: UInt64 = 0xAAA

    static func envelope(_ message: Message, generation: UInt64 = 0, runID: UInt64 = run) -> Envelope {
        Envelope(generation: generation, runID: runID, message: message)
    }

    static let welcome = Message.welcome(Welcome(workerID: "w", heartbeatIntervalMilliseconds: 500, livenessDeadlineMilliseconds: 2500))

    static func assignment(_ generation: UInt64, origin: StateOrigin = .replicas, resumeStep: UInt64 = 0) -> Assignment {
        Assignment(rank: 0, worldSize: 2, generation: generation, previous: RingPeer(rank: 1, endpoint: "tcp://127.0.0.1:2"),
                   next: RingPeer(rank: 1, endpoint: "tcp://127.0.0.1:2"), configurationName: "tiny", settingsJSON: "{}",
                   cursor: ShardCursor(epoch: 0, step: 0), globalBatch: 8, seed: 0, stateSourceRank: 0,
                   stateOrigin: origin, resumeStep: resumeStep)
    }

    /// A machine welcomed by `run` at time 1, idle.
    static func welcomed() -> WorkerProtocol {
        var machine = WorkerProtocol(reconnectTimeout: 600, now: 0)
        _ = machine.tick(now: 0, coordinatorSilence: 0)
        _ = machine.received(envelope(welcome), now: 1)
        return machine
    }

    /// A machine running generation `generation`.
    static func training(_ generation: UInt64 = 1) -> WorkerProtocol {
        var machine = welcomed()
        _ = machine.received(envelope(.assignment(assignment(generation)), generation: generation), now: 2)
        return machine
    }

    static func exits(_ directives: [D]) -> Int32? {
        for case let .exit(code, _) in directives { return code }
        return nil
    }

    static func aborts(_ directives: [D]) -> [Abort] {
        directives.compactMap { if case let .send(.abort(abort)) = $0 { abort } else { nil } }
    }

    @Test func helloIsRepeatedWithBackoffUntilAWelcomeAndGivenUpOnlyAfterTheReconnectTimeout() {
        var machine = WorkerProtocol(reconnectTimeout: 60, now: 0)
        var hellos: [Double] = []
        var t = 0.0
        while t < 30 {
            if machine.tick(now: t, coordinatorSilence: t).contains(.sendHello(joins: 1)) { hellos.append(t) }
            t += 0.25
        }
        #expect(hellos.prefix(5) == [0, 0.5, 1.5, 3.5, 7.5], "doubling from 0.5 s")
        #expect(zip(hellos.dropFirst(), hellos).allSatisfy { $0 - $1 <= 5 }, "at most 5 s apart: \(hellos)")
        let directives = machine.received(Self.envelope(Self.welcome), now: 30)
        #expect(directives.contains(.welcomed(runID: Self.run, heartbeat: 0.5, deadline: 5, ringKeys: [])))
        #expect(machine.phase == .idle)

        var silent = WorkerProtocol(reconnectTimeout: 60, now: 0)
        #expect(Self.exits(silent.tick(now: 59, coordinatorSilence: 59)) == nil)
        #expect(Self.exits(silent.tick(now: 61, coordinatorSilence: 61)) == 1)
    }

    @Test func aDuplicateIdIsRetriedAnyOtherRefusalEndsTheWorker() {
        var machine = WorkerProtocol(reconnectTimeout: 600, now: 0)
        _ = machine.tick(now: 0, coordinatorSilence: 0)
        let duplicate = Self.envelope(.refuse(Refuse(reason: .duplicateWorkerID, detail: "another live worker process uses this worker id")))
        var logged = 0
        for i in 0..<30 {
            let directives = machine.received(duplicate, now: Double(i))
            #expect(Self.exits(directives) == nil)
            logged += directives.filter { if case .log = $0 { true } else { false } }.count
        }
        #expect(logged == 4, "the 1st, 10th, 20th and 30th refusal are logged")
        #expect(machine.phase == .joining)
        let refusal = machine.received(Self.envelope(.refuse(Refuse(reason: .datasetMismatch, detail: "dataset mismatch"))), now: 31)
        #expect(Self.exits(refusal) == 1)
        #expect(refusal.contains { if case let .exit(_, reason?) = $0 { reason.contains("dataset mismatch") } else { false } })
    }

    /// Every message the coordinator can send, in every phase: what the machine does with it.
    @Test(arguments: [
        // (phase, message, expected directive kinds, phase after)
        ("idle", "assignment 1", ["runGeneration"], "training 1"),
        ("idle", "old assignment", ["log"], "idle"),
        ("idle", "assignment of another run", ["log"], "idle"),
        ("training", "assignment 2", ["interrupt newGeneration"], "training 1"),
        ("training", "notMember", ["interrupt droppedFromRun", "log"], "joining"),
        ("training", "welcome of a new run", ["interrupt coordinatorReplaced", "welcomed", "log"], "training 1"),
        ("training", "repeated welcome", ["log"], "training 1"),
        ("training", "stop request", ["log"], "training 1"),
        ("training", "shutdown", ["log", "interrupt shutdown", "exit 0"], "exiting"),
        ("training", "abort", ["interrupt shutdown", "exit 1"], "exiting"),
        ("training", "upload", ["log"], "training 1"),
        ("training", "tensor chunk", [], "training 1"),
        ("finished", "upload", ["upload"], "finished"),
        ("finished", "assignment 2", ["runGeneration"], "training 2"),
        ("finished", "shutdown", ["log", "exit 0"], "exiting"),
        ("joining", "assignment 1", ["log"], "joining"),
        ("joining", "notMember", [], "joining"),
        ("joining", "run full", ["log"], "joining"),
    ])
    func messagesInEachPhase(phase: String, message: String, expected: [String], after: String) {
        var machine: WorkerProtocol
        switch phase {
        case "idle": machine = Self.welcomed()
        case "training": machine = Self.training(1)
        case "finished":
            machine = Self.training(1)
            _ = machine.generationEnded(.finished, now: 3)
        default:
            machine = WorkerProtocol(reconnectTimeout: 600, now: 0)
            _ = machine.tick(now: 0, coordinatorSilence: 0)
        }
        let envelope: Envelope
        switch message {
        case "assignment 1": envelope = Self.envelope(.assignment(Self.assignment(1)), generation: 1)
        case "assignment 2": envelope = Self.envelope(.assignment(Self.assignment(2)), generation: 2)
        case "old assignment": envelope = Self.envelope(.assignment(Self.assignment(0)))
        case "assignment of another run": envelope = Self.envelope(.assignment(Self.assignment(5)), generation: 5, runID: 0xBBB)
        case "notMember": envelope = Self.envelope(.refuse(Refuse(reason: .notMember, detail: "declared down")))
        case "run full": envelope = Self.envelope(.refuse(Refuse(reason: .runFull, detail: "the run already has its 2 workers")))
        case "welcome of a new run": envelope = Self.envelope(Self.welcome, runID: 0xBBB)
        case "repeated welcome": envelope = Self.envelope(Self.welcome)
        case "stop request": envelope = Self.envelope(.stopRequest(StopRequest(reason: "interrupted")))
        case "shutdown": envelope = Self.envelope(.shutdown(Shutdown(exitCode: 0, reason: "run complete")))
        case "abort": envelope = Self.envelope(.abort(Abort(reason: "run failed", cause: .runAborted)))
        case "upload": envelope = Self.envelope(.checkpoint(CheckpointCommand(action: .upload, step: 9, epoch: 1)))
        default:
            envelope = Self.envelope(.tensorChunk(TensorChunk.chunks(transfer: .parameters, step: 4,
                                                                      float32: [("w", [1], [0, 0, 128, 63])])[0]), generation: 1)
        }
        let directives = machine.received(envelope, now: 5)
        #expect(directives.map(Self.name) == expected, "\(phase) + \(message): \(directives)")
        #expect(Self.name(machine.phase) == after)
    }

    static func name(_ directive: D) -> String {
        switch directive {
        case .sendHello: "sendHello"
        case .welcomed: "welcomed"
        case .forgetCoordinator: "forgetCoordinator"
        case .runGeneration: "runGeneration"
        case let .interrupt(reason):
            switch reason {
            case .newGeneration: "interrupt newGeneration"
            case .droppedFromRun: "interrupt droppedFromRun"
            case .coordinatorLost: "interrupt coordinatorLost"
            case .coordinatorReplaced: "interrupt coordinatorReplaced"
            case .shutdown: "interrupt shutdown"
            }
        case .upload: "upload"
        case .send: "send"
        case .log: "log"
        case let .exit(code, _): "exit \(code)"
        }
    }

    static func name(_ phase: WorkerProtocol.Phase) -> String {
        switch phase {
        case .joining: "joining"
        case .idle: "idle"
        case let .training(generation): "training \(generation)"
        case .finished: "finished"
        case .exiting: "exiting"
        }
    }

    /// The reliability issue's abort: the checkpoint for the next generation arrived while this
    /// worker was still in its previous generation. It must be kept, not dropped.
    @Test func aRestoreThatArrivesDuringAnOlderGenerationIsKeptForTheNextOne() {
        var machine = Self.training(46)
        let tensor = (name: "w", shape: [2], bytes: [UInt8](repeating: 7, count: 8))
        for chunk in TensorChunk.chunks(transfer: .parameters, step: 70, float32: [tensor]) {
            #expect(machine.received(Self.envelope(.tensorChunk(chunk), generation: 47), now: 3).isEmpty)
        }
        _ = machine.received(Self.envelope(.checkpoint(CheckpointCommand(action: .restore, step: 70, epoch: 8)), generation: 47), now: 3)
        let next = machine.received(Self.envelope(.assignment(Self.assignment(47, origin: .checkpoint, resumeStep: 70)), generation: 47), now: 3)
        #expect(next.map(Self.name) == ["interrupt newGeneration"])
        let started = machine.generationEnded(.interrupted, now: 4)
        #expect(started.map(Self.name) == ["runGeneration"])
        #expect(machine.takeRestore(step: 70, generation: 46) == nil, "not the old generation's")
        #expect(machine.takeRestore(step: 70, generation: 47)?.parameters.map(\.name) == ["w"])
    }

    @Test func aSilentCoordinatorEndsTheGenerationAndTheWorkerSaysHelloAgainKeepingItsReplica() {
        var machine = Self.training(3)
        #expect(machine.tick(now: 6, coordinatorSilence: 4.9).isEmpty)
        let lost = machine.tick(now: 7, coordinatorSilence: 5.1)
        #expect(lost.map(Self.name) == ["interrupt coordinatorLost", "log", "forgetCoordinator"])
        #expect(machine.phase == .joining)
        // The generation ends after the interrupt; nothing else happens until the next tick's hello.
        #expect(machine.generationEnded(.ringFailed(step: 9, reason: "neighbour silent", peer: 1), now: 7.5).isEmpty,
                "an interrupted generation's ring failure is not reported")
        #expect(machine.tick(now: 8, coordinatorSilence: 0).contains(.sendHello(joins: 2)), "the second join")
        // A new coordinator (a new run) welcomes it; generations count afresh.
        _ = machine.received(Self.envelope(Self.welcome, runID: 0xBBB), now: 9)
        let first = machine.received(Self.envelope(.assignment(Self.assignment(1)), generation: 1, runID: 0xBBB), now: 9)
        #expect(first.map(Self.name) == ["runGeneration"])
    }

    @Test(arguments: [
        (WorkerProtocol.GenerationEnd.ringFailed(step: 4, reason: "rank 1 silent", peer: 1), Abort.Cause.ringFailed, "idle"),
        (.nextRankUnreachable(peer: 1, reason: "no connection to rank 1 at tcp://10.0.0.2:4000 within 30.0 s"), .ringUnreachable, "idle"),
        (.transportUnavailable(reason: "shared memory ring: /dev/shm is full"), .ringTransportUnavailable, "idle"),
        (.stateMissing(reason: "the checkpoint of step 70 has not arrived"), .stateMissing, "idle"),
        (.runCannotContinue(reason: "3 steps in a row had a non-finite loss"), .runCannotContinue, "idle"),
        (.workerFailed(reason: "cannot write /logs/x"), .workerFailed, "exiting"),
    ])
    func howAGenerationEndedIsReportedToTheCoordinator(end: WorkerProtocol.GenerationEnd, cause: Abort.Cause, after: String) {
        var machine = Self.training(2)
        let directives = machine.generationEnded(end, now: 3)
        let aborts = Self.aborts(directives)
        #expect(aborts.count == 1 && aborts.first?.cause == cause, "\(directives)")
        #expect(Self.name(machine.phase) == after)
        #expect((Self.exits(directives) != nil) == (after == "exiting"), "only the worker's own failure ends it")
    }

    /// Left out of the run because its ring address cannot be reached: the worker stops its
    /// generation and exits non-zero with the coordinator's reason (what to pass), rather than
    /// saying hello again and breaking the next generation too.
    @Test func aWorkerLeftOutForAnUnreachableRingAddressExitsSayingWhy() {
        var machine = Self.training(1)
        let detail = "worker a could not connect to this worker's ring address tcp://10.0.0.2:4000: start it with --host ADDRESS"
        let directives = machine.received(Self.envelope(.refuse(Refuse(reason: .unreachableRingAddress, detail: detail))), now: 3)
        #expect(Self.exits(directives) == 1, "\(directives)")
        #expect(directives.contains { if case let .exit(_, reason) = $0 { reason?.contains(detail) == true } else { false } }, "\(directives)")
        #expect(!directives.contains { if case .sendHello = $0 { true } else { false } })
    }

    @Test func aStopRequestIsRememberedForTheNextGenerationToo() {
        var machine = Self.welcomed()
        _ = machine.received(Self.envelope(.stopRequest(StopRequest(reason: "interrupted"))), now: 2)
        _ = machine.received(Self.envelope(.assignment(Self.assignment(1)), generation: 1), now: 2)
        #expect(machine.stopRequested && machine.phase == .training(generation: 1))
    }
}

/// The data-order log is JSON whatever the worker id.
@Suite struct DataOrderLogTests {
    @Test func aWorkerIdWithQuotesAndBackslashesStaysValidJSON() throws {
        let path = NSTemporaryDirectory() + "scvae-order-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try DataOrderLog(path: path)
        let id = "node \"3\"\\é"
        try log.record(workerID: id, run: 0xABC, generation: 2, rank: 1, worldSize: 2, step: 9, epoch: 1, samples: [4, 7])
        let line = try String(contentsOfFile: path, encoding: .utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["worker"] as? String == id && object["run"] as? String == "abc" && object["samples"] as? [Int] == [4, 7])
        #expect(object["generation"] as? Int == 2 && object["step"] as? Int == 9 && object["time"] is Double)
    }
}
