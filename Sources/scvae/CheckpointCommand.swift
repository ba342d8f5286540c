import ArgumentParser
import Checkpoints
import CommandOptions
import Foundation

/// `scvae checkpoint verify|inspect PATH`: check and describe checkpoints written by the coordinator.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Verify or inspect checkpoints (DIR/step-NNNNNNNN/ with model.safetensors, optimizer.safetensors, state.json).",
        subcommands: [CheckpointVerifyCommand.self, CheckpointInspectCommand.self])
}

struct CheckpointVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify every tensor's CRC32C and the state of one checkpoint or of each in a checkpoint directory.",
        discussion: "Prints one line per checkpoint, OK or FAILED with the reason; exits non-zero if any failed or there is none.")

    @Argument(help: "One checkpoint (step-NNNNNNNN) or a directory of them.")
    var path: String

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let verification = try CheckpointVerification.verify(path)
        for outcome in verification.outcomes {
            switch outcome.result {
            case .success(let summary):
                print("OK      \(outcome.path)  step \(summary.state.step), epoch \(summary.state.epoch), "
                      + "\(summary.tensors.count) tensors, \(formatBytes(summary.totalBytes))")
            case .failure(let error):
                print("FAILED  \(outcome.path)  \(error)")
            }
        }
        if verification.isDirectoryOfCheckpoints {
            for temporary in verification.temporaries {
                print("ignored \(temporary)  (left by an interrupted write; a run removes it)")
            }
            if verification.outcomes.isEmpty { print("no checkpoints in \(path)") }
            print("a resume would use: \(verification.resumePath ?? "none (no valid checkpoint)")")
        }
        if !verification.allValid { throw ExitCode.failure }
    }
}

struct CheckpointInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a checkpoint's step, epoch, world size, config, provenance, tensors with shapes and checksums, and sizes.",
        discussion: "Given a directory of checkpoints, inspects the one a resume would use.")

    @Argument(help: "One checkpoint (step-NNNNNNNN) or a directory of them.")
    var path: String

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let verification = try CheckpointVerification.verify(path)
        if verification.isDirectoryOfCheckpoints {
            guard let chosen = verification.outcomes.last(where: { $0.failure == nil }) else {
                printError("\(path): no valid checkpoint (see scvae checkpoint verify \(path))")
                throw ExitCode.failure
            }
            print("newest valid checkpoint in \(path):")
            try show(chosen.result.get())
        } else if let outcome = verification.outcomes.first {
            try show(outcome.result.get())
        }
    }

    private func show(_ summary: CheckpointSummary) {
        let state = summary.state
        print("checkpoint \(summary.path)")
        print("step \(state.step), epoch \(state.epoch); next step: epoch \(state.cursorEpoch), step \(state.cursorStep) of it")
        print("optimizer steps (Adam t) \(state.optimizerStep); world size \(state.worldSize); global batch \(state.globalBatch)")
        print("config \(state.config); seed \(state.seed); rng \(state.rng)")
        print("dataset fingerprint \(state.datasetFingerprint)")
        print("code version \(state.codeVersion)")
        print("recipe \(state.recipeJSON)")
        print("files: " + summary.files.map { "\($0.name) \(formatBytes($0.bytes))" }.joined(separator: ", ")
              + "; total \(formatBytes(summary.totalBytes))")
        print("tensors (\(summary.tensors.count)), all checksums verified:")
        let nameWidth = summary.tensors.map(\.name.count).max() ?? 0
        for tensor in summary.tensors {
            let name = tensor.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            print("  \(name)  \(tensor.dtype.rawValue) \(tensor.shape)  crc32c \(tensor.crc32cHex)  (\(tensor.file))")
        }
    }
}

/// Bytes for people: "812 B", "3.4 KB", "16.5 MB", "1.62 GB" (powers of 1000).
func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000, unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    if unit == 0 { return "\(bytes) B" }
    return String(format: value >= 100 ? "%.0f" : value >= 10 ? "%.1f" : "%.2f", value) + " " + units[unit]
}
