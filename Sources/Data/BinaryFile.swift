#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// a crash: a temporary sibling is written and fsynced, renamed over `path`, and the directory
    /// is fsynced.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(FileError) {
        // Unique per process and thread, so concurrent writers of one path never share a temporary.
        let temporary = path + ".tmp-\(getpid())-\(UInt(bitPattern: Int(bitPattern: pthread_self())))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw .writeFailed(file: path, reason: "open \(temporary): \(systemError())") }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                posixWrite(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if count < 0 {
                if errno == EINTR { continue }
                let reason = systemError()
                close(descriptor)
                unlink(temporary)
                throw .writeFailed(file: path, reason: "write: \(reason)")
            }
            written += count
        }
        if fsync(descriptor) != 0 {
            let reason = systemError()
            close(descriptor)
            unlink(temporary)
            throw .writeFailed(file: path, reason: "fsync: \(reason)")
        }
        close(descriptor)
        if rename(temporary, path) != 0 {
            let reason = systemError()
            unlink(temporary)
            throw .writeFailed(file: path, reason: "rename: \(reason)")
        }
        syncDirectory(containing: path)
    }

    /// Fsyncs the directory holding `path` so a rename into it is durable. Best effort: some file
    /// systems refuse to open directories for sync, and the data itself is already synced.
    static func syncDirectory(containing path: String) {
        let directory: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        let descriptor = open(directory, O_RDONLY)
        if descriptor >= 0 {
            _ = fsync(descriptor)
            close(descriptor)
        }
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

@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
