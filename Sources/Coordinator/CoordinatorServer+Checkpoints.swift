import Data
import Foundation
import Wire

extension CoordinatorServer {
    /// A chunk of rank 0's state (a checkpoint step) or of the final state.
    func receiveChunk(_ chunk: TensorChunk, from workerID: String) {
        let expected: Bool
        switch phase {
        case let .finishing(_, _, _, source, _): expected = source == workerID
        case .training, .paused: expected = placementsByWorker[workerID] == 0
        default: expected = false
        }
        guard expected else {
            logger.warning("dropped a tensor chunk (\(chunk.name)) from \(workerID): no state transfer expected from it")
            return
        }
        if upload == nil || upload?.step != Int(chunk.step) || upload?.workerID != workerID {
            if let stale = upload { logger.warning("dropped the incomplete state of step \(stale.step) from \(stale.workerID)") }
            upload = StateUpload(workerID: workerID, step: Int(chunk.step))
        }
        do {
            try upload?.add(chunk)
        } catch {
            logger.warning("state transfer of step \(chunk.step) from \(workerID) failed: \(error); no checkpoint of that step")
            upload = nil
        }
    }

    func finishUpload(_ command: CheckpointCommand, from workerID: String) throws {
        guard let pending = upload, pending.workerID == workerID else { return }
        upload = nil
        let uploaded: StateUpload.Uploaded
        do {
            uploaded = try pending.finish(command)
        } catch {
            if case .finishing = phase { throw error }
            logger.warning("\(error); no checkpoint of step \(command.step)")
            return
        }
        if case let .finishing(step, epoch, checksum, source, _) = phase, source == workerID {
            guard uploaded.step == step, uploaded.parameterChecksum == checksum else {
                throw CoordinatorFailure.upload("the final state from \(workerID) (step \(uploaded.step), CRC32C 0x\(String(uploaded.parameterChecksum, radix: 16))) is not the replicas' (step \(step), 0x\(String(checksum, radix: 16)))")
            }
            try finish(uploaded, epoch: epoch)
            return
        }
        if let checksum = agreedChecksums[uploaded.step] {
            checkpoint(uploaded, agreedChecksum: checksum)
        } else {
            parkedUpload = uploaded
        }
    }

    /// Hands a verified state to the writer thread.
    func checkpoint(_ uploaded: StateUpload.Uploaded, agreedChecksum: UInt32? = nil) {
        let agreed = agreedChecksum ?? agreedChecksums[uploaded.step]
        guard uploaded.parameterChecksum == agreed else {
            logger.warning("no checkpoint of step \(uploaded.step): the uploaded parameters have CRC32C 0x\(String(uploaded.parameterChecksum, radix: 16)), the replicas agreed on 0x\(String(agreed ?? 0, radix: 16))")
            return
        }
        if let replaced = writer.submit(makeCheckpoint(uploaded)) {
            logger.warning("checkpoint of step \(replaced) skipped: the writer is still busy and step \(uploaded.step) is newer")
        }
    }

    func makeCheckpoint(_ uploaded: StateUpload.Uploaded) -> Checkpoint {
        let cursor = sampler.cursor(afterSteps: uploaded.step)
        let state = CheckpointState(
            step: uploaded.step, epoch: cursor.epoch, cursorEpoch: cursor.epoch, cursorStep: cursor.step,
            optimizerStep: uploaded.optimizerStep, worldSize: progress.worldSize, config: settings.config,
            globalBatch: settings.globalBatch, seed: settings.seed, datasetFingerprint: index.fingerprint,
            codeVersion: CoordinatorServer.codeVersion, recipeJSON: recipe.json,
            rng: "keyed-splitmix64(seed, epoch, sample): augmentation has no stream state")
        return Checkpoint(state: state, model: uploaded.model, optimizer: uploaded.optimizer)
    }

    static let codeVersion = "scvae 0.2 (protocol \(FrameHeader.currentVersion))"

    /// Logs what the writer thread finished; a failed write keeps the previous checkpoints and training goes on.
    func collectCheckpointResults() throws {
        for result in writer.takeResults() {
            switch result {
            case let .written(step, path, seconds, bytes):
                lastCheckpointStep = max(lastCheckpointStep, step)
                logger.info("checkpoint of step \(step) written to \(path) (\(ProgressFormat.fixed(Double(bytes) / 1e6, 1)) MB in \(ProgressFormat.fixed(seconds, 2)) s)")
                recordEvent("checkpoint", [("step", "\(step)"), ("path", "\"\(path)\""), ("bytes", "\(bytes)"),
                                           ("seconds", ProgressFormat.number(seconds))])
            case let .writtenWithoutPruning(step, path, reason):
                lastCheckpointStep = max(lastCheckpointStep, step)
                logger.warning("checkpoint of step \(step) written, but the old checkpoint \(path) could not be removed: \(reason)")
            case let .failed(step, error):
                logger.error("checkpoint of step \(step) failed: \(error); the previous checkpoints are kept and training goes on")
                recordEvent("checkpoint_failed", [("step", "\(step)"), ("reason", "\"\(String(describing: error).replacingOccurrences(of: "\"", with: "'"))\"")])
            }
        }
    }

    /// The final state: a checkpoint (written now) and the final weights.
    private func finish(_ uploaded: StateUpload.Uploaded, epoch: Int) throws {
        if uploaded.step != lastCheckpointStep {
            writer.submit(makeCheckpoint(uploaded))
            guard writer.waitUntilIdle(timeout: .seconds(600)) else {
                throw CoordinatorFailure.cannotWrite(path: writer.store.directory, reason: "the final checkpoint took more than 600 s")
            }
            try collectCheckpointResults()
        }
        let path = try FinalWeights.write(uploaded.model, step: uploaded.step, epoch: epoch, config: settings.config,
                                          into: settings.outputDirectory)
        logger.info("wrote \(path) (\(uploaded.model.count) tensors, step \(uploaded.step), epoch \(epoch))")
        phase = .done(step: uploaded.step, epoch: epoch, path: path)
    }
}
