import Dataset
import Foundation
import Testing

/// Bad input given by the person running the executables: each ends with a non-zero status and
/// one message that names the path or endpoint and says what to do, never a silent exit. In the
/// serialized process suite.
extension ProcessTests {
    /// A folder of `count` images copied from the suite's small data set (plus `extra` setup).
    static func imageFolder(_ name: String, count: Int = 4) throws -> String {
        let source = try smallDataset()
        let folder = try Scratch.folder(name)
        let images = try FileManager.default.subpathsOfDirectory(atPath: source).filter(DatasetIndex.isImageName).sorted()
        try FileManager.default.createDirectory(atPath: "\(folder)/images/a", withIntermediateDirectories: true)
        for image in images.prefix(count) {
            let name = (image as NSString).lastPathComponent
            try FileManager.default.copyItem(atPath: "\(source)/\(image)", toPath: "\(folder)/images/a/\(name)")
        }
        return folder
    }

    /// A coordinator that exits before training (no workers are started), with its output.
    static func failingCoordinator(_ arguments: [String], folder: String, log: String) throws -> (status: Int32?, output: String) {
        let run = try ChildProcess("scvae-coordinator", ["--listen", "tcp://127.0.0.1:0", "--cache-dir", "\(folder)/cache"] + arguments,
                                   log: "\(folder)/\(log)")
        return (run.waitForExit(seconds: 60), run.output)
    }

    /// Whether `unprivilegedCoordinator` can run: root reads and writes whatever the mode bits say.
    static let canRunUnprivileged = getuid() != 0 || FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")

    /// Runs scvae-coordinator as a user that file permissions apply to: as root, as nobody
    /// through setpriv (the folder is opened to it); otherwise as this user.
    static func unprivilegedCoordinator(_ arguments: [String], folder: String, log: String) throws -> (status: Int32?, output: String) {
        let all = ["--listen", "tcp://127.0.0.1:0", "--cache-dir", "\(folder)/cache"] + arguments
        let run: ChildProcess
        if getuid() == 0 {
            chmod(folder, 0o777)
            run = try ChildProcess("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                         try Executables.path("scvae-coordinator")] + all,
                                   log: "\(folder)/\(log)", absolute: true)
        } else {
            run = try ChildProcess("scvae-coordinator", all, log: "\(folder)/\(log)")
        }
        return (run.waitForExit(seconds: 60), run.output)
    }

    @Test func aMissingFileOrEmptyDataFolderIsNamedByTheCoordinatorAndTheWorker() throws {
        let folder = try Scratch.folder("bad-data")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = "\(folder)/a-file.jpg"
        _ = FileManager.default.createFile(atPath: file, contents: Data([1, 2, 3]))
        let empty = "\(folder)/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: "\(empty)/readme.txt", contents: Data([1]))
        let cases = [("\(folder)/missing", "\(folder)/missing does not exist"),
                     (file, "\(file) is a file, not a folder"),
                     (empty, "\(empty) holds no .jpg, .jpeg or .png files")]
        for (index, (data, said)) in cases.enumerated() {
            let coordinator = try Self.failingCoordinator(["--data", data, "--checkpoint-dir", "\(folder)/run"],
                                                          folder: folder, log: "coordinator-\(index).log")
            #expect(coordinator.status == 1, "\(coordinator.output.suffix(2000))")
            #expect(coordinator.output.contains("error") && coordinator.output.contains("--data \(data): cannot index the dataset: \(said)"),
                    "\(coordinator.output.suffix(2000))")
            #expect(coordinator.output.contains("give the folder that holds the images"))

            let worker = try ChildProcess("scvae-worker", ["--coordinator", "tcp://127.0.0.1:1", "--threads", "1", "--data", data, "--cache-dir", "\(folder)/cache",
                                                           "--reconnect-timeout", "\(Deadline.seconds(30))"],
                                          log: "\(folder)/worker-\(index).log")
            let status = worker.waitForExit(seconds: 60)
            #expect(status == 1, "\(worker.output.suffix(2000))")
            #expect(worker.output.contains("cannot index the dataset: \(said)"), "\(worker.output.suffix(2000))")
        }
    }

    @Test func aListenPortThatIsInvalidOrTakenIsNamedWithWhatToDo() throws {
        let folder = try Self.imageFolder("bad-listen")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let invalid = try ChildProcess("scvae-coordinator", ["--listen", "tcp://127.0.0.1:70000", "--data", "\(folder)/images"],
                                       log: "\(folder)/invalid.log")
        let invalidStatus = invalid.waitForExit(seconds: 60)
        #expect(invalidStatus != nil && invalidStatus != 0)
        #expect(invalid.output.contains("--listen tcp://127.0.0.1:70000: the port must be a number from 0 to 65535"), "\(invalid.output)")

        // A port some other program listens on.
        let taken = try ListeningSocket()
        let busy = try Self.failingCoordinator(["--listen", "tcp://127.0.0.1:\(taken.port)", "--data", "\(folder)/images",
                                                "--global-batch", "4", "--checkpoint-dir", "\(folder)/run"],
                                               folder: folder, log: "busy.log")
        #expect(busy.status == 1, "\(busy.output.suffix(2000))")
        #expect(busy.output.contains("cannot bind tcp://127.0.0.1:\(taken.port)") && busy.output.contains("Address already in use"),
                "\(busy.output.suffix(2000))")
        #expect(busy.output.contains("choose another port (port 0 picks a free one)"))

        let worker = try ChildProcess("scvae-worker", ["--coordinator", "tcp://127.0.0.1:99999"], log: "\(folder)/worker.log")
        let workerStatus = worker.waitForExit(seconds: 60)
        #expect(workerStatus != nil && workerStatus != 0)
        #expect(worker.output.contains("--coordinator tcp://127.0.0.1:99999: the port must be a number from 1 to 65535"), "\(worker.output)")
    }

    @Test(.enabled(if: ProcessTests.canRunUnprivileged, "needs setpriv to run as another user than root"))
    func anUnreadableSubfolderOfTheDataIsNamed() throws {
        let folder = try Self.imageFolder("unreadable-data")
        defer {
            chmod("\(folder)/images/b", 0o755)
            try? FileManager.default.removeItem(atPath: folder)
        }
        try FileManager.default.createDirectory(atPath: "\(folder)/images/b", withIntermediateDirectories: true)
        chmod("\(folder)/images/b", 0)
        let run = try Self.unprivilegedCoordinator(["--data", "\(folder)/images", "--global-batch", "4", "--checkpoint-dir", "\(folder)/run"],
                                                   folder: folder, log: "coordinator.log")
        #expect(run.status == 1, "\(run.output.suffix(2000))")
        #expect(run.output.contains("cannot list the folder ") && run.output.contains("/images/b: Permission denied"), "\(run.output.suffix(2000))")
        #expect(run.output.contains("make it readable (chmod) or move it out of the dataset"))
    }

    @Test(.enabled(if: ProcessTests.canRunUnprivileged, "needs setpriv to run as another user than root"))
    func aCheckpointFolderThatCannotBeWrittenIsRefusedBeforeTraining() throws {
        let folder = try Self.imageFolder("read-only-run")
        let readOnly = "\(folder)/read-only"
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        chmod(readOnly, 0o555)
        defer {
            chmod(readOnly, 0o755)
            try? FileManager.default.removeItem(atPath: folder)
        }
        let data = ["--data", "\(folder)/images", "--global-batch", "4", "--workers", "1"]
        let below = try Self.unprivilegedCoordinator(data + ["--checkpoint-dir", "\(readOnly)/run"], folder: folder, log: "below.log")
        #expect(below.status == 1, "\(below.output.suffix(2000))")
        #expect(below.output.contains("--checkpoint-dir: cannot create the folder \(readOnly)/run") && below.output.contains("Permission denied"),
                "\(below.output.suffix(2000))")
        #expect(!below.output.contains("listening on"), "refused before the control socket, let alone training")

        let inside = try Self.unprivilegedCoordinator(data + ["--checkpoint-dir", readOnly], folder: folder, log: "inside.log")
        #expect(inside.status == 1, "\(inside.output.suffix(2000))")
        #expect(inside.output.contains("--checkpoint-dir: cannot write in the folder \(readOnly)"), "\(inside.output.suffix(2000))")
        #expect(inside.output.contains("give a folder that this user can write"))
    }

    @Test func aSecondCoordinatorOnTheSameCheckpointFolderIsRefusedAndRemovesNothing() throws {
        let folder = try Self.imageFolder("two-coordinators")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let data = ["--data", "\(folder)/images", "--global-batch", "4", "--workers", "1"]
        let first = try Self.coordinator(data + ["--rendezvous-timeout", "\(Deadline.seconds(300))"], folder: folder,
                                         log: "first.log", local: false)
        #expect(first.waitForOutput("listening on", seconds: 60), "\(first.output.suffix(2000))")
        // What the first one could be writing right now; a second one must not remove it.
        let writing = "\(folder)/.step-00000003.tmp-\(first.process.processIdentifier)"
        try FileManager.default.createDirectory(atPath: writing, withIntermediateDirectories: true)

        let second = try Self.coordinator(data, folder: folder, log: "second.log", local: false)
        let status = second.waitForExit(seconds: 60)
        #expect(status == 1, "\(second.output.suffix(2000))")
        #expect(second.output.contains("--checkpoint-dir \(folder) is in use by another coordinator (pid \(first.process.processIdentifier) on host "),
                "\(second.output.suffix(2000))")
        #expect(second.output.contains("stop that run first, or give this one another --checkpoint-dir"))
        #expect(!second.output.contains("removed an incomplete checkpoint"))
        #expect(FileManager.default.fileExists(atPath: writing), "the first coordinator's temporary is untouched")

        // The kernel frees the folder of a coordinator that dies: the next one takes it and tidies up.
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        let third = try Self.coordinator(data + ["--steps", "1"], folder: folder, log: "third.log")
        let thirdStatus = third.waitForExit(seconds: 240)
        #expect(thirdStatus == 0, "\(third.output.suffix(3000))")
        #expect(third.output.contains("removed an incomplete checkpoint left by a crash: \(writing)"))
    }

    @Test func namesThatAreNotUTF8AreLeftOutWithOneWarning() throws {
        let folder = try Self.imageFolder("latin1-names")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let images = "\(folder)/images/a"
        let first = try #require(try FileManager.default.contentsOfDirectory(atPath: images).sorted().first)
        // "café.JPEG" in Latin-1: rename(2) takes the name's bytes.
        let latin1 = Array("\(images)/caf".utf8) + [0xE9] + Array(".JPEG".utf8) + [0]
        let renamed = latin1.withUnsafeBufferPointer { name in
            name.withMemoryRebound(to: CChar.self) { rename("\(images)/\(first)", $0.baseAddress!) }
        }
        #expect(renamed == 0)
        // A checkpoint folder that is a file stops the run right after the dataset is indexed.
        let blocker = "\(folder)/not-a-folder"
        _ = FileManager.default.createFile(atPath: blocker, contents: Data([1]))
        let run = try Self.failingCoordinator(["--data", "\(folder)/images", "--global-batch", "2", "--checkpoint-dir", blocker],
                                              folder: folder, log: "coordinator.log")
        #expect(run.status == 1)
        #expect(run.output.contains("3 images"), "\(run.output.suffix(2000))")
        #expect(run.output.components(separatedBy: "not valid UTF-8").count == 2, "warned once:\n\(run.output.suffix(2000))")
        #expect(run.output.contains("1 file or folder in ") && run.output.contains("a/caf\\xE9.JPEG"), "\(run.output.suffix(2000))")
        #expect(run.output.contains("Rename them to UTF-8"))
        #expect(run.output.contains("--checkpoint-dir: cannot create the folder \(blocker)"), "\(run.output.suffix(2000))")
    }

    /// `nice -n 5 scvae-coordinator --local`: the coordinator's and its workers' main threads (what
    /// `ps -o ni` shows) and their ZeroMQ I/O threads run at the niceness given.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/nice"), "needs nice(1)"))
    func localWorkersRunAtTheCoordinatorsNiceness() throws {
        let folder = try Self.imageFolder("nice", count: 8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let expected = min(19, (ThreadNiceness.of(pid: getpid()).first?.nice ?? 0) + 5)
        let run = try ChildProcess("/usr/bin/nice", ["-n", "5", try Executables.path("scvae-coordinator"),
                                                     "--listen", "tcp://127.0.0.1:0", "--cache-dir", "\(folder)/cache",
                                                     "--data", "\(folder)/images", "--checkpoint-dir", "\(folder)/run",
                                                     "--workers", "2", "--global-batch", "4", "--steps", "100000",
                                                     "--checkpoint-every", "0", "--local", "--worker-threads", "1"],
                                   log: "\(folder)/coordinator.log", absolute: true)
        #expect(run.waitForOutput("step 2/100000", seconds: 120), "\(run.output.suffix(3000))")
        let coordinator = run.process.processIdentifier
        let workers = ThreadNiceness.children(of: coordinator)
        #expect(workers.count == 2, "two --local workers: \(workers)")
        for pid in [coordinator] + workers {
            let threads = ThreadNiceness.of(pid: pid)
            #expect(threads.first { $0.tid == pid }?.nice == expected, "pid \(pid) (ps -o ni): \(threads)")
            let zmq = threads.filter { $0.name.hasPrefix("ZMQbg") }
            #expect(!zmq.isEmpty && zmq.allSatisfy { $0.nice == expected }, "pid \(pid) ZeroMQ threads: \(threads)")
        }
        kill(coordinator, SIGINT)
        let status = run.waitForExit(seconds: 120)
        #expect(status == 75, "stopped early\n\(run.output.suffix(3000))")
    }
}

/// Niceness of threads, read from /proc (Linux).
enum ThreadNiceness {
    struct Task: CustomStringConvertible {
        let tid: Int32
        let name: String
        let nice: Int32
        var description: String { "\(tid) \(name) ni \(nice)" }
    }

    /// The fields of /proc/.../stat after the parenthesised name, and the name.
    static func stat(_ path: String) -> (name: String, fields: [Substring])? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
        return (String(text[text.index(after: open)..<close]), text[text.index(after: close)...].split(separator: " "))
    }

    /// Every thread of `pid`, main thread first.
    static func of(pid: Int32) -> [Task] {
        let tasks = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).compactMap { Int32($0) }.sorted()
        return tasks.compactMap { tid in
            // After the name: state, ppid, ..., priority (16th), nice (17th).
            guard let (name, fields) = stat("/proc/\(pid)/task/\(tid)/stat"), fields.count > 16, let nice = Int32(fields[16]) else { return nil }
            return Task(tid: tid, name: name, nice: nice)
        }
    }

    /// The processes whose parent is `pid`.
    static func children(of pid: Int32) -> [Int32] {
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
        return all.filter { child in
            guard let (_, fields) = stat("/proc/\(child)/stat"), fields.count > 1 else { return false }
            return Int32(fields[1]) == pid
        }.sorted()
    }
}

/// A TCP port on 127.0.0.1 held by a plain listening socket, as another program would.
final class ListeningSocket {
    let descriptor: Int32
    let port: UInt16

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard descriptor >= 0, bound == 0, listen(descriptor, 1) == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(descriptor) }
}
