#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Errors of reading and writing whole files; each names the file and the failing call.
public enum FileError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened for reading (missing, a directory, no permission).
    case cannotOpen(file: String, reason: String)
    /// Reading failed part way.
    case readFailed(file: String, reason: String)
    /// Creating, writing, syncing or renaming the file failed.
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let file, let reason): return "\(file): cannot open: \(reason)"
        case .readFailed(let file, let reason): return "\(file): read failed: \(reason)"
        case .writeFailed(let file, let reason): return "\(file): write failed: \(reason)"
        }
    }
}

private func systemError() -> String {
    String(cString: strerror(errno))
}

/// Whole-file reads and crash-safe whole-file writes on plain POSIX calls.
public enum BinaryFile {
    /// Reads a regular file completely.
    public static func read(_ path: String) throws(FileError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw .cannotOpen(file: path, reason: systemError()) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .readFailed(file: path, reason: systemError()) }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw .cannotOpen(file: path, reason: "not a regular file")
        }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                posixRead(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw .readFailed(file: path, reason: systemError())
            }
            if count == 0 { break }  // The file shrank while we read it.
            filled += count
        }
        if filled < bytes.count { bytes.removeSubrange(filled...) }
        return bytes
    }

    /// Writes `bytes` so that `path` holds either its old content or all of the new one, even after
    /// a crash (`FileSystem.replaceFile`: temporary sibling, fsync, rename, directory fsync).
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(FileError) {
        do {
            try FileSystem.replaceFile(path, with: bytes)
        } catch {
            throw .writeFailed(file: path, reason: "\(error.call): \(error.reason)")
        }
    }

    /// Fsyncs the directory holding `path` so a rename into it is durable. Best effort: some file
    /// systems refuse to open directories for sync, and the data itself is already synced.
    package static func syncDirectory(containing path: String) {
        let parent = (path as NSString).deletingLastPathComponent
        try? FileSystem.syncDirectory(parent.isEmpty ? "." : parent)
    }
}

// `read` and `write` are shadowed inside `BinaryFile` by its own static methods.
@inline(__always)
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.read(fd, buffer, count)
    #else
    return Darwin.read(fd, buffer, count)
    #endif
}

