#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import TensorFiles
@testable import Checkpoints

/// One process per checkpoint directory, and a directory that cannot take a checkpoint found
/// before any training.
@Suite struct CheckpointDirectoryLockTests {
    @Test func theFirstHolderKeepsTheFolderAndASecondIsToldWhoHoldsIt() throws {
        let directory = TemporaryDirectory()
        let folder = directory.file("run/checkpoints")
        let first = try CheckpointDirectoryLock.acquire(directory: folder)
        #expect(FileSystem.isDirectory(folder), "created when missing")
        let text = try String(contentsOfFile: folder + "/" + CheckpointDirectoryLock.fileName, encoding: .utf8)
        #expect(text.contains("pid \(getpid())\n") && text.contains("host \(ProcessInfo.processInfo.hostName)\n"))
        #expect(first.holder.processID == getpid())

        // flock locks belong to an open file: a second acquire in this process is refused too.
        let refusal = try #require(throws: CheckpointDirectoryLock.Failure.self) {
            try CheckpointDirectoryLock.acquire(directory: folder)
        }
        #expect(refusal == .held(directory: folder, holder: first.holder))
        #expect(refusal.description.contains("\(folder) is in use by another process (pid \(getpid()) on host \(ProcessInfo.processInfo.hostName), started \(first.holder.started))"))
        #expect(CheckpointSamples.names(in: folder) == [CheckpointDirectoryLock.fileName], "the probe file is gone")

        first.release()
        #expect(!first.isHeld)
        let second = try CheckpointDirectoryLock.acquire(directory: folder)
        #expect(second.isHeld)
    }

    /// The kernel drops the lock of a process that dies, even by SIGKILL: no stale lock. The
    /// holder is flock(1) exec'ing sleep (no fork: one process holds the lock), which writes no
    /// holder into the file.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/flock"), "needs flock(1) from util-linux"))
    func aLockHeldByAKilledProcessIsFree() throws {
        let directory = TemporaryDirectory()
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["--exclusive", "--no-fork", directory.file(CheckpointDirectoryLock.fileName), "sleep", "600"]
        try holder.run()
        defer { kill(holder.processIdentifier, SIGKILL) }

        // Bounded waits, polling: until flock(1) holds the lock, then until it is free again.
        func acquireWithin(seconds: Double, until done: (Result<CheckpointDirectoryLock, CheckpointDirectoryLock.Failure>) -> Bool)
            -> Result<CheckpointDirectoryLock, CheckpointDirectoryLock.Failure> {
            let deadline = Date(timeIntervalSinceNow: seconds)
            while true {
                let result = Result { () throws(CheckpointDirectoryLock.Failure) in try CheckpointDirectoryLock.acquire(directory: directory.path) }
                if done(result) || Date() >= deadline { return result }
                Thread.sleep(forTimeInterval: 0.02)  // a lock taken here is released when `result` goes
            }
        }
        let refused = acquireWithin(seconds: 30) { if case .failure = $0 { true } else { false } }
        #expect(throws: CheckpointDirectoryLock.Failure.held(directory: directory.path, holder: nil)) { try refused.get() }
        guard case let .failure(refusal) = refused else { return }
        #expect(refusal.description.contains("which has not written its pid yet"))

        kill(holder.processIdentifier, SIGKILL)
        let freed = acquireWithin(seconds: 30) { if case .success = $0 { true } else { false } }
        #expect(try freed.get().holder.processID == getpid())
    }

    @Test func aFolderThatCannotBeCreatedIsRefusedWithTheReason() throws {
        let directory = TemporaryDirectory()
        let file = directory.write([1], to: "not-a-folder")
        let refusal = try #require(throws: CheckpointDirectoryLock.Failure.self) {
            try CheckpointDirectoryLock.acquire(directory: file + "/checkpoints")
        }
        guard case let .cannotCreate(folder, reason) = refusal else { Issue.record("\(refusal)"); return }
        #expect(folder == file + "/checkpoints")
        #expect(reason.contains("mkdir"), "\(reason)")
        #expect(refusal.description.contains("give a folder that this user can create and write"))
    }

    /// A read-only file system (root: a tmpfs mounted read-only), or a folder of mode 555
    /// (other users): both the folder's creation and a write in it are refused at once.
    @Test(.enabled(if: getuid() != 0 || ReadOnlyFileSystem.canMount, "root needs to mount a read-only tmpfs"))
    func aReadOnlyFolderIsRefusedBeforeAnyWork() throws {
        let directory = TemporaryDirectory()
        let readOnly = directory.file("read-only")
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        var mounted: ReadOnlyFileSystem?
        if getuid() == 0 {
            mounted = try ReadOnlyFileSystem(at: readOnly)
        } else {
            chmod(readOnly, 0o555)
        }
        defer {
            mounted?.unmount()
            chmod(readOnly, 0o755)
        }
        let expectedReason = String(cString: strerror(getuid() == 0 ? EROFS : EACCES))

        let below = try #require(throws: CheckpointDirectoryLock.Failure.self) {
            try CheckpointDirectoryLock.acquire(directory: readOnly + "/run")
        }
        guard case let .cannotCreate(_, reason) = below else { Issue.record("\(below)"); return }
        #expect(reason.contains(expectedReason), "\(reason)")

        let inside = try #require(throws: CheckpointDirectoryLock.Failure.self) {
            try CheckpointDirectoryLock.acquire(directory: readOnly)
        }
        guard case let .notWritable(folder, reason) = inside else { Issue.record("\(inside)"); return }
        #expect(folder == readOnly)
        #expect(reason.contains(expectedReason), "\(reason)")
        #expect(inside.description.contains("give a folder that this user can write"))
    }

    @Test func holderTextRoundTripsAndPartialTextIsNoHolder() {
        let holder = CheckpointDirectoryLock.Holder(processID: 42, host: "node-7", started: "2026-01-02T03:04:05Z")
        #expect(CheckpointDirectoryLock.Holder(text: holder.text) == holder)
        #expect(CheckpointDirectoryLock.Holder(text: "pid 42\nhost node-7\n") == nil)
        #expect(CheckpointDirectoryLock.Holder(text: "") == nil)
    }
}

/// An empty tmpfs mounted read-only for one test.
struct ReadOnlyFileSystem {
    let path: String

    init(at path: String) throws {
        guard mount("tmpfs", path, "tmpfs", UInt(MS_RDONLY), "size=64k") == 0 else {
            throw FileError.writeFailed(file: path, reason: "mount tmpfs read-only: \(String(cString: strerror(errno)))")
        }
        self.path = path
    }

    func unmount() {
        umount2(path, 0)
    }

    /// Whether this process may mount a tmpfs (root, outside a restricted container).
    static let canMount: Bool = {
        let probe = FileManager.default.temporaryDirectory.path + "/scvae-ro-probe-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard let disk = try? ReadOnlyFileSystem(at: probe) else { return false }
        disk.unmount()
        return true
    }()
}
