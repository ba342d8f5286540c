#if canImport(Glibc)
import Glibc
#endif

/// Which processes can share a `SharedMemoryRing`: the same kernel (boot id), the same
/// `/dev/shm` file system (containers have their own unless they share the host's IPC
/// mount), the same process-id namespace (the stale-segment sweep and the segments' owner
/// checks compare process ids), the same user (segments are mode 0600) and the same network
/// namespace (the network-namespace test hosts of `cluster/netns` stand for separate machines,
/// and so does a container with a network of its own). A host name is not enough: containers
/// on one machine can share a name, or differ while sharing `/dev/shm`.
public enum SharedMemoryHost {
    /// The capability a worker's hello lists when it can join a shared-memory ring.
    public static let capability = "shm"

    /// This process's identity, e.g. `boot=6f1c…,shm=38/1,pidns=4026531836,netns=4026531840,uid=1000`; nil when a
    /// part cannot be read (no /proc, no /dev/shm): such a process only uses TCP.
    public static func current() -> String? {
        #if canImport(Glibc)
        guard let boot = firstLine(of: "/proc/sys/kernel/random/boot_id"), !boot.isEmpty else { return nil }
        var shm = stat()
        guard stat("/dev/shm", &shm) == 0, access("/dev/shm", W_OK) == 0 else { return nil }
        var pidNamespace = stat(), netNamespace = stat()
        guard stat("/proc/self/ns/pid", &pidNamespace) == 0, stat("/proc/self/ns/net", &netNamespace) == 0 else { return nil }
        let device = "\(shm.st_dev)/\(shm.st_ino)"
        return "boot=\(boot),shm=\(device),pidns=\(pidNamespace.st_ino),netns=\(netNamespace.st_ino),uid=\(getuid())"
        #else
        return nil
        #endif
    }

    #if canImport(Glibc)
    private static func firstLine(of path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.filter { !$0.isWhitespace }
    }
    #endif
}
