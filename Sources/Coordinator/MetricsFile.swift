import Foundation

/// The JSON-lines metrics file (--metrics): one object per completed step, flushed per line.
final class MetricsFile {
    let path: String
    private let handle: FileHandle

    /// Creates the file and its folder; an existing file is truncated, or appended to when
    /// `appending` (a resumed run continues its metrics).
    init(path: String, appending: Bool = false) throws {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        if !(appending && FileManager.default.fileExists(atPath: path)) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CoordinatorFailure.cannotWrite(path: path, reason: "cannot create the file")
            }
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
    }

    func append(_ line: String) throws {
        try handle.write(contentsOf: Data((line + "\n").utf8))
    }

    deinit { try? handle.close() }
}
