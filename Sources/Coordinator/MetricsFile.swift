import Foundation

/// The JSON-lines metrics file (--metrics): one object per completed step, flushed per line.
final class MetricsFile {
    let path: String
    private let handle: FileHandle

    /// Creates (or truncates) the file, and its folder.
    init(path: String) throws {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CoordinatorFailure.cannotWrite(path: path, reason: "cannot create the metrics file")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }

    func append(_ line: String) throws {
        try handle.write(contentsOf: Data((line + "\n").utf8))
    }

    deinit { try? handle.close() }
}
