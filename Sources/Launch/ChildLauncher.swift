import Foundation

/// Starts the child processes of `scvae-coordinator --local` and `scvae-worker --nproc-per-node`.
public enum ChildLauncher {
    /// Starts `executable` at this process's niceness (see `ProcessPriority`), pinned to `cpus`
    /// when given: the child inherits the mask of the thread that spawns it, so this thread takes
    /// the child's mask for the spawn and gets its own back after. With `output`, the child's
    /// standard output and error go there.
    public static func start(_ executable: String, arguments: [String], environment: [String: String],
                             cpus: [Int]? = nil, output: FileHandle? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        if let output {
            process.standardOutput = output
            process.standardError = output
        }
        ProcessPriority.adoptOnThisThread()
        var restore: [Int]?
        if let cpus, !cpus.isEmpty, let own = Affinity.ofCallingThread(), own != cpus, Affinity.pinCallingThread(to: cpus) {
            restore = own
        }
        defer { if let restore { Affinity.pinCallingThread(to: restore) } }
        try process.run()
        return process
    }

    /// How a process that is no longer running ended.
    public static func exit(of process: Process) -> ChildExit {
        process.terminationReason == .uncaughtSignal ? .signalled(process.terminationStatus) : .exited(process.terminationStatus)
    }

    /// The executable of the running process (/proc/self/exe), else argv[0].
    public static var ownExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
