import Foundation
import Logging

/// Writes every record as a `JSONLogLine` to standard output, one line per record, written at
/// once (as swift-log's `StreamLogHandler` flushes every line).
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String

    public init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // The same precedence as StreamLogHandler: the handler's, then the provider's, then the call's.
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let given = event.metadata { merged.merge(given) { $1 } }
        let line = JSONLogLine(date: Date(), level: event.level, label: label, message: event.message.description,
                               metadata: merged, source: event.source)
        StandardOutput.writeLine(line.encoded())
    }
}

/// Standard output (descriptor 1), one whole line per write under a lock, so lines of threads
/// never interleave. Unbuffered: a line is out before the call returns, as with swift-log's own
/// stream (which flushes every line).
enum StandardOutput {
    private static let lock = NSLock()

    static func writeLine(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        lock.lock()
        defer { lock.unlock() }
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return  // a closed or full stream: the line is lost, as with stdio
                }
            }
        }
    }
}
