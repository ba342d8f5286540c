import Foundation
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
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return ((me as NSString).deletingLastPathComponent as NSString).appendingPathComponent("scvae-worker")
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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        let logFile = try settings.localLogDirectory.map { try Self.openForAppending(Self.logPath(folder: $0, id: id)) }
        if let logFile {
            process.standardOutput = logFile
            process.standardError = logFile
        }
        // A child starts at the niceness of the thread that spawns it (see ProcessPriority).
        ProcessPriority.adoptOnThisThread()
        do {
            try process.run()
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

/// The niceness given to the process (`nice -n N scvae-coordinator`), for the threads that do its
/// work. On Linux niceness belongs to each thread, and a new thread or process starts with the
/// niceness of the thread that creates it. libdispatch sets its pool threads' niceness from
/// their QoS (measured: 0, and -4 for overcommit ones, under `nice -n 7` run as root), so a
/// thread made from the cooperative pool, and any process it spawns, would lose the user's.
enum ProcessPriority {
    /// The process's niceness: its main thread's, which `ps -o ni` shows.
    static var processNice: Int32? { nice(of: id_t(getpid())) }

    /// The calling thread's niceness.
    static var threadNice: Int32? { nice(of: 0) }

    /// Gives the calling thread the process's niceness; false when it cannot (lowering the
    /// niceness needs privileges, so a thread above it without them stays where it is).
    @discardableResult
    static func adoptOnThisThread() -> Bool {
        guard let target = processNice, let current = threadNice else { return false }
        if target == current { return true }
        #if os(Linux)
        return setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, target) == 0
        #else
        return setpriority(PRIO_PROCESS, 0, target) == 0
        #endif
    }

    /// `who` 0 is the calling thread on Linux; a process id is that process's main thread.
    private static func nice(of who: id_t) -> Int32? {
        errno = 0
        #if os(Linux)
        let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), who)
        #else
        let value = getpriority(PRIO_PROCESS, who)
        #endif
        return value == -1 && errno != 0 ? nil : value
    }
}
