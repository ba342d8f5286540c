
import Logging
import Wire

/// Frames from workers: hellos, reports, uploads, aborts; and what membership decides about them.
extension RunController {
    mutating func receive(_ envelope: Envelope, from peer: PeerID, address: String?, now: Double) {
        if case let .hello(hello) = envelope.message {
            receive(hello, from: peer, address: address, now: now)
            return
        }
        guard envelope.runID == plan.runID else {
            // A worker still speaking to this coordinator's predecessor (or another job).
            countDrop("foreign run")
            return
        }
        guard let workerID = peers.worker(of: peer), let member = membership.members[workerID] else {
            countDrop("unknown peer")
            warnLimited("unknown peer", now: now, "dropped a \(envelope.message.kind) from a peer that never said hello")
            // A frame of this run from a connection it does not know: a worker whose connection
            // was re-made (ZeroMQ gave it a new routing id). Telling it it is not a member makes
            // it say hello again at once (a few such replies a second at most).
            if limiter.allow("unknown peer reply", now: now, interval: 0.2).allowed {
                emit(.send(Envelope(generation: 0, runID: plan.runID, message: .refuse(Refuse(
                    reason: .notMember, detail: "this connection is not a member of the run; say hello again"))), to: peer))
            }
            return
        }
        guard member.status <= .up else {
            // Declared down but alive: it must say hello again to rejoin (at most once a second).
            if now - (notMemberRepliedAt[workerID] ?? -10) > 1 {
                notMemberRepliedAt[workerID] = now
                send(.refuse(Refuse(reason: .notMember, detail: "declared down after \(plan.settings.livenessDeadline) s of silence; say hello again")),
                     to: workerID)
            }
            return
        }
        membership.heard(from: workerID, now: now)
        guard envelope.generation == membership.generation || envelope.message.kind == .heartbeat else {
            countDrop("stale generation")
            return
        }
        switch envelope.message {
        case .heartbeat:
            break
        case let .stepReport(report):
            // A step this run cannot have (beyond its last, or a garbage number) is dropped, never
            // taken as progress: one such report would stall the accounting.
            guard let rank = member.rank, let step = plausibleStep(report.step), step > 0 else {
                countDrop("implausible step")
                return
            }
            membership.applied(step: step, by: workerID, generation: envelope.generation, now: now)
            if firstReportAt[step] == nil { firstReportAt[step] = now }
            react(to: progress.report(rank: rank, report), now: now)
        case let .workerStatus(status):
            guard let rank = member.rank, let step = plausibleStep(status.lastAppliedStep),
                  let epoch = Int(exactly: status.cursor.epoch) else {
                countDrop("implausible step")
                return
            }
            react(to: progress.status(rank: rank, lastAppliedStep: step, epoch: epoch, checksum: status.parameterChecksum), now: now)
        case let .tensorChunk(chunk):
            guard plausibleStep(chunk.step) != nil else {
                countDrop("implausible step")
                return
            }
            receiveChunk(chunk, from: workerID)
        case let .checkpoint(command) where command.action == .uploadComplete:
            finishUpload(command, from: workerID, now: now)
        case let .abort(abort):
            workerAborted(abort, workerID: workerID, now: now)
        case let .validationReport(report):
            guard let rank = member.rank, plausibleStep(report.step) != nil else {
                countDrop("implausible step")
                return
            }
            receiveValidation(report, rank: rank, from: workerID)
        case let .timelineReport(report):
            guard plan.settings.timelinePath != nil, let rank = member.rank, report.rank == UInt32(rank) else {
                countDrop("unexpected timeline")
                return
            }
            emit(.timeline(report, workerID: workerID, rank: rank))
        default:
            log(.debug, "ignored \(envelope.message.kind) from \(workerID)")
        }
    }

    /// `step` as an Int when this run can have it (0 through the last step), else nil.
    func plausibleStep(_ step: UInt64) -> Int? {
        guard let value = Int(exactly: step), value <= plan.totalSteps else { return nil }
        return value
    }

    /// A frame that did not decode. A worker of another protocol version is told so in this
    /// version's frame (it can read a refusal's version); anything else is dropped and counted.
    mutating func undecodable(_ error: DecodeError, from peer: PeerID, now: Double) {
        if case let .unsupportedVersion(found, supported) = error {
            let detail = Self.versionRefusal(worker: found, coordinator: supported)
            warnLimited("version", now: now, "refused a worker: \(detail)")
            emit(.send(Envelope(generation: 0, runID: plan.runID,
                                message: .refuse(Refuse(reason: .protocolVersionMismatch, detail: detail))), to: peer))
            return
        }
        countDrop("undecodable")
        let from = peers.worker(of: peer).map { "worker \($0)" } ?? "an unknown peer"
        warnLimited("bad frame", now: now, "dropped a bad frame from \(from): \(error)")
    }

    /// A warning of `kind` at most once per interval, with the count of those left out.
    mutating func warnLimited(_ kind: String, now: Double, _ text: String) {
        let (allowed, leftOut) = limiter.allow(kind, now: now)
        guard allowed else { return }
        log(.warning, leftOut > 0 ? "\(text) (and \(leftOut) more like it since the last such line)" : text)
    }

    static func versionRefusal(worker: UInt16, coordinator: UInt16) -> String {
        "protocol version mismatch: the worker speaks protocol version \(worker), this coordinator speaks version \(coordinator)"
    }

    private mutating func receive(_ hello: Hello, from peer: PeerID, address: String?, now: Double) {
        var replicaStep = -1
        if let claim = hello.replica {
            if claim.lineage == plan.lineage.id, let step = plausibleStep(claim.step) {
                replicaStep = step
                // The run is being resumed from replicas: the first generation need not wait for all.
                membership.startAtMinimum()
            } else {
                log(.info, "worker \(hello.workerID) holds a replica of another run (lineage \(String(claim.lineage, radix: 16))); this run's is \(String(plan.lineage.id, radix: 16)) (\(plan.lineage)): not used")
            }
        }
        let directives = membership.receive(hello: Membership.Hello(
            workerID: hello.workerID, protocolVersion: hello.protocolVersion, host: hello.host,
            dataPlaneEndpoint: hello.dataPlaneEndpoint, datasetFingerprint: hello.datasetFingerprint,
            instance: hello.instance, joins: hello.joins, replicaStep: replicaStep, connectedFrom: address), now: now)
        // Only an admitted worker is remembered; a refused one leaves nothing behind.
        if directives.contains(.welcome(workerID: hello.workerID)) {
            peers.bind(hello.workerID, to: peer, hello: hello)
            notMemberRepliedAt[hello.workerID] = nil
        }
        for case let .refuse(workerID, refusal) in directives {
            let (reason, detail) = Self.describe(refusal)
            warnLimited("refused \(reason)", now: now, "refused worker \(workerID.prefix(64)): \(detail)")
            emit(.send(Envelope(generation: 0, runID: plan.runID, message: .refuse(Refuse(reason: reason, detail: detail))), to: peer))
        }
        carryOut(directives.filter { if case .refuse = $0 { false } else { true } }, now: now)
    }

    /// Carries out what membership decided.
    mutating func carryOut(_ directives: [Membership.Directive], now: Double) {
        for directive in directives {
            switch directive {
            case let .welcome(workerID):
                log(.info, "admitted worker \(workerID) (\(membership.liveMembers.count)/\(plan.settings.workers))")
                send(.welcome(Welcome(workerID: workerID, heartbeatIntervalMilliseconds: UInt32(Self.heartbeatInterval * 1000),
                                      livenessDeadlineMilliseconds: UInt32(plan.settings.livenessDeadline * 1000),
                                      admittedCurveKeys: plan.admittedWorkerKeys)), to: workerID)
            case let .refuse(workerID, refusal):
                let (reason, detail) = Self.describe(refusal)
                log(.warning, "refused worker \(workerID): \(detail)")
                send(.refuse(Refuse(reason: reason, detail: detail)), to: workerID)
            case let .startGeneration(generation, placements, _, _):
                // Once the final state is in hand, membership no longer matters: it is written.
                if case .finalizing = phase { continue }
                formed(generation, placements: placements, now: now)
            case let .declaredDown(workerIDs, _):
                declaredDown(workerIDs, now: now)
            case let .pause(live, minimum):
                if case .rendezvous = phase { continue }
                if case .finalizing = phase { continue }
                if stopRequested && live == 0 {
                    fail(.interruptedWhilePaused(checkpointStep: checkpoints.newestStep))
                    return
                }
                phase = .paused
                current = nil
                log(.warning, "paused: only \(live) of the minimum \(minimum) workers are live; waiting for workers to join")
            }
        }
    }

    private mutating func declaredDown(_ workerIDs: [String], now: Double) {
        let lastHeard = workerIDs.compactMap { membership.members[$0]?.lastHeard }.max() ?? now
        let ranks = workerIDs.map { id in current?.ranks[id].map { "rank \($0)" } ?? "not ranked" }
        switch phase {
        case .rendezvous:
            log(.warning, "worker \(workerIDs.joined(separator: ", ")) left before training started")
        case .ended:
            break
        default:
            log(.warning, "worker \(workerIDs.joined(separator: ", ")) (\(ranks.joined(separator: ", "))) declared down: silent for \(ProgressFormat.fixed(now - lastHeard, 1)) s at step \(progress.lastCompletedStep)")
            recovery = (workerIDs, now, lastHeard)
            emit(.record(.workerDown(workers: workerIDs, step: progress.lastCompletedStep, secondsSinceLastMessage: now - lastHeard)))
        }
    }

    static func describe(_ refusal: Membership.Refusal) -> (Refuse.Reason, String) {
        switch refusal {
        case let .protocolVersionMismatch(worker, coordinator):
            (.protocolVersionMismatch, versionRefusal(worker: worker, coordinator: coordinator))
        case let .datasetMismatch(worker, coordinator):
            (.datasetMismatch, "dataset mismatch: the worker's index has fingerprint \(worker.prefix(16)), the coordinator's \(coordinator.prefix(16)); both must see the same files")
        case .duplicateWorkerID:
            (.duplicateWorkerID, "another live worker process uses this worker id; give each worker its own --worker-id (a restarted worker is admitted once its predecessor is declared down)")
        case let .runFull(workers):
            (.runFull, "the run already has its \(workers) workers")
        case let .unreachableRingAddress(advertised, from):
            (.unreachableRingAddress, "the worker advertises its ring at \(advertised), a loopback address, but connects from \(from): its neighbours could not reach it; start it with --host \(from) (or --ring-interface NAME), or without --host to use the address that reaches the coordinator")
        case let .ringAddressNotReached(advertised, reporter):
            (.unreachableRingAddress, "worker \(reporter) could not connect to this worker's ring address \(advertised): it is left out of the run. Start it with --host ADDRESS (or --ring-interface NAME) that the other workers can reach, or let its ring port through the firewall")
        }
    }

    /// What a worker's abort asks for (`Abort.Cause`).
    private mutating func workerAborted(_ abort: Abort, workerID: String, now: Double) {
        switch (abort.cause, phase) {
        case (.ringFailed, .paused), (.ringTransportUnavailable, .paused), (.stateMissing, .paused), (.ringUnreachable, .paused),
             (.ringFailed, .rendezvous), (.ringTransportUnavailable, .rendezvous), (.stateMissing, .rendezvous),
             (.ringUnreachable, .rendezvous):
            // About a generation that no longer runs (the run paused since): nothing to re-form.
            countDrop("stale abort")
            return
        default:
            break
        }
        switch abort.cause {
        case .ringFailed:
            generationBroke(reportedBy: workerID, reason: abort.reason, now: now)
        case .ringUnreachable:
            let target = abort.failedRank.flatMap { rank in current?.ranks.first { $0.value == Int(rank) }?.key }
            guard let target, target != workerID, let member = membership.members[target], member.status == .up else {
                generationBroke(reportedBy: workerID, reason: abort.reason, now: now)
                return
            }
            let reporterRing = membership.members[workerID].map { " (ring at \($0.dataPlaneEndpoint))" } ?? ""
            log(.error, "worker \(target) (rank \(abort.failedRank.map(String.init) ?? "?")) is left out of the run: worker \(workerID)\(reporterRing) cannot connect to its ring address \(member.dataPlaneEndpoint) (\(abort.reason)); start it with --host ADDRESS or --ring-interface NAME that the other workers can reach, or let its ring port through the firewall")
            emit(.record(.workerExcluded(worker: target, reason: abort.reason)))
            carryOut(membership.exclude(target, unreachableFrom: workerID), now: now)
        case .ringTransportUnavailable:
            if plan.settings.ringTransportMode == .shm {
                // Shared memory was asked for: tried again (a full /dev/shm may clear), never TCP.
                log(.warning, "worker \(workerID) cannot set up a shared-memory ring (\(abort.reason)); --ring-transport shm: trying again")
            } else if peers.sharedMemoryHosts.removeValue(forKey: workerID) != nil {
                peers.tcpOnly.insert(workerID)
                log(.warning, "worker \(workerID) cannot set up a shared-memory ring; it gets TCP rings from now on")
            }
            generationBroke(reportedBy: workerID, reason: abort.reason, now: now)
        case .stateMissing:
            if current?.origin == .replicas {
                // No rank had the replica its hello claimed: the next generation starts from a
                // checkpoint or the seed.
                membership.forgetReplicas(of: current.map { Array($0.ranks.keys) } ?? [])
            }
            generationBroke(reportedBy: workerID, reason: abort.reason, now: now)
        case .runCannotContinue:
            fail(.workerAborted(workerID: workerID, rank: current?.ranks[workerID], reason: abort.reason))
        case .workerFailed, .runAborted:
            log(.error, "worker \(workerID) failed and leaves the run: \(abort.reason)")
            carryOut(membership.lost(workerID, now: now), now: now)
        }
    }

    /// A worker reported that its generation broke while its members are alive: a fresh
    /// generation of the same members. After several in a row without a completed step, each
    /// next one waits longer (up to a minute), and the log says so: a pause, never an end.
    private mutating func generationBroke(reportedBy workerID: String, reason: String, now: Double) {
        brokenInARow += 1
        emit(.record(.generationBroke(generation: membership.generation, worker: workerID, reason: reason)))
        let excess = brokenInARow - Self.brokenGenerationsBeforeBackOff
        if excess > 0 {
            let wait = min(Double(1 << min(excess, 6)), Self.longestBackOff)
            notBefore = now + wait
            log(.warning, "generation \(membership.generation) broke (\(workerID): \(reason)); \(brokenInARow) generations broke in a row without a step completing: the next one starts in \(Int(wait)) s")
        } else {
            log(.warning, "generation \(membership.generation) broke (\(workerID): \(reason)); forming a new one")
        }
        carryOut(membership.reform(), now: now)
    }
}
