import TensorFiles
/// Names inside a checkpoint directory DIR:
///
///     step-NNNNNNNN/                      a complete checkpoint (step zero-padded to 8 digits)
///       model.safetensors  optimizer.safetensors  state.json
///     best/                               the best validation's checkpoint (+ summary.json)
///     .step-NNNNNNNN.<purpose>-<pid>      a temporary: being written, or an old copy on its way out
///
/// Only complete checkpoints have names without a leading dot, and they appear by rename, so a
/// crash leaves at most temporaries behind.
enum CheckpointName {
    static let prefix = "step-"
    static let temporaryPrefix = ".step-"
    static let model = "model.safetensors"
    static let optimizer = "optimizer.safetensors"
    static let state = "state.json"
    /// `DIR/best/`: the checkpoint with the best validation figure, and its `summary.json`.
    static let best = "best"
    static let summary = "summary.json"

    /// "step-00000042" for step 42 (more digits past 99,999,999).
    static func directory(step: Int) -> String {
        let digits = String(step)
        return prefix + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// The step of a complete checkpoint's directory name, nil for any other name.
    static func step(ofDirectory name: some StringProtocol) -> Int? {
        guard name.hasPrefix(prefix) else { return nil }
        let digits = name.dropFirst(prefix.count)
        guard digits.count >= 8, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }

    /// A temporary for `step`, unique to this process and purpose ("tmp", "old", "removing").
    static func temporary(step: Int, purpose: String, processID: Int32) -> String {
        "." + directory(step: step) + ".\(purpose)-\(processID)"
    }

    static func isTemporary(_ name: some StringProtocol) -> Bool {
        name.hasPrefix(temporaryPrefix)
    }
}
