import Foundation

/// The niceness given to the process (`nice -n N scvae-coordinator`), for the threads that do its
/// work. On Linux niceness belongs to each thread, and a new thread or process starts with the
/// niceness of the thread that creates it. libdispatch sets its pool threads' niceness from
/// their QoS (measured: 0, and -4 for overcommit ones, under `nice -n 7` run as root), so a
/// thread made from the cooperative pool, and any process it spawns, would lose the user's.
public enum ProcessPriority {
    /// The process's niceness: its main thread's, which `ps -o ni` shows.
    public static var processNice: Int32? { nice(of: id_t(getpid())) }

    /// The calling thread's niceness.
    public static var threadNice: Int32? { nice(of: 0) }

    /// Gives the calling thread the process's niceness; false when it cannot (lowering the
    /// niceness needs privileges, so a thread above it without them stays where it is).
    @discardableResult
    public static func adoptOnThisThread() -> Bool {
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
