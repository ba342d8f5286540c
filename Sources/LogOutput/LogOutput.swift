import Foundation
import Logging

/// The process's log handler, chosen once from `--log-level` and `--log-format`.
public enum LogOutput {
    /// Makes every `Logger` of this process write at `level` and above in `format`. swift-log
    /// takes one bootstrap per process: the first call decides and later ones do nothing.
    public static func bootstrap(level: Logger.Level, format: LogFormat) {
        once.run {
            LoggingSystem.bootstrap { label in makeHandler(label: label, level: level, format: format) }
        }
    }

    /// The handler of one logger. `text` is exactly what an un-bootstrapped swift-log writes.
    public static func makeHandler(label: String, level: Logger.Level, format: LogFormat) -> any LogHandler {
        switch format {
        case .text:
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }

    private static let once = Once()
}

/// Runs a closure at most once, whatever the threads.
private final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false

    func run(_ body: () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard !done else { return }
        done = true
        body()
    }
}
