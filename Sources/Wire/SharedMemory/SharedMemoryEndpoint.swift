#if canImport(Glibc)
import Glibc

/// Endpoints of the shared-memory ring: `shm://NAME`, where NAME is the POSIX shared-memory
/// object (`/dev/shm/NAME`) of the rank that binds it: its inbox.
public enum SharedMemoryEndpoint {
    public static let scheme = "shm://"
    /// Every segment this code creates starts with it (what the stale-segment sweep looks at).
    public static let namePrefix = "scvae-"

    /// The endpoint of `rank`'s inbox in `generation` of run `runID`. Both neighbours can
    /// derive it from the assignment, and a new generation never meets an old segment.
    public static func endpoint(runID: UInt64, generation: UInt64, rank: Int) -> String {
        "\(scheme)\(namePrefix)\(String(runID, radix: 16))-g\(generation)-r\(rank)"
    }

    /// NAME of `shm://NAME`; nil unless the endpoint has that scheme and NAME is 1 to 200 of
    /// `[A-Za-z0-9._-]` (no slash: the object lives in /dev/shm itself).
    public static func name(of endpoint: String) -> String? {
        guard endpoint.hasPrefix(scheme) else { return nil }
        let name = endpoint.dropFirst(scheme.count)
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) ||
                byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
        guard allowed, !name.isEmpty, name.utf8.count <= 200, name != ".", name != ".." else { return nil }
        return String(name)
    }

    /// Removes inbox segments named `namePrefix*` whose creating process no longer exists: left
    /// behind when a rank was killed (`kill -9`) after creating its inbox and before its
    /// previous rank attached (attaching removes the name). Segments of live processes and
    /// segments that are not inboxes of this format are left alone. Returns the names removed.
    @discardableResult
    public static func removeStaleSegments(prefix: String = namePrefix) -> [String] {
        guard let directory = opendir("/dev/shm") else { return [] }
        defer { closedir(directory) }
        var removed: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix(prefix), let owner = ownerPID(ofSegment: name), !isProcessAlive(owner) else { continue }
            SharedMemorySegment.unlink(name: name)
            removed.append(name)
        }
        return removed.sorted()
    }

    /// The creator's process id recorded in the inbox segment `name`; nil if it is not one.
    static func ownerPID(ofSegment name: String) -> Int32? {
        guard let segment = try? SharedMemorySegment.open(name: name, minimumSize: InboxLayout.controlBytes, writable: false),
              case let .success((_, identity))? = Inbox.read(segment.base, size: segment.size) else { return nil }
        return identity.ownerPID
    }

    /// False only when the process is known to be gone (ESRCH); a process of another user
    /// (EPERM) counts as alive.
    static func isProcessAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno != ESRCH
    }
}
#endif
