#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TensorFiles

/// One process at a time in a checkpoint directory: an exclusive `flock` on DIR/.lock, held from
/// `acquire` until `release()` or the end of the process. The kernel drops the lock when the
/// process ends, however it ends, so a crash leaves no stale lock behind; the file itself stays
/// and is reused. It records who holds the lock (pid, host, start time) for the message that
/// refuses a second process.
///
/// Acquiring also proves the directory usable before any work is done: it is created when
/// missing, and a probe file is written, fsynced and removed in it, so a read-only, full or
/// foreign folder is found at once rather than at the first checkpoint.
///
/// The descriptor is close-on-exec: child processes (the --local workers) never hold the lock.
public final class CheckpointDirectoryLock: @unchecked Sendable {
    public static let fileName = ".lock"

    /// Who holds a lock, as its file says.
    public struct Holder: Sendable, Equatable, CustomStringConvertible {
        public var processID: Int32
        public var host: String
        /// ISO 8601, UTC.
        public var started: String

        public init(processID: Int32, host: String, started: String) {
            self.processID = processID
            self.host = host
            self.started = started
        }

        public var description: String { "pid \(processID) on host \(host), started \(started)" }

        /// The file's text: one "key value" line each.
        var text: String { "pid \(processID)\nhost \(host)\nstarted \(started)\n" }

        /// Parses `text`; nil when a field is missing (e.g. the holder has not written it yet).
        init?(text: String) {
            var fields: [Substring: Substring] = [:]
            for line in text.split(separator: "\n") {
                guard let space = line.firstIndex(of: " ") else { continue }
                fields[line[..<space]] = line[line.index(after: space)...]
            }
            guard let pid = fields["pid"].flatMap({ Int32($0) }), let host = fields["host"], let started = fields["started"] else {
                return nil
            }
            self.init(processID: pid, host: String(host), started: String(started))
        }
    }

    /// Why a directory cannot be used. Each names the directory and says what to do.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The directory (or a parent) could not be created.
        case cannotCreate(directory: String, reason: String)
        /// The directory exists, but a file cannot be created, written and synced in it.
        case notWritable(directory: String, reason: String)
        /// The lock file cannot be locked (a file system without `flock`).
        case cannotLock(directory: String, reason: String)
        /// Another process holds the lock; `holder` is nil when its file does not say (yet).
        case held(directory: String, holder: Holder?)

        public var directory: String {
            switch self {
            case let .cannotCreate(directory, _), let .notWritable(directory, _), let .cannotLock(directory, _),
                 let .held(directory, _):
                directory
            }
        }

        public var description: String {
            switch self {
            case let .cannotCreate(directory, reason):
                "cannot create the folder \(directory): \(reason); give a folder that this user can create and write"
            case let .notWritable(directory, reason):
                "cannot write in the folder \(directory): \(reason); give a folder that this user can write (check its permissions, and that its file system is neither read-only nor full)"
            case let .cannotLock(directory, reason):
                "cannot lock \(directory)/\(CheckpointDirectoryLock.fileName): \(reason); give a folder on a file system that supports flock (a local disk)"
            case let .held(directory, holder):
                "\(directory) is in use by another process (\(holder.map(\.description) ?? "which has not written its pid yet")): stop it first, or give another folder"
            }
        }
    }

    public let directory: String
    public let holder: Holder
    private let lock = NSLock()
    private var descriptor: Int32

    private init(directory: String, holder: Holder, descriptor: Int32) {
        self.directory = directory
        self.holder = holder
        self.descriptor = descriptor
    }

    deinit { release() }

    /// Takes the lock of `directory` for this process, creating the directory when missing, and
    /// checks that files can be written and synced in it. Never waits: a directory in use is
    /// refused at once with the holder's pid, host and start time.
    public static func acquire(directory: String) throws(Failure) -> CheckpointDirectoryLock {
        do {
            try FileSystem.makeDirectories(directory)
        } catch {
            throw .cannotCreate(directory: directory, reason: error.description)
        }
        let path = directory + "/" + fileName
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .notWritable(directory: directory, reason: "open \(path): \(reason(errno))") }
        var owned = true
        defer { if owned { close(descriptor) } }

        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let number = errno
            if number == EINTR { continue }
            if number == EWOULDBLOCK { throw .held(directory: directory, holder: Holder(text: readText(descriptor))) }
            throw .cannotLock(directory: directory, reason: reason(number))
        }
        let holder = Holder(processID: getpid(), host: ProcessInfo.processInfo.hostName,
                            started: ISO8601DateFormatter().string(from: Date()))
        do {
            try record(holder, in: descriptor, path: path)
            try probe(directory)
        } catch {
            throw .notWritable(directory: directory, reason: error.description)
        }
        owned = false
        return CheckpointDirectoryLock(directory: directory, holder: holder, descriptor: descriptor)
    }

    /// Gives the lock up (also done when the value goes away, or by the kernel when the process
    /// ends). The lock file stays, emptied; the next holder rewrites it.
    public func release() {
        lock.lock()
        defer { lock.unlock() }
        guard descriptor >= 0 else { return }
        ftruncate(descriptor, 0)  // names no holder once free (a crashed one is named until the next takes over)
        close(descriptor)  // drops the flock with the last descriptor of the open file
        descriptor = -1
    }

    /// Whether this value still holds the lock.
    public var isHeld: Bool {
        lock.lock()
        defer { lock.unlock() }
        return descriptor >= 0
    }

    private static func record(_ holder: Holder, in descriptor: Int32, path: String) throws(FileSystem.Failure) {
        guard ftruncate(descriptor, 0) == 0 else { throw failure("ftruncate", path) }
        let bytes = Array(holder.text.utf8)
        let written = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        guard written == bytes.count else {
            if written < 0 { throw failure("write", path) }
            throw FileSystem.Failure(call: "write", path: path, reason: "short write (\(written) of \(bytes.count) bytes)")
        }
        guard fsync(descriptor) == 0 else { throw failure("fsync", path) }
    }

    /// Creates, writes, fsyncs and removes a file: the lock file may exist in a folder that has
    /// since become read-only, and only a new file shows that checkpoints can be written.
    private static func probe(_ directory: String) throws(FileSystem.Failure) {
        let path = directory + "/.write-probe-\(getpid())"
        unlink(path)  // left by a crashed process that had our pid; we hold the lock now
        try FileSystem.writeNewFile(Array("scvae checkpoint directory probe\n".utf8), to: path)
        guard unlink(path) == 0 else { throw failure("unlink", path) }
        try FileSystem.syncDirectory(directory)
    }

    private static func readText(_ descriptor: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        return String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self)
    }

    private static func failure(_ call: String, _ path: String) -> FileSystem.Failure {
        FileSystem.Failure(call: call, path: path, reason: reason(errno))
    }

    private static func reason(_ number: Int32) -> String { String(cString: strerror(number)) }
}
