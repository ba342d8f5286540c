import Foundation

/// A file of one JSON object per line (metrics, events, data-order logs), appended and flushed a
/// line at a time. Every line goes through `JSONEncoder`, so paths and ids with quotes,
/// backslashes or any Unicode are escaped as JSON requires; numbers that JSON cannot hold
/// (NaN, infinity) are the callers' to map (see `JSONLinesFile.finite`).
public final class JSONLinesFile {
    public let path: String
    private let handle: FileHandle
    private let encoder: JSONEncoder

    public enum Failure: Error, CustomStringConvertible {
        case cannotOpen(path: String, reason: String)
        case cannotWrite(path: String, reason: String)

        public var description: String {
            switch self {
            case let .cannotOpen(path, reason): "cannot open \(path) for appending: \(reason)"
            case let .cannotWrite(path, reason): "cannot append to \(path): \(reason)"
            }
        }
    }

    /// Opens `path` for appending, creating it and its folder; `truncating` empties an existing file.
    public init(path: String, truncating: Bool = false) throws(Failure) {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        do {
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            if truncating || !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil) else {
                    throw Failure.cannotOpen(path: path, reason: "cannot create the file")
                }
            }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.seekToEnd()
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .cannotOpen(path: path, reason: "\(error)")
        }
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    deinit { try? handle.close() }

    /// Appends `value` as one line.
    public func append(_ value: some Encodable) throws(Failure) {
        do {
            var line = try encoder.encode(value)
            line.append(0x0A)
            try handle.write(contentsOf: line)
        } catch {
            throw .cannotWrite(path: path, reason: "\(error)")
        }
    }

    /// `value`, or nil (JSON null) when it is NaN or infinite.
    public static func finite(_ value: Double) -> Double? { value.isFinite ? value : nil }
}
