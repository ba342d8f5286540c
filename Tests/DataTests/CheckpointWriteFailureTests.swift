#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import TensorFiles
@testable import Checkpoints

/// A failed write is reported, removes its temporary and leaves earlier checkpoints intact.
@Suite struct CheckpointWriteFailureTests {
    @Test func aDirectoryThatIsARegularFile() throws {
        let directory = TemporaryDirectory()
        let path = directory.write([1, 2, 3], to: "checkpoints")
        let error = checkpointError { () throws(CheckpointError) in
            try CheckpointStore(directory: path).write(CheckpointSamples.checkpoint(step: 1))
        }
        guard case .writeFailed(path, let reason)? = error else {
            Issue.record("expected writeFailed of \(path), got \(String(describing: error))")
            return
        }
        #expect(reason.contains("mkdir"))
        #expect(try BinaryFile.read(path) == [1, 2, 3])
    }

    /// The rename into place fails (a regular file holds the name), after every file was written.
    @Test func aRenameThatFailsAfterTheFilesAreWritten() throws {
        let directory = TemporaryDirectory()
        let store = try CheckpointSamples.store(directory, steps: [1, 2])
        let blocker = directory.write([9], to: "step-00000003")
        let error = checkpointError { () throws(CheckpointError) in try store.write(CheckpointSamples.checkpoint(step: 3)) }
        guard case .writeFailed(blocker, let reason)? = error else {
            Issue.record("expected writeFailed of \(blocker), got \(String(describing: error))")
            return
        }
        #expect(reason.contains("rename"), "\(reason)")
        #expect(store.temporaryPaths().isEmpty)
        #expect(CheckpointSamples.names(in: directory.path) == ["step-00000001", "step-00000002", "step-00000003"])
        #expect(try CheckpointFile.load(directory.file("step-00000001")) == CheckpointSamples.checkpoint(step: 1))
        #expect(try CheckpointFile.load(directory.file("step-00000002")) == CheckpointSamples.checkpoint(step: 2))
    }

    /// A real full disk: a 256 KiB tmpfs holds one small checkpoint but not a 1 MiB one.
    @Test(.enabled(if: SmallFileSystem.canMount, "mounting a tmpfs needs root (CAP_SYS_ADMIN)"))
    func aFullDisk() throws {
        let directory = TemporaryDirectory()
        let disk = try SmallFileSystem(at: directory.file("disk"), bytes: 256 << 10)
        defer { disk.unmount() }
        let store = CheckpointStore(directory: disk.path + "/run")
        try store.write(CheckpointSamples.checkpoint(step: 1))

        var large = CheckpointSamples.checkpoint(step: 2)
        let floats = 1 << 18  // 1 MiB
        large.model[1] = NamedTensor(name: "Dict", shape: [1, floats], floats: [Float](repeating: 0.5, count: floats))
        large.optimizer = []
        let error = checkpointError { () throws(CheckpointError) in try store.write(large) }
        guard case .writeFailed(disk.path + "/run/step-00000002", let reason)? = error else {
            Issue.record("expected writeFailed of step 2, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("No space left on device"), "\(reason)")
        #expect(CheckpointSamples.names(in: store.directory) == ["step-00000001"], "no temporary left")
        #expect(store.loadNewestValid { Issue.record("unexpected warning: \($0)") } == CheckpointSamples.checkpoint(step: 1))

        try store.write(CheckpointSamples.checkpoint(step: 3))
        #expect(store.checkpointPaths() == [store.directory + "/step-00000001", store.directory + "/step-00000003"],
                "the space of the failed write was given back")
    }
}

/// A size-limited tmpfs mounted for one test.
struct SmallFileSystem {
    let path: String

    init(at path: String, bytes: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(bytes)") == 0 else {
            throw FileError.writeFailed(file: path, reason: "mount tmpfs: \(String(cString: strerror(errno)))")
        }
        self.path = path
    }

    func unmount() {
        umount2(path, 0)
    }

    /// Whether this process may mount a tmpfs (it must be root, outside a restricted container).
    static let canMount: Bool = {
        let probe = FileManager.default.temporaryDirectory.path + "/scvae-mount-probe-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard let disk = try? SmallFileSystem(at: probe, bytes: 64 << 10) else { return false }
        disk.unmount()
        return true
    }()
}
