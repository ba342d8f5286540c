import TensorFiles

/// A line of `DIR/events.jsonl`: what happened to the run that a person or a program reviewing
/// it needs (failures, recoveries, checkpoints, generations). The shell stamps each with the
/// wall time when it writes it.
enum RunEvent: Equatable, Sendable {
    case workerDown(workers: [String], step: Int, secondsSinceLastMessage: Double)
    case recovery(step: Int, workers: Int, secondsSinceDeclaredDown: Double, secondsSinceLastMessage: Double)
    case generationStarted(generation: UInt64, workers: [String], stateFrom: String, step: Int)
    case generationBroke(generation: UInt64, worker: String, reason: String)
    case workerExcluded(worker: String, reason: String)
    case checkpoint(step: Int, path: String, bytes: Int, seconds: Double)
    case checkpointFailed(step: Int, reason: String)
    case finalWritten(step: Int, path: String)
    case runFailed(reason: String)
    case validation(step: Int, images: Int, skipped: Int, loss: Double, psnr: Double, ssim: Double, best: Bool)
    case bestWritten(step: Int, path: String)

    var name: String {
        switch self {
        case .workerDown: "worker_down"
        case .recovery: "recovery"
        case .generationStarted: "generation"
        case .generationBroke: "generation_broke"
        case .workerExcluded: "worker_excluded"
        case .checkpoint: "checkpoint"
        case .checkpointFailed: "checkpoint_failed"
        case .finalWritten: "final"
        case .runFailed: "run_failed"
        case .validation: "validation"
        case .bestWritten: "best"
        }
    }
}

/// A `RunEvent` with its wall time, as one JSON object: `{"event": NAME, "time": SECONDS, ...fields}`.
struct TimedRunEvent: Encodable {
    let time: Double
    let event: RunEvent

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(event.name, forKey: Key("event"))
        try c.encode(time, forKey: Key("time"))
        switch event {
        case let .workerDown(workers, step, silence):
            try c.encode(workers, forKey: Key("workers"))
            try c.encode(step, forKey: Key("step"))
            try c.encode(JSONLinesFile.finite(silence), forKey: Key("seconds_since_last_message"))
        case let .recovery(step, workers, sinceDown, sinceSilence):
            try c.encode(step, forKey: Key("step"))
            try c.encode(workers, forKey: Key("workers"))
            try c.encode(JSONLinesFile.finite(sinceDown), forKey: Key("seconds_since_declared_down"))
            try c.encode(JSONLinesFile.finite(sinceSilence), forKey: Key("seconds_since_last_message"))
        case let .generationStarted(generation, workers, stateFrom, step):
            try c.encode(generation, forKey: Key("generation"))
            try c.encode(workers, forKey: Key("workers"))
            try c.encode(stateFrom, forKey: Key("state_from"))
            try c.encode(step, forKey: Key("step"))
        case let .generationBroke(generation, worker, reason):
            try c.encode(generation, forKey: Key("generation"))
            try c.encode(worker, forKey: Key("worker"))
            try c.encode(reason, forKey: Key("reason"))
        case let .workerExcluded(worker, reason):
            try c.encode(worker, forKey: Key("worker"))
            try c.encode(reason, forKey: Key("reason"))
        case let .checkpoint(step, path, bytes, seconds):
            try c.encode(step, forKey: Key("step"))
            try c.encode(path, forKey: Key("path"))
            try c.encode(bytes, forKey: Key("bytes"))
            try c.encode(JSONLinesFile.finite(seconds), forKey: Key("seconds"))
        case let .checkpointFailed(step, reason):
            try c.encode(step, forKey: Key("step"))
            try c.encode(reason, forKey: Key("reason"))
        case let .finalWritten(step, path):
            try c.encode(step, forKey: Key("step"))
            try c.encode(path, forKey: Key("path"))
        case let .runFailed(reason):
            try c.encode(reason, forKey: Key("reason"))
        case let .validation(step, images, skipped, loss, psnr, ssim, best):
            try c.encode(step, forKey: Key("step"))
            try c.encode(images, forKey: Key("images"))
            try c.encode(skipped, forKey: Key("skipped"))
            try c.encode(JSONLinesFile.finite(loss), forKey: Key("loss"))
            try c.encode(JSONLinesFile.finite(psnr), forKey: Key("psnr"))
            try c.encode(JSONLinesFile.finite(ssim), forKey: Key("ssim"))
            try c.encode(best, forKey: Key("best"))
        case let .bestWritten(step, path):
            try c.encode(step, forKey: Key("step"))
            try c.encode(path, forKey: Key("path"))
        }
    }
}
