import BuildInfo
import Checkpoints
import Logging
import Wire

/// Steps, checksums, state uploads, checkpoints and the end of the run.
extension RunController {
    static let codeVersion = "scvae \(BuildInfo.description), protocol \(FrameHeader.currentVersion)"

    mutating func react(to events: [RunProgress.Event], now: Double) {
        for event in events {
            switch event {
            case let .replicasAgree(step, checksum):
                agreed(step: step, checksum: checksum)
            case let .stepCompleted(summary):
                record(summary, now: now)
            case let .checksumMismatch(step, checksums):
                fail(.replicasDiverged(RunProgress.Event.describeMismatch(step: step, checksums: checksums)))
            case let .finalStepsDiffer(steps):
                fail(.replicasDiverged("ranks stopped after different steps: \(steps.sorted { $0.key < $1.key }.map { "rank \($0.key) step \($0.value)" }.joined(separator: ", "))"))
            case let .finished(step, epoch, checksum):
                agreed(step: step, checksum: checksum)
                guard let source = current?.ranks.first(where: { $0.value == 0 })?.key else { return }
                log(.info, "all ranks stopped after step \(step) with parameter CRC32C 0x\(String(checksum, radix: 16)); fetching the state from rank 0")
                let target = Finishing(step: step, epoch: epoch, checksum: checksum, workerID: source, requestedAt: now)
                phase = .finishing(target)
                upload = nil
                requestFinalUpload(target)
            }
        }
    }

    mutating func requestFinalUpload(_ target: Finishing) {
        send(.checkpoint(CheckpointCommand(action: .upload, step: UInt64(target.step), epoch: UInt64(target.epoch))), to: target.workerID)
    }

    private mutating func agreed(step: Int, checksum: UInt32) {
        if var record = current, !record.confirmed {
            // Every rank holds the generation's starting state: the replicas now carry the run.
            // The ranks' agreement, not the coordinator's guess, says which step that is (a step
            // may have completed while the generation was being formed).
            if step != record.startStep {
                log(.info, "generation \(record.number) starts after step \(step), as its ranks agreed (the coordinator expected \(record.startStep))")
                record.startStep = step
                progress.rebase(completedStep: step)
            }
            record.confirmed = true
            current = record
            membership.synchronised(step: step)
            checkpoints.loaded = nil
        }
        agreedChecksums[step] = checksum
        let window = 4 * max(plan.settings.checkpointEvery, plan.recipe.checksumEvery)
        agreedChecksums = agreedChecksums.filter { $0.key >= step - window }
        if let parked = parkedUpload, parked.step == step {
            parkedUpload = nil
            checkpoint(parked)
        }
    }

    private mutating func record(_ summary: RunProgress.StepSummary, now: Double) {
        lastSummary = summary
        brokenInARow = 0
        firstReportAt = firstReportAt.filter { $0.key > summary.step }
        if let recovery {
            let seconds = now - recovery.declaredAt, sinceSilence = now - recovery.lastHeard
            log(.notice, "recovered: step \(summary.step) completed \(ProgressFormat.fixed(seconds, 2)) s after \(recovery.ids.joined(separator: ", ")) was declared down (\(ProgressFormat.fixed(sinceSilence, 2)) s after its last message), with \(progress.worldSize) workers")
            emit(.record(.recovery(step: summary.step, workers: progress.worldSize, secondsSinceDeclaredDown: seconds,
                                   secondsSinceLastMessage: sinceSilence)))
            self.recovery = nil
        }
        let elapsed = trainingStartedAt.map { now - $0 } ?? 0
        let done = summary.step - stepsAtTrainingStart
        let eta = done > 0 ? elapsed / Double(done) * Double(plan.totalSteps - summary.step) : nil
        if summary.step % plan.settings.logEvery == 0 || summary.step == plan.totalSteps {
            log(.info, ProgressFormat.line(summary, totalSteps: plan.totalSteps, etaSeconds: eta, ringTransport: ringTransport.shortName))
        }
        emit(.metrics(StepMetrics(summary, elapsedSeconds: elapsed, ringTransport: ringTransport.shortName)))
    }

    // MARK: Uploads

    /// A chunk of rank 0's state (a checkpoint step) or of the final state.
    mutating func receiveChunk(_ chunk: TensorChunk, from workerID: String) {
        let expected: Bool
        switch phase {
        case let .finishing(target): expected = target.workerID == workerID
        case .training: expected = current?.ranks[workerID] == 0
        default: expected = false
        }
        guard expected else {
            countDrop("unexpected tensor chunk")
            warnLimited("unexpected chunk", now: lastEventAt ?? 0, "dropped a tensor chunk (\(chunk.name.prefix(80))) from \(workerID): no state transfer expected from it")
            return
        }
        let step = Int(clamping: chunk.step)
        if upload == nil || upload?.step != step || upload?.workerID != workerID {
            if let stale = upload { log(.warning, "dropped the incomplete state of step \(stale.step) from \(stale.workerID)") }
            upload = StateUpload(workerID: workerID, step: step)
        }
        do {
            try upload?.add(chunk)
        } catch {
            log(.warning, "state transfer of step \(chunk.step) from \(workerID) failed: \(error); no checkpoint of that step")
            upload = nil
        }
    }

    mutating func finishUpload(_ command: CheckpointCommand, from workerID: String, now: Double) {
        guard let pending = upload, pending.workerID == workerID else { return }
        upload = nil
        let uploaded: StateUpload.Uploaded
        do {
            uploaded = try pending.finish(command)
        } catch {
            log(.warning, "\(error); no checkpoint of step \(command.step)")
            if case let .finishing(target) = phase { requestFinalUpload(target) }
            return
        }
        if case let .finishing(target) = phase, target.workerID == workerID {
            guard uploaded.step == target.step, uploaded.parameterChecksum == target.checksum else {
                log(.warning, "the final state from \(workerID) (step \(uploaded.step), CRC32C 0x\(String(uploaded.parameterChecksum, radix: 16))) is not the replicas' (step \(target.step), 0x\(String(target.checksum, radix: 16))); asking again")
                requestFinalUpload(target)
                return
            }
            let checkpoint = uploaded.step == checkpoints.newestStep ? nil : makeCheckpoint(uploaded)
            if let summary = finalIsBest, summary.step == uploaded.step {
                finalIsBest = nil
                emit(.write(.best(checkpoint ?? makeCheckpoint(uploaded), summary: summary)))
            }
            let final = Finalizing(step: uploaded.step, epoch: target.epoch, model: uploaded.model, checkpoint: checkpoint,
                                   retryAt: nil, failures: 0)
            phase = .finalizing(final)
            writeFinal(final)
            return
        }
        if let checksum = agreedChecksums[uploaded.step] {
            checkpoint(uploaded, agreedChecksum: checksum)
        } else {
            parkedUpload = uploaded
        }
    }

    /// Hands a state whose checksum every rank agreed on to the writer.
    private mutating func checkpoint(_ uploaded: StateUpload.Uploaded, agreedChecksum: UInt32? = nil) {
        let agreed = agreedChecksum ?? agreedChecksums[uploaded.step]
        guard uploaded.parameterChecksum == agreed else {
            log(.warning, "no checkpoint of step \(uploaded.step): the uploaded parameters have CRC32C 0x\(String(uploaded.parameterChecksum, radix: 16)), the replicas agreed on 0x\(String(agreed ?? 0, radix: 16))")
            return
        }
        let checkpoint = makeCheckpoint(uploaded)
        keepForValidation(checkpoint)
        emit(.write(.checkpoint(checkpoint)))
    }

    func makeCheckpoint(_ uploaded: StateUpload.Uploaded) -> Checkpoint {
        let cursor = plan.sampler.cursor(afterSteps: uploaded.step)
        let settings = plan.settings
        let state = CheckpointState(
            step: uploaded.step, epoch: cursor.epoch, cursorEpoch: cursor.epoch, cursorStep: cursor.step,
            optimizerStep: uploaded.optimizerStep, worldSize: progress.worldSize, config: settings.config,
            globalBatch: settings.globalBatch, seed: settings.seed, datasetFingerprint: plan.datasetFingerprint,
            codeVersion: Self.codeVersion, recipeJSON: plan.recipe.json,
            rng: "keyed-splitmix64(seed, epoch, sample): augmentation has no stream state")
        return Checkpoint(state: state, model: uploaded.model, optimizer: uploaded.optimizer)
    }

    mutating func writeFinal(_ final: Finalizing) {
        emit(.write(.final(checkpoint: final.checkpoint, weights: final.model, step: final.step, epoch: final.epoch,
                           model: FinalWeights.Model(plan.settings))))
    }

    // MARK: The writer's results

    mutating func writerFinished(_ result: WriterResult, now: Double) {
        switch result {
        case let .written(step, path, seconds, bytes):
            checkpoints.newestStep = max(checkpoints.newestStep ?? step, step)
            log(.info, "checkpoint of step \(step) written to \(path) (\(ProgressFormat.fixed(Double(bytes) / 1e6, 1)) MB in \(ProgressFormat.fixed(seconds, 2)) s)")
            emit(.record(.checkpoint(step: step, path: path, bytes: bytes, seconds: seconds)))
        case let .writtenWithoutPruning(step, path, reason):
            checkpoints.newestStep = max(checkpoints.newestStep ?? step, step)
            log(.warning, "checkpoint of step \(step) written, but the old checkpoint \(path) could not be removed: \(reason)")
        case let .failed(step, reason):
            log(.error, "checkpoint of step \(step) failed: \(reason); the previous checkpoints are kept and training goes on")
            emit(.record(.checkpointFailed(step: step, reason: reason)))
        case let .finalWritten(step, path):
            guard case let .finalizing(final) = phase, final.step == step else { return }
            checkpoints.newestStep = step
            log(.info, "wrote \(path) (\(final.model.count) tensors, step \(step), epoch \(final.epoch))")
            emit(.record(.finalWritten(step: step, path: path)))
            if step < plan.totalSteps {
                // Stopped early (a signal): the workers exit "try again later" too, so a
                // scheduler restarts them for the resumed run instead of counting them done.
                broadcast(.shutdown(Shutdown(exitCode: RunOutcome.stoppedEarlyStatus,
                                             reason: "run stopped at step \(step) of \(plan.totalSteps); its state is saved and the same command resumes it")))
            } else {
                broadcast(.shutdown(Shutdown(exitCode: 0, reason: "run complete at step \(step)")))
            }
            emit(.end(.completed(path: path, step: step, epoch: final.epoch)))
            phase = .ended
        case let .bestWritten(step, path):
            log(.info, "\(path) now holds step \(step), the best validation so far")
            emit(.record(.bestWritten(step: step, path: path)))
        case let .bestFailed(step, reason):
            log(.error, "the best checkpoint (step \(step)) could not be written: \(reason); training goes on")
            emit(.record(.checkpointFailed(step: step, reason: "best: \(reason)")))
        case let .finalFailed(step, reason):
            guard case var .finalizing(final) = phase, final.step == step else { return }
            final.failures += 1
            final.retryAt = now + Self.finalWriteRetry
            phase = .finalizing(final)
            log(.error, "the final state of step \(step) could not be written: \(reason); the workers keep it and it is written again in \(Int(Self.finalWriteRetry)) s (attempt \(final.failures + 1)): free space or fix \(plan.settings.outputDirectory), or interrupt twice to end without it")
            emit(.record(.checkpointFailed(step: step, reason: reason)))
        }
    }
}
