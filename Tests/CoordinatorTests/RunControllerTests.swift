import TensorFiles
import Foundation
import Testing
import Wire
@testable import Coordinator

/// The coordinator's decisions, event by event, without sockets: each test is a sequence of
/// joins, reports, deaths, restarts and stale or hostile frames, and what the controller must do.
@Suite struct RunControllerTests {
    typealias H = ControllerHarness

    @Test func aRunGoesFromRendezvousToItsFinalWeights() throws {
        var h = H(workers: 2, steps: 10, checkpointEvery: 5)
        h.hello("a")
        #expect(h.assignment(of: "a") == nil, "the first generation waits for the whole world")
        h.hello("b")
        let a = try #require(h.assignment(of: "a")), b = try #require(h.assignment(of: "b"))
        #expect(a.generation == 1 && a.stateOrigin == .seed && a.rank == 0 && b.rank == 1 && a.worldSize == 2)
        #expect(a.next.endpoint == "tcp://127.0.0.1:41000" && b.next.endpoint == a.previous.endpoint)
        let five: [Float] = [5, 5, 5], ten: [Float] = [10, 10]
        h.confirmStart()
        h.completeSteps(1...5, checksum: H.checksum(of: five))
        h.upload(from: "a", step: 5, floats: five)
        guard case let .checkpoint(checkpoint)? = h.writes.last else { Issue.record("no checkpoint write: \(h.writes)"); return }
        #expect(checkpoint.state.step == 5 && checkpoint.state.cursorStep == 5 && checkpoint.model.map(\.name) == ["w"])
        h.handle(.writer(.written(step: 5, path: "/run/step-00000005", seconds: 0.1, bytes: 12)))
        h.completeSteps(6...10, checksum: H.checksum(of: ten))
        h.finishAll(at: 10, checksum: H.checksum(of: ten))
        #expect(h.messages(to: "a").contains { $0.message == .checkpoint(CheckpointCommand(action: .upload, step: 10, epoch: 2)) })
        h.upload(from: "a", step: 10, floats: ten)
        guard case let .final(finalCheckpoint, weights, step, _, _)? = h.writes.last else { Issue.record("\(h.writes)"); return }
        #expect(step == 10 && weights.map(\.name) == ["w"] && finalCheckpoint?.state.step == 10)
        #expect(h.ended == nil, "the run ends once the final state is on disk")
        h.handle(.writer(.finalWritten(step: 10, path: "/run/final/model.safetensors")))
        guard case let .completed(path, finalStep, _)? = h.ended else { Issue.record("\(String(describing: h.ended))"); return }
        #expect(path == "/run/final/model.safetensors" && finalStep == 10)
        for id in ["a", "b"] {
            #expect(h.messages(to: id).contains { if case let .shutdown(s) = $0.message { s.exitCode == 0 } else { false } })
        }
        #expect(h.handle(.tick).isEmpty, "an ended run does nothing more")
    }

    @Test func aSilentWorkerIsReplacedByAGenerationOfTheSurvivorsFromTheirReplicas() throws {
        var h = H(workers: 3, minimum: 2)
        for id in ["a", "b", "c"] { h.hello(id) }
        h.confirmStart()
        h.completeSteps(1...3)
        h.advance(3, alive: ["a", "c"])
        let a = try #require(h.assignment(of: "a"))
        #expect(a.generation == 2 && a.worldSize == 2 && a.stateOrigin == .replicas && a.resumeStep == 3)
        #expect(h.events.contains { if case let .workerDown(workers, step, _) = $0 { workers == ["b"] && step == 3 } else { false } })
        // b was stopped, not dead: its next message is answered with "not a member", once a second.
        h.clear()
        for _ in 0..<5 { h.send(.heartbeat(Heartbeat(sequence: 1, lastAppliedStep: 3)), from: "b", generation: 1) }
        #expect(h.messages(to: "b").filter { $0.message.kind == .refuse }.count == 1)
        // A report of the old generation no longer counts.
        h.send(.stepReport(H.report(rank: 0, step: 4, checksum: 1)), from: "a", generation: 1)
        #expect(h.controller.dropped["stale generation"] == 1)
        h.confirmStart()
        h.completeSteps(4...4)
        #expect(h.events.contains { if case let .recovery(step, workers, _, _) = $0 { step == 4 && workers == 2 } else { false } })
        #expect(h.logLines.contains { $0.hasPrefix("recovered: step 4") })
    }

    /// The chaos run of the reliability issue: the worker holding the state dies just as a
    /// restarted one (with no state) joins; then the checkpoint transfer does not reach its rank.
    /// The run must go on from the checkpoint, never end.
    @Test func theHolderDyingAsAnEmptyWorkerJoinsFallsBackToTheCheckpointAndRetries() throws {
        var h = H(workers: 2, minimum: 1, steps: 100, checkpointEvery: 5)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        let five: [Float] = [5]
        h.completeSteps(1...5, checksum: H.checksum(of: five))
        h.upload(from: "a", step: 5, floats: five)
        h.handle(.writer(.written(step: 5, path: "/run/step-00000005", seconds: 0.1, bytes: 4)))
        h.completeSteps(6...7)
        h.advance(3, alive: ["a"])                          // b dies: a trains alone from its replica
        #expect(h.assignment(of: "a")?.stateOrigin == .replicas)
        h.confirmStart()
        h.hello("b", process: 99)                           // b restarted, no state: it joins a
        #expect(h.assignment(of: "b")?.stateOrigin == .replicas)
        h.advance(3, alive: ["b"])                          // a, the only holder, dies at once
        #expect(h.loadsAsked == 1, "the newest checkpoint is loaded off the loop")
        #expect(h.controller.phase != .training)
        h.hello("a", process: 98)                           // a restarted, no state, while loading
        h.handle(.checkpointLoaded(H.checkpoint(step: 5)))
        let b = try #require(h.assignment(of: "b")), a = try #require(h.assignment(of: "a"))
        #expect(b.generation == a.generation && b.stateOrigin == .checkpoint && b.resumeStep == 5)
        let restore = h.messages(to: b.rank == 0 ? "b" : "a")
        #expect(restore.contains { $0.message.kind == .tensorChunk && $0.generation == b.generation })
        #expect(restore.contains { $0.message == .checkpoint(CheckpointCommand(action: .restore, step: 5, epoch: 0, optimizerStep: 5)) })
        // The transfer did not arrive: a new generation, and the checkpoint is sent again.
        let source = b.rank == 0 ? "b" : "a"
        h.clear()
        h.send(.abort(Abort(reason: "the checkpoint of step 5 has not arrived", cause: .stateMissing)), from: source)
        let again = try #require(h.assignment(of: source))
        #expect(again.generation == b.generation + 1 && again.stateOrigin == .checkpoint)
        #expect(h.messages(to: source).contains { $0.message.kind == .tensorChunk })
        h.confirmStart()
        h.completeSteps(6...6)
        #expect(!h.failed && h.controller.phase == .training)
    }

    @Test func aRestartedCoordinatorContinuesFromTheWorkersReplicasWhenTheyAreNewerThanItsCheckpoint() throws {
        var h = H(workers: 2, steps: 100, resumeFrom: H.checkpoint(step: 30))
        h.hello("a", replicaStep: 34)
        h.hello("b", replicaStep: 34)
        let a = try #require(h.assignment(of: "a"))
        #expect(a.stateOrigin == .replicas && a.resumeStep == 34 && a.cursor == ShardCursor(epoch: 4, step: 2))
        #expect(!h.messages(to: "a").contains { $0.message.kind == .tensorChunk }, "nothing to restore")

        var older = H(workers: 2, steps: 100, resumeFrom: H.checkpoint(step: 30))
        older.hello("a", replicaStep: 20)
        older.hello("b")
        #expect(older.assignment(of: "a")?.stateOrigin == .checkpoint, "a replica older than the checkpoint does not win")
        #expect(older.messages(to: "a").contains { $0.message.kind == .tensorChunk })

        var other = H(workers: 2, steps: 100, resumeFrom: H.checkpoint(step: 30))
        other.hello("a", replicaStep: 34, lineage: 0x1234)
        other.hello("b", replicaStep: 34, lineage: 0x1234)
        #expect(other.assignment(of: "a")?.stateOrigin == .checkpoint, "a replica of another run's lineage is not used")
        #expect(other.logLines.contains { $0.contains("holds a replica of another run") })
    }

    /// SIGSTOP of the only worker for 10 s: it is declared down and training pauses; when it comes
    /// back it still holds step 34, and the run continues from there, not from the seed.
    @Test func theOnlyWorkerStoppedAndResumedKeepsItsWork() throws {
        var h = H(workers: 1, steps: 100, checkpointEvery: 0)
        h.hello("a")
        h.confirmStart()
        h.completeSteps(1...34)
        h.advance(10)
        #expect(h.controller.phase == .paused)
        h.send(.heartbeat(Heartbeat(sequence: 9, lastAppliedStep: 34)), from: "a", generation: 1)
        #expect(h.messages(to: "a").last?.message.kind == .refuse)
        h.hello("a", replicaStep: 34, rejoin: true)
        let a = try #require(h.assignment(of: "a"))
        #expect(a.generation == 2 && a.stateOrigin == .replicas && a.resumeStep == 34)
        #expect(!h.logLines.contains { $0.contains("the seed") && $0.contains("generation 2") })
    }

    /// SIGSTOP of the coordinator: its own silence is not the workers'.
    @Test func aStoppedCoordinatorDoesNotDeclareItsWorkersDown() {
        var h = H(workers: 2)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.completeSteps(1...3)
        h.now += 10
        h.handle(.tick)
        h.advance(1, alive: ["a", "b"])
        #expect(h.events.allSatisfy { if case .workerDown = $0 { false } else { true } })
        #expect(h.warnings.contains { $0.contains("did not run for 10.0 s") })
        #expect(h.assignment(of: "a")?.generation == 1)
    }

    @Test func aSecondProcessWithALiveWorkersIdIsRefusedUntilThatWorkerIsGone() throws {
        var h = H(workers: 2)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.clear()
        h.hello("a", process: 77)
        #expect(h.messages(to: "a").count == 1, "only the newcomer hears about it")
        guard case let .refuse(refusal)? = h.messages(to: "a").first?.message else { Issue.record("no refusal"); return }
        #expect(refusal.reason == .duplicateWorkerID && refusal.detail.contains("--worker-id"))
        #expect(h.controller.membership.generation == 1, "the live worker keeps training")
        // The first a dies (training pauses below two workers); the newcomer's next hello is admitted.
        h.advance(3, alive: ["b"])
        #expect(h.controller.phase == .paused)
        h.hello("a")
        #expect(h.assignment(of: "a")?.generation == 2)
        #expect(h.controller.membership.members["a"]?.instance == 77)
    }

    @Test func aWorkerThatLostItsGenerationIsTakenBackInANewOne() throws {
        var h = H(workers: 2)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.completeSteps(1...2)
        h.hello("b", replicaStep: 2, rejoin: true)
        let b = try #require(h.assignment(of: "b"))
        #expect(b.generation == 2 && b.stateOrigin == .replicas && b.resumeStep == 2)
        h.hello("b", replicaStep: 2, rejoin: false)
        #expect(h.assignment(of: "b")?.generation == 2, "a repeated hello of the same join changes nothing")
    }

    @Test func garbageAndRefusedHellosLeaveNothingBehindAndAreLoggedSparingly() {
        var h = H(workers: 2)
        h.hello("a"); h.hello("b")
        for i in 0..<1000 {
            h.handle(.undecodable(.badMagic(found: UInt32(i)), from: PeerID(bytes: [UInt8(i % 250), 1, 2])))
        }
        for i in 0..<2000 {
            h.hello("intruder-\(i)", fingerprint: "other data")
        }
        #expect(h.controller.dropped["undecodable"] == 1000)
        #expect(h.warnings.filter { $0.contains("bad frame") }.count == 1)
        #expect(h.warnings.filter { $0.contains("refused worker intruder") }.count == 1)
        #expect(h.controller.peers.count == 2 && h.controller.membership.members.count == 2,
                "a refused hello is not remembered")
        h.advance(11, alive: ["a", "b"])
        h.handle(.undecodable(.badMagic(found: 1), from: PeerID(bytes: [9])))
        #expect(h.warnings.contains { $0.contains("bad frame") && $0.contains("999 more") })
        // A frame of another run, or from a connection that never said hello, is dropped.
        h.send(.stepReport(H.report(rank: 0, step: 1, checksum: 1)), from: "a", runID: 42)
        #expect(h.controller.dropped["foreign run"] == 1)
        let unknown = h.handle(.received(Envelope(generation: 1, runID: H.runID, message: .heartbeat(Heartbeat(sequence: 1, lastAppliedStep: 0))),
                                         from: PeerID(bytes: [200, 200])))
        #expect(h.controller.dropped["unknown peer"] == 1)
        #expect(unknown.contains { if case let .send(envelope, _) = $0 { envelope.message.kind == .refuse } else { false } },
                "told to say hello (a worker whose connection was re-made), nothing else")
    }

    @Test func generationsThatKeepBreakingAreSpacedOutNeverGivenUp() throws {
        var h = H(workers: 2)
        h.hello("a"); h.hello("b")
        for round in 1...9 {
            let before = h.controller.generation
            h.send(.abort(Abort(failedRank: 1, reason: "ring failed in step 1", cause: .ringFailed)), from: "a")
            #expect(h.controller.generation == before + 1)
            if round > H.brokenBeforeBackOff {
                #expect(h.assignment(of: "a")?.generation == before, "round \(round): the next generation waits")
                h.advance(Double(1 << min(round - H.brokenBeforeBackOff, 6)) + 0.1, alive: ["a", "b"])
            }
            #expect(h.assignment(of: "a")?.generation == before + 1, "round \(round)")
        }
        #expect(!h.failed)
        #expect(h.warnings.contains { $0.contains("9 generations broke in a row") && $0.contains("starts in") })
        h.confirmStart()
        h.completeSteps(1...1)
        #expect(h.controller.brokenInARow == 0, "a completed step ends the streak")
    }

    @Test func aStopRequestReachesEveryRankAndThePausedRunSavesWhatItHolds() throws {
        var h = H(workers: 2, steps: 100)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.handle(.stopSignal(count: 1))
        for id in ["a", "b"] { #expect(h.messages(to: id).contains { $0.message.kind == .stopRequest }) }
        #expect(h.handle(.stopSignal(count: 1)).isEmpty, "a repeated first signal changes nothing")

        var paused = H(workers: 2, steps: 100)
        paused.hello("a"); paused.hello("b")
        paused.confirmStart()
        paused.completeSteps(1...4)
        paused.advance(3, alive: ["a"])
        #expect(paused.controller.phase == .paused)
        paused.handle(.stopSignal(count: 1))
        let a = try #require(paused.assignment(of: "a"))
        #expect(a.generation == 2 && a.worldSize == 1 && a.resumeStep == 4, "the live worker trains one more step to save its state")
        #expect(paused.messages(to: "a").last?.message.kind == .stopRequest)

        var empty = H(workers: 1, steps: 100)
        empty.hello("a")
        empty.advance(3)
        empty.handle(.stopSignal(count: 1))
        guard case let .failed(failure)? = empty.ended else { Issue.record("\(String(describing: empty.ended))"); return }
        #expect("\(failure)".contains("paused"))
    }

    /// A run stopped by a signal saves its state and tells its workers to exit 75 ("try again
    /// later"), not 0: a scheduler restarts them for the resumed run rather than count them done.
    @Test func aRunStoppedEarlyTellsItsWorkersToExitWithTheStatusThatAsksForARestart() throws {
        var h = H(workers: 2, steps: 100)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.completeSteps(1...3)
        h.handle(.stopSignal(count: 1))
        let state: [Float] = [4, 4]
        h.completeSteps(4...4, checksum: H.checksum(of: state))
        h.finishAll(at: 4, checksum: H.checksum(of: state))
        let uploader = try #require(h.controller.current?.ranks.first { $0.value == 0 }?.key)
        h.upload(from: uploader, step: 4, floats: state)
        h.handle(.writer(.finalWritten(step: 4, path: "/run/final/model.safetensors")))
        guard case .completed(_, 4, _)? = h.ended else { Issue.record("\(String(describing: h.ended)) \(h.logLines)"); return }
        for id in ["a", "b"] {
            let codes = h.messages(to: id).compactMap { if case let .shutdown(s) = $0.message { s.exitCode } else { nil } }
            #expect(codes == [75], "\(id): \(codes)")
        }
    }

    @Test func aFinalStateThatCannotBeWrittenIsRetriedUntilItIs() throws {
        var h = H(workers: 1, steps: 3, checkpointEvery: 0)
        h.hello("a")
        h.confirmStart()
        let floats: [Float] = [3, 3]
        h.completeSteps(1...3, checksum: H.checksum(of: floats))
        h.finishAll(at: 3, checksum: H.checksum(of: floats))
        h.upload(from: "a", step: 3, floats: floats)
        #expect(h.writes.count == 1)
        h.handle(.writer(.finalFailed(step: 3, reason: "No space left on device")))
        #expect(h.ended == nil && h.warnings.contains { $0.contains("No space left on device") && $0.contains("written again in 30 s") })
        h.advance(29, alive: ["a"])
        #expect(h.writes.count == 1)
        h.advance(2, alive: ["a"])
        #expect(h.writes.count == 2, "written again")
        h.handle(.stopSignal(count: 1))
        #expect(h.ended == nil, "one interrupt waits for the write")
        h.handle(.writer(.finalWritten(step: 3, path: "/run/final/model.safetensors")))
        if case .completed? = h.ended {} else { Issue.record("\(String(describing: h.ended))") }
    }

    @Test func aRunLevelFailureEndsTheRunAndEveryWorkerIsTold() {
        var h = H(workers: 2)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.send(.abort(Abort(reason: "3 steps in a row had a non-finite loss", cause: .runCannotContinue)), from: "b")
        guard case let .failed(failure)? = h.ended else { Issue.record("not ended"); return }
        #expect("\(failure)".contains("non-finite"))
        for id in ["a", "b"] {
            #expect(h.messages(to: id).contains { if case let .shutdown(s) = $0.message { s.exitCode == 1 } else { false } })
        }
    }

    @Test func replicasThatDivergeEndTheRunNamingTheRanks() {
        var h = H(workers: 2)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.send(.stepReport(H.report(rank: 0, step: 1, checksum: 1)), from: "a")
        h.send(.stepReport(H.report(rank: 1, step: 1, checksum: 1)), from: "b")
        for step in 2...5 {
            h.send(.stepReport(H.report(rank: 0, step: step, checksum: 1)), from: "a")
            h.send(.stepReport(H.report(rank: 1, step: step, checksum: step == 5 ? 2 : 1)), from: "b")
        }
        guard case let .failed(failure)? = h.ended else { Issue.record("not ended"); return }
        #expect("\(failure)".contains("after step 5") && "\(failure)".contains("ranks 1 differ"))
    }

    @Test func aWorkerThatFailsLeavesAndTheOthersGoOn() throws {
        var h = H(workers: 3, minimum: 2)
        for id in ["a", "b", "c"] { h.hello(id) }
        h.confirmStart()
        h.send(.abort(Abort(reason: "cannot write /logs/order.jsonl", cause: .workerFailed)), from: "c")
        #expect(h.assignment(of: "a")?.worldSize == 2 && !h.failed)
    }

    @Test func localWorkersAreReplacedUnlessTheyKeepDying() {
        var h = H(workers: 2, minimum: 1)
        h.hello("local-0"); h.hello("local-1")
        h.confirmStart()
        var respawns = 0
        for _ in 0..<6 {
            let out = h.handle(.localWorkerExited(workerID: "local-1", status: 9))
            respawns += out.filter { if case .respawnLocalWorker("local-1") = $0 { true } else { false } }.count
        }
        #expect(respawns == 4, "at most 2N replacements in ten minutes")
        #expect(!h.failed && h.warnings.contains { $0.contains("is not replaced") })
        h.handle(.localWorkerExited(workerID: "local-0", status: 9))
        #expect(h.failed, "with no worker left and no replacement allowed, the run cannot go on")
    }

    @Test func theRendezvousTimesOutNamingTheMissingRanksAndAnEarlyInterruptEndsIt() {
        var h = H(workers: 3) { $0.rendezvousTimeout = 5 }
        h.hello("a")
        h.advance(6, alive: ["a"])
        guard case let .failed(failure)? = h.ended else { Issue.record("not ended"); return }
        #expect("\(failure)".contains("missing ranks 1, 2"))
        var early = H(workers: 2)
        early.handle(.stopSignal(count: 1))
        #expect(early.failed)
    }

    @Test func aStalledRankIsNamedAndWaitedFor() {
        var h = H(workers: 2) { $0.stallSeconds = 30 }
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.send(.stepReport(H.report(rank: 0, step: 1, checksum: 1)), from: "a")
        h.advance(31, alive: ["a", "b"])
        #expect(h.warnings.contains { $0.hasPrefix("stalled: rank 1 (b) not done with step 1") })
        #expect(h.assignment(of: "a")?.generation == 1, "slow is not dead")
    }

    /// A generation whose start never completes (a rank that forms no ring, agrees on nothing)
    /// is named, not silently waited on.
    @Test func aRankThatNeverStartsItsGenerationIsNamed() {
        var h = H(workers: 2) { $0.stallSeconds = 30 }
        h.hello("a"); h.hello("b")
        h.send(.workerStatus(WorkerStatus(workerID: "a", lastAppliedStep: 0, cursor: ShardCursor(epoch: 0, step: 0),
                                          parameterChecksum: 1)), from: "a")
        h.advance(29, alive: ["a", "b"])
        #expect(!h.warnings.contains { $0.hasPrefix("stalled") })
        h.advance(2, alive: ["a", "b"])
        #expect(h.warnings.contains { $0.hasPrefix("stalled: generation 1: rank 1 (b) not started 3") }, "\(h.warnings)")
    }

    @Test func anUploadCutOffByADeathIsDroppedAndTheNextOneIsWritten() throws {
        var h = H(workers: 3, minimum: 2, steps: 100, checkpointEvery: 5)
        for id in ["a", "b", "c"] { h.hello(id) }
        h.confirmStart()
        let five: [Float] = [5, 5, 5, 5]
        h.completeSteps(1...5, checksum: H.checksum(of: five))
        let tensor = NamedTensor(name: "w", shape: [4], floats: five)
        let chunks = TensorChunk.chunks(transfer: .parameters, step: 5, tensorIndex: 0, tensorCount: 1, name: "w", dtype: .float32,
                                        shape: [4], bytes: tensor.data, maxChunkBytes: 8)
        h.send(.tensorChunk(chunks[0]), from: "a")
        h.advance(3, alive: ["b", "c"])                       // a dies mid-upload
        #expect(h.controller.upload == nil && h.writes.isEmpty)
        let b = try #require(h.assignment(of: "b"))
        #expect(b.rank == 0 && b.resumeStep == 5)
        h.confirmStart(checksum: H.checksum(of: five))
        let ten: [Float] = [1, 0]
        h.completeSteps(6...10, checksum: H.checksum(of: ten))
        h.upload(from: "b", step: 10, floats: ten)
        guard case let .checkpoint(checkpoint)? = h.writes.last else { Issue.record("\(h.writes)"); return }
        #expect(checkpoint.state.step == 10 && checkpoint.state.worldSize == 2)
    }

    @Test func rankZeroDyingDuringTheFinalUploadIsReplacedByASurvivorsUpload() throws {
        var h = H(workers: 2, minimum: 1, steps: 4, checkpointEvery: 0)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        let floats: [Float] = [4]
        h.completeSteps(1...4, checksum: H.checksum(of: floats))
        h.finishAll(at: 4, checksum: H.checksum(of: floats))
        #expect(h.messages(to: "a").contains { $0.message.kind == .checkpoint })
        h.advance(3, alive: ["b"])
        let b = try #require(h.assignment(of: "b"))
        #expect(b.generation == 2 && b.resumeStep == 4 && b.stateOrigin == .replicas)
        h.confirmStart(checksum: H.checksum(of: floats))
        h.finishAll(at: 4, checksum: H.checksum(of: floats))
        h.upload(from: "b", step: 4, floats: floats)
        guard case .final? = h.writes.last else { Issue.record("\(h.writes)"); return }
    }

    @Test func aJoinerDuringAStepStartsANewGenerationAndTheOldReportsNoLongerCount() throws {
        var h = H(workers: 3, minimum: 2)
        h.hello("a"); h.hello("b")
        h.advance(0.1, alive: ["a", "b"])
        #expect(h.assignment(of: "a") == nil, "the first generation waits for all three")
        h.hello("c")
        h.confirmStart()
        h.completeSteps(1...3)
        h.advance(3, alive: ["a", "b"])
        #expect(h.assignment(of: "a")?.generation == 2)
        h.confirmStart()
        // a applied step 4 (its all-gather completed); b's report is still on its way when d joins.
        h.send(.stepReport(H.report(rank: 0, step: 4, checksum: 1)), from: "a")
        h.hello("d")
        let d = try #require(h.assignment(of: "d"))
        #expect(d.generation == 3 && d.stateOrigin == .replicas && d.resumeStep == 4, "a holds the most advanced replica")
        h.send(.stepReport(H.report(rank: 1, step: 4, checksum: 1)), from: "b", generation: 2)
        #expect(h.controller.dropped["stale generation"] == 1, "a report of the replaced generation is dropped")
        h.confirmStart()
        h.completeSteps(5...5)
        #expect(h.controller.progress.lastCompletedStep == 5 && h.controller.progress.worldSize == 3)
    }

    @Test func aWorkerWithoutSharedMemoryGetsTCPRingsFromThenOn() throws {
        var h = H(workers: 2) { $0.ringTransport = "auto" }
        h.hello("a", sharedMemory: true); h.hello("b", sharedMemory: true)
        #expect(h.assignment(of: "a")?.ringTransport == .sharedMemory)
        h.send(.abort(Abort(reason: "cannot set up the shared memory ring", cause: .ringTransportUnavailable)), from: "b")
        let a = try #require(h.assignment(of: "a"))
        #expect(a.generation == 2 && a.ringTransport == .tcp)
        #expect(h.logLines.contains { $0.contains("worker b cannot use shared memory") })
    }
}

extension ControllerHarness {
    static let brokenBeforeBackOff = RunController.brokenGenerationsBeforeBackOff
}

/// A worker lost in each phase of the coordinator: what follows, as a table.
@Suite struct WorkerLostInEachPhaseTests {
    typealias H = ControllerHarness

    /// Brings a 3-worker run (2 needed) to `phase`; returns the harness.
    static func run(to phase: String) -> H {
        var h = H(workers: 3, minimum: 2, steps: 10, checkpointEvery: 0)
        for id in ["a", "b", "c"] { h.hello(id) }
        h.confirmStart()
        h.completeSteps(1...4)
        if phase == "starting" {
            // A checkpoint on disk (not in memory), then every worker dies and comes back with no
            // replica: the next generation waits for the checkpoint, loaded off the loop.
            h.completeSteps(5...5, checksum: H.checksum(of: [5]))
            h.handle(.writer(.written(step: 5, path: "/run/step-00000005", seconds: 0.1, bytes: 4)))
            h.advance(3)
            for (id, process) in [("a", UInt64(91)), ("b", 92), ("c", 93)] { h.hello(id, process: process) }
            #expect(h.loadsAsked == 1)
        }
        if phase == "finishing" || phase == "finalizing" {
            h.completeSteps(5...10, checksum: H.checksum(of: [1]))
            h.finishAll(at: 10, checksum: H.checksum(of: [1]))
        }
        if phase == "finalizing" {
            let source = h.controller.current!.ranks.first { $0.value == 0 }!.key
            h.upload(from: source, step: 10, floats: [1])
        }
        return h
    }

    @Test(arguments: ["training", "starting", "finishing", "finalizing"])
    func aWorkerLostIn(phase: String) throws {
        var h = Self.run(to: phase)
        let before = h.controller.generation
        let victim = phase == "finishing" ? h.controller.current!.ranks.first { $0.value == 0 }!.key : "c"
        let survivors = ["a", "b", "c"].filter { $0 != victim }
        h.advance(3, alive: survivors)
        #expect(!h.failed, "\(phase): the run goes on")
        switch phase {
        case "training":
            let a = try #require(h.assignment(of: "a"))
            #expect(a.generation == before + 1 && a.worldSize == 2 && a.stateOrigin == .replicas && a.resumeStep == 4)
        case "starting":
            // The generation waiting for its checkpoint is replaced by one without the victim.
            #expect(h.loadsAsked <= 1 && h.controller.generation == before + 1)
            h.handle(.checkpointLoaded(H.checkpoint(step: 5)))
            let a = try #require(h.assignment(of: "a"))
            #expect(a.worldSize == 2 && a.stateOrigin == .checkpoint && a.resumeStep == 5)
        case "finishing":
            let first = try #require(h.assignment(of: survivors[0]))
            #expect(first.generation == before + 1 && first.resumeStep == 10, "the survivors hold the final state")
            h.confirmStart(checksum: H.checksum(of: [1]))
            h.finishAll(at: 10, checksum: H.checksum(of: [1]))
            let source = h.controller.current!.ranks.first { $0.value == 0 }!.key
            #expect(h.messages(to: source).last?.message.kind == .checkpoint, "the new rank 0 is asked for the state")
        default:
            #expect(h.assignment(of: "a")?.generation == before, "finalizing: no new generation; the state is in memory")
            if case .finalizing = h.controller.phase {} else { Issue.record("\(h.controller.phase)") }
            guard case .final? = h.writes.last else { Issue.record("\(h.writes)"); return }
            h.handle(.writer(.finalWritten(step: 10, path: "/run/final/model.safetensors")))
            if case .completed? = h.ended {} else { Issue.record("the run ends once the final state is written: \(String(describing: h.ended))") }
        }
    }

    @Test func aWorkerLostBeforeTrainingIsNamedAndTheRendezvousWaits() {
        var h = H(workers: 3, minimum: 2)
        h.hello("a"); h.hello("b")
        h.advance(3, alive: ["a"])
        #expect(h.logLines.contains { $0.contains("worker b left before training started") })
        #expect(h.controller.phase == .rendezvous(deadline: 300) && h.assignment(of: "a") == nil)
        h.hello("c"); h.hello("d")
        #expect(h.assignment(of: "a")?.worldSize == 3)
    }
}


/// What a review found, each now a test: hostile numbers, a restarted coordinator's rendezvous,
/// stops that meet pauses, the start step the ranks agree on, checksums of a rolled-back run,
/// stale aborts, forgotten workers, reconnected connections.
@Suite struct RunControllerReviewTests {
    typealias H = ControllerHarness

    @Test func stepsAndEpochsNoRunCanHaveAreDroppedNotTrapped() {
        var h = H(workers: 2, steps: 10)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.send(.stepReport(H.report(rank: 0, step: 1, checksum: 1).with(step: .max)), from: "a")
        h.send(.stepReport(H.report(rank: 0, step: 1, checksum: 1).with(step: 11)), from: "a")
        h.send(.workerStatus(WorkerStatus(workerID: "a", lastAppliedStep: 3, cursor: ShardCursor(epoch: .max, step: 0),
                                          parameterChecksum: 1)), from: "a")
        let chunk = TensorChunk.chunks(transfer: .parameters, step: .max, float32: [("w", [1], [0, 0, 0, 0])])[0]
        h.send(.tensorChunk(chunk), from: "a")
        #expect(h.controller.dropped["implausible step"] == 4 && !h.failed)
        h.hello("c", replicaStep: Int(Int32.max))
        #expect(h.controller.membership.members["c"] == nil || h.controller.membership.members["c"]?.appliedStep == -1)
    }

    @Test func aRestartedCoordinatorFormsItsFirstGenerationAtTheMinimumAndNeverGivesUpTheReplicas() throws {
        var h = H(workers: 3, minimum: 2, steps: 100, resumeFrom: H.checkpoint(step: 30)) { $0.rendezvousTimeout = 5 }
        h.hello("a", replicaStep: 40)
        h.advance(6, alive: ["a"])
        #expect(!h.failed && h.warnings.contains { $0.contains("still waiting for workers") && $0.contains("state is kept") })
        h.hello("b", replicaStep: 40)
        let a = try #require(h.assignment(of: "a"))
        #expect(a.worldSize == 2 && a.stateOrigin == .replicas && a.resumeStep == 40)

        var early = H(workers: 3, minimum: 3, steps: 100) { $0.rendezvousTimeout = 5 }
        early.hello("a", replicaStep: 40)
        early.handle(.stopSignal(count: 1))
        let only = try #require(early.assignment(of: "a"), "interrupted before the run resumed: the worker here saves its state")
        #expect(only.worldSize == 1 && only.resumeStep == 40 && !early.failed)
        #expect(early.messages(to: "a").contains { $0.message.kind == .stopRequest })
    }

    @Test func aStopRequestIsCarriedOutEvenWhenTheRunFallsBelowTheMinimum() throws {
        var h = H(workers: 3, minimum: 3, steps: 100)
        for id in ["a", "b", "c"] { h.hello(id) }
        h.confirmStart()
        h.completeSteps(1...3)
        h.handle(.stopSignal(count: 1))
        h.advance(3, alive: ["a", "b"])
        let a = try #require(h.assignment(of: "a"))
        #expect(a.generation == 2 && a.worldSize == 2, "the live workers form a generation to stop and save")
        #expect(h.controller.phase == .training && !h.failed)
        let sinceAssignment = h.messages(to: "a").drop { $0.message != .assignment(a) }
        #expect(sinceAssignment.contains { $0.message.kind == .stopRequest }, "the stop goes with the new generation")
    }

    @Test func theStartStepIsTheOneTheRanksAgreeOn() {
        var h = H(workers: 2, steps: 20)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.completeSteps(1...4)
        // A rejoin forms generation 2 while step 5 runs; the ranks finish it and agree on 5.
        h.hello("b", replicaStep: 4, rejoin: true)
        for id in ["a", "b"] {
            h.send(.workerStatus(WorkerStatus(workerID: id, lastAppliedStep: 5, cursor: ShardCursor(epoch: 0, step: 5),
                                              parameterChecksum: 9)), from: id)
        }
        #expect(h.controller.current?.confirmed == true && h.controller.current?.startStep == 5)
        h.completeSteps(6...6)
        #expect(h.controller.progress.lastCompletedStep == 6)
    }

    @Test func checksumsAgreedBeforeARollbackDoNotRejectTheNewUpload() {
        var h = H(workers: 2, minimum: 1, steps: 100, checkpointEvery: 5)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        let five: [Float] = [5]
        h.completeSteps(1...5, checksum: H.checksum(of: five))
        h.upload(from: "a", step: 5, floats: five)
        h.handle(.writer(.written(step: 5, path: "/run/step-00000005", seconds: 0.1, bytes: 4)))
        h.completeSteps(6...10, checksum: 0x1111)
        h.advance(3)                                             // everyone dies
        h.hello("a", process: 71); h.hello("b", process: 72)      // back with nothing
        h.handle(.checkpointLoaded(H.checkpoint(step: 5)))
        h.confirmStart()
        let ten: [Float] = [10, 10]
        h.completeSteps(6...9, checksum: H.checksum(of: ten))
        h.upload(from: h.controller.current!.ranks.first { $0.value == 0 }!.key, step: 10, floats: ten)
        h.completeSteps(10...10, checksum: H.checksum(of: ten))
        #expect(!h.warnings.contains { $0.contains("no checkpoint of step 10") }, "\(h.warnings)")
        #expect(h.writes.contains { if case let .checkpoint(c) = $0 { c.state.step == 10 } else { false } })
    }

    @Test func aStaleRingFailureWhilePausedFormsNothing() {
        var h = H(workers: 2, steps: 100)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.advance(3, alive: ["a"])
        #expect(h.controller.phase == .paused)
        h.clear()
        h.send(.abort(Abort(failedRank: 1, reason: "rank 1 silent", cause: .ringFailed)), from: "a")
        #expect(h.controller.brokenInARow == 0 && !h.logLines.contains { $0.contains("forming a new one") })
        #expect(h.controller.dropped["stale abort"] == 1)
    }

    @Test func workersGoneLongAgoAreForgottenAndAReconnectedConnectionIsToldToSayHello() {
        var h = H(workers: 2, minimum: 1, steps: 100)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.advance(3, alive: ["a"])
        #expect(h.controller.membership.members["b"]?.status == .down)
        h.advance(Membership.forgetAfter + 1, alive: ["a"])
        #expect(h.controller.membership.members["b"] == nil && h.controller.peers.count == 1)
        // A frame of this run from a connection the coordinator does not know.
        let out = h.handle(.received(Envelope(generation: 1, runID: H.runID, message: .heartbeat(Heartbeat(sequence: 1, lastAppliedStep: 0))),
                                     from: PeerID(bytes: [9, 9])))
        #expect(out.contains { if case let .send(envelope, to) = $0 { to == PeerID(bytes: [9, 9]) && envelope.message.kind == .refuse } else { false } })
    }

    /// A rank whose ring address its previous rank cannot connect to is told why and left out;
    /// the others go on without it (at or above --min-workers), and that process is not
    /// admitted again, while a restarted one is.
    @Test func aWorkerWhoseRingAddressCannotBeReachedIsLeftOutAndTheRunGoesOn() throws {
        var h = H(workers: 3, minimum: 2, steps: 100)
        h.hello("a"); h.hello("b"); h.hello("c")
        let ranks = try #require(h.controller.current?.ranks)
        let (reporter, unreachable) = (try #require(ranks.first { $0.value == 0 }?.key), try #require(ranks.first { $0.value == 1 }?.key))
        let before = h.controller.generation
        h.clear()
        h.send(.abort(Abort(failedRank: 1, reason: "no connection to rank 1 at tcp://10.0.0.2:4000 within 30.0 s", cause: .ringUnreachable)),
               from: reporter)
        let refusal = try #require(h.messages(to: unreachable).compactMap { if case let .refuse(r) = $0.message { r } else { nil } }.first)
        #expect(refusal.reason == .unreachableRingAddress && refusal.detail.contains(reporter) && refusal.detail.contains("--host"), "\(refusal)")
        #expect(h.controller.generation == before + 1)
        #expect(Set(h.controller.current.map { Array($0.ranks.keys) } ?? []) == Set(ranks.keys).subtracting([unreachable]))
        #expect(h.logLines.contains { $0.contains("worker \(unreachable) (rank 1) is left out of the run: worker \(reporter) (ring at tcp://") && $0.contains("--ring-interface") }, "\(h.logLines)")
        #expect(h.events.contains(.workerExcluded(worker: unreachable, reason: "no connection to rank 1 at tcp://10.0.0.2:4000 within 30.0 s")))
        #expect(!h.failed)
        // The same process saying hello again is refused; a restarted one (another instance) joins.
        h.clear()
        h.hello(unreachable, rejoin: true)
        #expect(h.messages(to: unreachable).contains { if case let .refuse(r) = $0.message { r.reason == .unreachableRingAddress } else { false } })
        #expect(h.controller.membership.members[unreachable]?.status == .down)
        h.hello(unreachable, process: 777)
        #expect(h.controller.membership.members[unreachable]?.status != .down)
    }

    /// Below --min-workers the run pauses, saying so, rather than ending.
    @Test func leavingOutAnUnreachableWorkerBelowTheMinimumPauses() throws {
        var h = H(workers: 2, steps: 100)
        h.hello("a"); h.hello("b")
        h.confirmStart()
        h.send(.abort(Abort(failedRank: 1, reason: "no connection to rank 1", cause: .ringUnreachable)), from: "a")
        #expect(h.controller.phase == .paused && !h.failed)
        #expect(h.warnings.contains { $0.contains("paused: only 1 of the minimum 2 workers") })
        // An unreachable report naming no rank of the generation only re-forms it.
        var g = H(workers: 2, steps: 100)
        g.hello("a"); g.hello("b")
        let before = g.controller.generation
        g.send(.abort(Abort(failedRank: 7, reason: "no connection to rank 7", cause: .ringUnreachable)), from: "a")
        #expect(g.controller.generation == before + 1 && g.controller.membership.liveMembers.count == 2)
    }

    @Test func aWorkerWhoseSharedMemoryFailedKeepsTCPRingsAfterItRejoins() throws {
        var h = H(workers: 2) { $0.ringTransport = "auto" }
        h.hello("a", sharedMemory: true); h.hello("b", sharedMemory: true)
        h.send(.abort(Abort(reason: "cannot set up the shared memory ring", cause: .ringTransportUnavailable)), from: "b")
        h.hello("b", rejoin: true, sharedMemory: true)
        #expect(h.assignment(of: "a")?.ringTransport == .tcp)
    }
}

extension StepReport {
    func with(step: UInt64) -> StepReport {
        var copy = self
        copy.step = step
        return copy
    }
}
