
import Foundation
import Testing
import Wire
import Worker

/// Failures that overlap or come from careless users and hostile peers, with real processes on
/// 127.0.0.1 (the decisions themselves are covered without sockets in RunControllerTests and
/// WorkerProtocolTests). In the serialized process suite.
extension ProcessTests {
    /// The process's resident memory in KiB, from /proc.
    static func residentKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    /// SIGSTOP of the only worker for longer than the liveness deadline: it is declared down and
    /// training pauses; after SIGCONT it rejoins and the run continues from its own replica, not
    /// from the seed (the work it holds is never thrown away).
    @Test func theOnlyWorkerStoppedPastTheDeadlineContinuesFromItsOwnReplica() throws {
        let data = try Self.smallDataset()
        let folder = try Scratch.folder("stopped-worker")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cluster = Cluster(folder: folder, coordinatorArguments: [
            "--workers", "1", "--global-batch", "6", "--steps", "40", "--checkpoint-every", "0", "--config", "tiny",
            "--data", data, "--log-every", "1", "--metrics", "\(folder)/metrics.jsonl"])
        try cluster.startCoordinator()
        try cluster.startWorker("w0", extra: ["--data", data])
        #expect(cluster.wait(seconds: 240) { cluster.completedStep >= 3 }, "\(cluster.logs())")
        let worker = try #require(cluster.workers["w0"])
        kill(worker.process.processIdentifier, SIGSTOP)
        let declared = cluster.wait(seconds: 60) { cluster.coordinator?.output.contains("declared down") == true }
        let stoppedAt = cluster.completedStep
        kill(worker.process.processIdentifier, SIGCONT)
        #expect(declared, "\(cluster.logs())")
        #expect(cluster.coordinator?.waitForExit(seconds: 240) == 0, "\(cluster.logs())")
        let output = cluster.coordinator?.output ?? ""
        let resumed = output.firstMatch(of: /generation (\d+): 1 ranks 0=w0.*state from the most advanced replica \(step (\d+)\)/)
        let step = try #require(resumed.flatMap { Int($0.2) }, "no generation from the replica:\n\(output.suffix(4000))")
        #expect(step >= stoppedAt, "continued from step \(step), the worker held \(stoppedAt)")
        #expect(output.components(separatedBy: "state from the seed").count == 2, "the seed starts generation 1 only:\n\(output.suffix(4000))")
        let order = try DataOrder(paths: [cluster.dataOrderLog("w0")])
        Self.expectEverySampleOncePerEpoch(order, steps: 40, stepsPerEpoch: 8, count: 48)
    }

    /// The short form of the seeded chaos soak (scripts/chaos/soak): 20 events of kill -9 and
    /// SIGSTOP of workers, groups and the coordinator (during checkpoint writes and state
    /// transfers too) against a hand-started run, which must finish by itself with verified
    /// checkpoints, no abort, no hang, and every sample used once per epoch.
    @Test func aShortChaosSoakEndsWithEveryCheckPassed() throws {
        let folder = try Scratch.folder("soak")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let binaries = try #require(Executables.directory)
        let soak = try ChildProcess("/usr/bin/env", ["python3", "\(package)/scripts/chaos/soak", "--events", "20", "--seed", "1",
                                                     "--quiet", "--bin", binaries, "--keep-logs", "\(folder)/work"],
                                    log: "\(folder)/soak.log", absolute: true)
        let status = soak.waitForExit(seconds: 1200)
        #expect(status == 0, "\(soak.output.suffix(6000))")
        #expect(soak.output.contains("soak seed 1: PASS") && soak.output.contains("events run        20 of 20"),
                "\(soak.output.suffix(3000))")
    }

    /// A dataset where no file decodes: the run stops with a message that says the data is
    /// unreadable (not "non-finite loss"), and the workers name the files.
    @Test func aDatasetOfUnreadableFilesEndsTheRunSayingSo() throws {
        let folder = try Scratch.folder("unreadable-data")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let data = "\(folder)/data/n0001"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        for i in 0..<16 {
            _ = FileManager.default.createFile(atPath: "\(data)/broken-\(i).JPEG", contents: Data((0..<200).map { UInt8(($0 * 7 + i) & 0xFF) }))
        }
        let run = try Self.coordinator(["--workers", "2", "--steps", "20", "--global-batch", "4", "--data", "\(folder)/data",
                                        "--checkpoint-every", "0"], folder: folder)
        let status = run.waitForExit(seconds: 240)
        #expect(status == 1, "\(run.output.suffix(3000))")
        #expect(run.output.contains("the data is unreadable") && !run.output.contains("non-finite loss"),
                "\(run.output.suffix(3000))")
        #expect(run.output.contains("broken-"), "the workers' warnings name the files:\n\(run.output.suffix(3000))")
    }

    /// A second worker process started with a live worker's id is refused (and keeps asking, in
    /// case the first one is a crashed predecessor); the live one is never evicted and the run
    /// never restarts.
    @Test func aSecondWorkerWithALiveWorkersIdIsRefusedAndTheRunGoesOn() throws {
        let data = try Self.smallDataset()
        let folder = try Scratch.folder("duplicate-id")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cluster = Cluster(folder: folder, coordinatorArguments: [
            "--workers", "2", "--global-batch", "6", "--steps", "60", "--checkpoint-every", "0", "--config", "tiny",
            "--data", data, "--metrics", "\(folder)/metrics.jsonl"])
        try cluster.startCoordinator()
        for id in ["a", "b"] { try cluster.startWorker(id, extra: ["--data", data]) }
        #expect(cluster.wait(seconds: 240) { cluster.completedStep >= 2 }, "\(cluster.logs())")
        let impostor = try ChildProcess("scvae-worker", ["--coordinator", cluster.endpoint, "--worker-id", "a", "--threads", "1",
                                                         "--cache-dir", Scratch.cache, "--data", data, "--reconnect-timeout", "600"],
                                        log: "\(folder)/impostor.log")
        #expect(impostor.waitForOutput("another live worker process uses this worker id", seconds: 60), "\(impostor.output.suffix(2000))")
        #expect(cluster.coordinator?.waitForExit(seconds: 240) == 0, "\(cluster.logs())")
        let output = cluster.coordinator?.output ?? ""
        #expect(!output.contains("generation 2"), "the live worker was never replaced:\n\(output.suffix(4000))")
        #expect(impostor.process.isRunning || impostor.process.terminationStatus == 0, "\(impostor.output.suffix(2000))")
        kill(impostor.process.processIdentifier, SIGKILL)
    }

    /// kill -9 of a --local coordinator: its workers end too (they belong to it), so the same
    /// command run again does not meet orphans under the same ids.
    @Test func theWorkersOfAKilledLocalCoordinatorEndWithIt() throws {
        let folder = try Scratch.folder("local-orphans")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try Self.coordinator(["--workers", "2", "--steps", "5000", "--global-batch", "4", "--checkpoint-every", "0"], folder: folder)
        #expect(run.waitForOutput("step 2/5000", seconds: 120), "\(run.output.suffix(3000))")
        let children = Self.children(of: run.process.processIdentifier)
        #expect(children.count == 2, "two local workers: \(children)")
        kill(run.process.processIdentifier, SIGKILL)
        run.process.waitUntilExit()
        let deadline = Date(timeIntervalSinceNow: Deadline.seconds(15))
        while children.contains(where: { kill($0, 0) == 0 && !Self.isZombie($0) }) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        let alive = children.filter { kill($0, 0) == 0 && !Self.isZombie($0) }
        #expect(alive.isEmpty, "workers \(alive) outlived their --local coordinator")
        for pid in alive { kill(pid, SIGKILL) }
    }

    static func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task -> [Int32] in
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    static func isZombie(_ pid: Int32) -> Bool {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    /// A peer that says its control frame is 4 GiB long and streams bytes: the coordinator drops
    /// the connection at the frame's header (ZMQ_MAXMSGSIZE) instead of buffering what comes, so
    /// its memory stays flat; the run it waits for is not disturbed.
    @Test func anOversizedControlFrameIsRefusedBeforeItIsBuffered() throws {
        let folder = try Scratch.folder("oversized")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try Self.coordinator(["--workers", "1", "--steps", "2", "--global-batch", "4"], folder: folder, local: false)
        let endpointFile = "\(folder)/endpoint"
        let deadline = Date(timeIntervalSinceNow: Deadline.seconds(60))
        while !FileManager.default.fileExists(atPath: endpointFile) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let endpoint = try String(contentsOfFile: endpointFile, encoding: .utf8)
        let port = try #require(endpoint.split(separator: ":").last.flatMap { UInt16($0) })
        let pid = run.process.processIdentifier
        let before = try #require(Self.residentKiB(pid))
        var sent = 0
        for _ in 0..<3 { sent += try ZMTPClient.streamOversizedFrame(port: port, declaring: 4 << 30, sending: 96 << 20) }
        Thread.sleep(forTimeInterval: 0.5)
        let after = try #require(Self.residentKiB(pid))
        #expect(after - before < 48 * 1024, "resident memory grew \(after - before) KiB after \(sent >> 20) MiB of an oversized frame")
        #expect(sent < 3 * (96 << 20), "the coordinator hung up before taking all \(3 * 96) MiB (took \(sent >> 20) MiB)")
        #expect(run.process.isRunning)
        let worker = try ChildProcess("scvae-worker", ["--coordinator", endpoint, "--worker-id", "w", "--threads", "1", "--cache-dir", Scratch.cache],
                                      log: "\(folder)/worker.log")
        #expect(run.waitForExit(seconds: 120) == 0, "\(run.output.suffix(3000))")
        #expect(worker.waitForExit(seconds: 30) == 0)
    }
}

/// Just enough of ZMTP 3.0 (the ZeroMQ wire protocol) to open a NULL-mechanism connection as a
/// DEALER and start a message frame that declares a huge size, then write bytes until the peer
/// hangs up or `sending` bytes are out. Returns the bytes the peer took.
enum ZMTPClient {
    static func streamOversizedFrame(port: UInt16, declaring size: UInt64, sending limit: Int) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var noSignal: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &noSignal, socklen_t(MemoryLayout<Int32>.size))
        // Greeting: signature, version 3.0, mechanism NULL, as-server 0, filler.
        var greeting: [UInt8] = [0xFF] + [UInt8](repeating: 0, count: 8) + [0x7F, 3, 0]
        greeting += Array("NULL".utf8) + [UInt8](repeating: 0, count: 16) + [0] + [UInt8](repeating: 0, count: 31)
        guard write(fd, greeting) else { return 0 }
        // READY command with Socket-Type DEALER.
        let property = [UInt8(11)] + Array("Socket-Type".utf8) + [0, 0, 0, 6] + Array("DEALER".utf8)
        let body = [UInt8(5)] + Array("READY".utf8) + property
        guard write(fd, [0x04, UInt8(body.count)] + body) else { return 0 }
        // A message frame (long size) that declares `size` bytes.
        var header: [UInt8] = [0x02]
        for shift in stride(from: 56, through: 0, by: -8) { header.append(UInt8((size >> UInt64(shift)) & 0xFF)) }
        guard write(fd, header) else { return 0 }
        let chunk = [UInt8](repeating: 0x5A, count: 1 << 20)
        var sent = 0
        while sent < limit {
            let count = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { break }
            sent += count
        }
        return sent
    }

    private static func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }
}
