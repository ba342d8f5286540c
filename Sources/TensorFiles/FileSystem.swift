#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The one layer of durable file operations (checkpoint folders, whole files written atomically),
/// on POSIX calls so that each failure carries the call, the path and errno's reason.
/// `BinaryFile` is the whole-file API on top of it.
package enum FileSystem {
    package struct Failure: Error, CustomStringConvertible {
        package let call: String
        package let path: String
        package let reason: String
        package init(call: String, path: String, reason: String) {
            self.call = call
            self.path = path
            self.reason = reason
        }
        package var description: String { "\(call) \(path): \(reason)" }
    }

    private static func failure(_ call: String, _ path: String) -> Failure {
        Failure(call: call, path: path, reason: String(cString: strerror(errno)))
    }

    /// Whether anything (file, directory, dangling link) is at `path`.
    package static func exists(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0
    }

    package static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// Size in bytes of a regular file, nil if there is none.
    package static func fileSize(_ path: String) -> Int? {
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(status.st_size)
    }

    /// Names in a directory (without "." and ".."), nil if it cannot be listed.
    package static func entries(of directory: String) -> [String]? {
        try? FileManager.default.contentsOfDirectory(atPath: directory)
    }

    /// Creates `path` and any missing parents; an existing directory is fine.
    package static func makeDirectories(_ path: String) throws(Failure) {
        if isDirectory(path) { return }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path { try makeDirectories(parent) }
        if mkdir(path, 0o755) != 0, !(errno == EEXIST && isDirectory(path)) {
            throw failure("mkdir", path)
        }
    }

    /// Creates exactly `path`; its parent must exist and `path` must not.
    package static func makeDirectory(_ path: String) throws(Failure) {
        guard mkdir(path, 0o755) == 0 else { throw failure("mkdir", path) }
    }

    package static func rename(_ source: String, to target: String) throws(Failure) {
        #if canImport(Glibc)
        let result = Glibc.rename(source, target)
        #else
        let result = Darwin.rename(source, target)
        #endif
        guard result == 0 else { throw failure("rename to \(target):", source) }
    }

    /// Swaps two existing paths in one atomic step (Linux renameat2 with RENAME_EXCHANGE).
    /// Returns false, changing nothing, where the system or the file system cannot.
    package static func exchange(_ first: String, _ second: String) throws(Failure) -> Bool {
        #if os(Linux)
        guard let renameat2 = renameAt2 else { return false }
        let exchangeFlag: UInt32 = 1 << 1  // RENAME_EXCHANGE in <linux/fs.h>
        if renameat2(AT_FDCWD, first, AT_FDCWD, second, exchangeFlag) == 0 { return true }
        if errno == EINVAL || errno == ENOSYS || errno == ENOTSUP { return false }
        throw failure("exchange with \(second):", first)
        #else
        return false
        #endif
    }

    #if os(Linux)
    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    /// glibc has had renameat2 since 2.28, but Swift's Glibc module does not declare it.
    private static let renameAt2: RenameAt2? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: RenameAt2.self)
    }()
    #endif

    /// Creates the file `path` (which must not exist), writes `bytes` and fsyncs it. The file is
    /// not renamed into place: it lives in a temporary directory that is.
    package static func writeNewFile(_ bytes: [UInt8], to path: String) throws(Failure) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { throw failure("create", path) }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("write", path)
            }
            written += count
        }
        guard fsync(descriptor) == 0 else { throw failure("fsync", path) }
    }

    /// Writes `bytes` so that `path` holds either its old content or all of the new one, even after
    /// a crash: a temporary sibling (unique per process and thread) is written and fsynced, renamed
    /// over `path`, and the directory is fsynced (best effort: some file systems refuse).
    package static func replaceFile(_ path: String, with bytes: [UInt8]) throws(Failure) {
        let temporary = path + ".tmp-\(getpid())-\(UInt(bitPattern: Int(bitPattern: pthread_self())))"
        do {
            try? removeTree(temporary)
            try writeNewFile(bytes, to: temporary)
            try rename(temporary, to: path)
        } catch {
            try? removeTree(temporary)
            throw error
        }
        let parent = (path as NSString).deletingLastPathComponent
        try? syncDirectory(parent.isEmpty ? "." : parent)
    }

    /// Fsyncs a directory, making the entries created or renamed in it durable.
    package static func syncDirectory(_ path: String) throws(Failure) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { throw failure("open", path) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw failure("fsync", path) }
    }

    /// Removes `path` and, if it is a directory, everything in it. Symbolic links are removed,
    /// never followed.
    package static func removeTree(_ path: String) throws(Failure) {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            if errno == ENOENT { return }
            throw failure("lstat", path)
        }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            guard let names = entries(of: path) else {
                throw Failure(call: "list", path: path, reason: "the directory cannot be read")
            }
            for name in names { try removeTree(path + "/" + name) }
            guard rmdir(path) == 0 else { throw failure("rmdir", path) }
        } else {
            guard unlink(path) == 0 else { throw failure("unlink", path) }
        }
    }
}
