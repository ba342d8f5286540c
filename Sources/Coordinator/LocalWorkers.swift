import Foundation
import Launch
import Logging

/// The worker processes `--local` starts: the `scvae-worker` next to this executable, one per
/// rank, each with max(1, cores / N) BLAS threads and the coordinator's niceness (`nice -n 10
/// scvae-coordinator --local` runs the workers at 10 too) and its log level and format. Their
/// output goes to this terminal (each log line carries role and rank), or with --log-dir to one
/// file per worker, `DIR/<worker-id>.log`, appended to across replacements of that worker.
final class LocalWorkers {
    struct Child {
        let id: String
        let process: Process
    }

    private(set) var children: [Child] = []
    let logger: Logger
    private var launchSettings: (endpoint: String, settings: CoordinatorSettings, threads: Int)?
    /// Replacements started for workers that died (bounded by `maximumRespawns`).
    private(set) var respawns = 0

    init(logger: Logger) {
        self.logger = logger
    }

    /// The worker executable beside the running coordinator.
    static func workerExecutable() -> String {
        ((ChildLauncher.ownExecutable as NSString).deletingLastPathComponent as NSString).appendingPathComponent("scvae-worker")
    }

    func start(count: Int, endpoint: String, settings: CoordinatorSettings) throws {
        let executable = Self.workerExecutable()
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw CoordinatorFailure.workerExecutableMissing(path: executable)
        }
        let threads = settings.workerThreads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / count)
        launchSettings = (endpoint, settings, threads)
        if let folder = settings.localLogDirectory {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw CoordinatorFailure.cannotWrite(path: folder, reason: "cannot create the --log-dir folder: \(error)")
            }
        }
        for i in 0..<count { try launch(id: "local-\(i)") }
        let output = settings.localLogDirectory.map { ", output in \(Self.logPath(folder: $0, id: "<worker-id>"))" } ?? ""
        logger.info("started \(count) local workers (\(executable), \(threads) BLAS thread(s) each\(output))")
    }

    private func launch(id: String) throws {
        guard let (endpoint, settings, threads) = launchSettings else { return }
        let executable = Self.workerExecutable()
        var environment = ProcessInfo.processInfo.environment
        environment["SCVAE_LOCAL_CHILD"] = "1"
        // The worker ends with this process (it asks the kernel for a signal when its parent dies):
        // a --local run owns its workers, and a restarted coordinator starts its own.
        environment["SCVAE_LOCAL_PARENT"] = "\(getpid())"
        var arguments = ["--coordinator", endpoint, "--threads", "\(threads)", "--worker-id", id,
                         "--reconnect-timeout", "\(max(settings.rendezvousTimeout, 60))",
                         "--log-level", settings.logLevel.rawValue, "--log-format", settings.logFormat.rawValue]
        if let data = settings.dataPath { arguments += ["--data", data] }
        if let cache = settings.cacheDirectory { arguments += ["--cache-dir", cache] }
        let logFile = try settings.localLogDirectory.map { try Self.openForAppending(Self.logPath(folder: $0, id: id)) }
        let process: Process
        do {
            process = try ChildLauncher.start(executable, arguments: arguments, environment: environment, output: logFile)
        } catch {
            throw CoordinatorFailure.transport("cannot start \(executable): \(error)")
        }
        // The child holds its own copy of the descriptor.
        try? logFile?.close()
        children.removeAll { $0.id == id }
        children.append(Child(id: id, process: process))
    }

    /// The --log-dir file of worker `id`.
    static func logPath(folder: String, id: String) -> String {
        (folder as NSString).appendingPathComponent("\(id).log")
    }

    /// `path` opened for appending (created if missing): every write of the child lands at the
    /// end, after whatever an earlier worker of the same id wrote.
    private static func openForAppending(_ path: String) throws -> FileHandle {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CoordinatorFailure.cannotWrite(path: path, reason: "cannot open a --log-dir file: \(String(cString: strerror(errno)))")
        }
        return FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    }

    /// Starts a replacement for the dead worker `id` (same id: it joins as a new member).
    func respawn(id: String) throws {
        respawns += 1
        try launch(id: id)
        logger.notice("started a replacement for local worker \(id) (\(respawns) so far)")
    }

    /// The first child that has exited, with its status; each exit is reported once.
    func takeExited() -> (id: String, status: Int32)? {
        guard let index = children.firstIndex(where: { !$0.process.isRunning }) else { return nil }
        let child = children.remove(at: index)
        return (child.id, child.process.terminationStatus)
    }

    /// Waits up to `grace` for the children to exit on their own, then terminates the rest.
    func stop(grace: Duration) {
        let deadline = ContinuousClock.now + grace
        while children.contains(where: { $0.process.isRunning }) && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        for child in children where child.process.isRunning {
            logger.warning("local worker \(child.id) still running after \(grace); terminating it")
            child.process.terminate()
        }
        let hard = ContinuousClock.now + .seconds(5)
        while children.contains(where: { $0.process.isRunning }) && ContinuousClock.now < hard {
            Thread.sleep(forTimeInterval: 0.05)
        }
        for child in children where child.process.isRunning {
            kill(child.process.processIdentifier, SIGKILL)
        }
    }
}
