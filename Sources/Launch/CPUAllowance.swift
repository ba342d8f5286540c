import CAffinity
import Foundation

/// The CPUs this process may use: its affinity mask (taskset, Slurm's binding, a cpuset),
/// capped by the CPU quota of its cgroup (a container's `--cpus`, a Kubernetes CPU limit).
/// A value, so that the rule (`usable`) and the log line are tested without a machine.
public struct CPUAllowance: Sendable, Equatable {
    /// The CPUs of the affinity mask, ascending.
    public var affinity: [Int]
    /// CPUs the operating system has online (`ProcessInfo.processorCount`).
    public var online: Int
    /// The cgroup quota in CPUs (1.5 for "150000 100000"); nil when there is none.
    public var quota: Double?

    public init(affinity: [Int], online: Int, quota: Double?) {
        self.affinity = affinity
        self.online = online
        self.quota = quota
    }

    /// How many CPUs' worth of threads to run: the affinity mask capped by the quota rounded up,
    /// at least 1.
    public var usable: Int {
        var count = max(affinity.count, 1)
        if let quota, quota > 0 { count = min(count, Int(quota.rounded(.up))) }
        return max(count, 1)
    }

    /// Where `usable` comes from, for the start-up log: "the affinity mask, 8 of 32 CPUs", or
    /// "the cgroup CPU quota 1.5 (affinity mask: 8 of 32 CPUs)".
    public var explanation: String {
        let mask = "\(affinity.count) of \(online) CPUs"
        if let quota, quota > 0, Int(quota.rounded(.up)) < affinity.count {
            return "the cgroup CPU quota \(Self.format(quota)) (affinity mask: \(mask))"
        }
        return "the affinity mask, \(mask)"
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.2f", value)
    }

    /// This process's allowance, read from the kernel: sched_getaffinity and the cgroup files
    /// under /sys/fs/cgroup of the cgroup /proc/self/cgroup names.
    public static func current() -> CPUAllowance {
        let online = ProcessInfo.processInfo.processorCount
        let mask = Affinity.ofCallingThread() ?? Array(0..<online)
        let read = { (path: String) in try? String(contentsOfFile: path, encoding: .utf8) }
        return CPUAllowance(affinity: mask, online: online, quota: CgroupQuota.read(using: read))
    }
}

/// The CPU quota of a cgroup: v2's `cpu.max`, v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us`.
/// The parsers take file contents, so they are tested as strings.
public enum CgroupQuota {
    /// The cgroup paths in the contents of /proc/self/cgroup: v2's ("0::/PATH") and v1's cpu
    /// controller's ("N:cpu,cpuacct:/PATH"), when present.
    public static func paths(procSelfCgroup text: String) -> (v2: String?, v1: String?) {
        var v2: String?, v1: String?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty { v2 = String(fields[2]) }
            if fields[1].split(separator: ",").contains("cpu") { v1 = String(fields[2]) }
        }
        return (v2, v1)
    }

    /// CPUs allowed by a v2 `cpu.max` ("QUOTA PERIOD" in microseconds): nil for "max" (no limit)
    /// or contents that are not two positive numbers.
    public static func cpus(cpuMax text: String) -> Double? {
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, fields[0] != "max", let quota = Double(fields[0]), let period = Double(fields[1]),
              quota > 0, period > 0 else { return nil }
        return quota / period
    }

    /// CPUs allowed by v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us`: nil for a quota of -1
    /// (no limit) or contents that are not numbers.
    public static func cpus(cfsQuota quotaText: String, cfsPeriod periodText: String) -> Double? {
        guard let quota = Double(quotaText.trimmingCharacters(in: .whitespacesAndNewlines)),
              let period = Double(periodText.trimmingCharacters(in: .whitespacesAndNewlines)),
              quota > 0, period > 0 else { return nil }
        return quota / period
    }

    /// The folders from `path` up to the root of a cgroup hierarchy mounted at `mount`: a limit
    /// set on an enclosing cgroup holds for the ones inside it.
    public static func folders(mount: String, path: String) -> [String] {
        var parts = path.split(separator: "/").map(String.init)
        var folders: [String] = []
        while true {
            folders.append(([mount] + parts).joined(separator: "/"))
            if parts.isEmpty { return folders }
            parts.removeLast()
        }
    }

    /// The smallest quota on the way from this process's cgroup to the root (v2, else v1), read
    /// through `read` (a path's contents, nil when it cannot be read).
    public static func read(using read: (String) -> String?) -> Double? {
        guard let cgroup = read("/proc/self/cgroup") else { return nil }
        let (v2, v1) = paths(procSelfCgroup: cgroup)
        var quotas: [Double] = []
        if let v2 {
            quotas += folders(mount: "/sys/fs/cgroup", path: v2).compactMap { read("\($0)/cpu.max").flatMap(cpus(cpuMax:)) }
        }
        if quotas.isEmpty, let v1 {
            for mount in ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"] {
                quotas += folders(mount: mount, path: v1).compactMap { folder in
                    guard let quota = read("\(folder)/cpu.cfs_quota_us"), let period = read("\(folder)/cpu.cfs_period_us") else { return nil }
                    return cpus(cfsQuota: quota, cfsPeriod: period)
                }
                if !quotas.isEmpty { break }
            }
        }
        return quotas.min()
    }
}

/// The calling thread's CPU affinity (Linux), which the threads and processes it creates inherit.
public enum Affinity {
    /// The CPUs of the calling thread's mask; nil where it cannot be read.
    public static func ofCallingThread() -> [Int]? {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = cpus.withUnsafeMutableBufferPointer { scvae_affinity_cpus($0.baseAddress, Int32($0.count)) }
        guard count > 0 else { return nil }
        return cpus.prefix(min(Int(count), cpus.count)).map(Int.init)
    }

    /// Restricts the calling thread to `cpus`; false when the kernel refuses.
    @discardableResult
    public static func pinCallingThread(to cpus: [Int]) -> Bool {
        let numbers = cpus.map(Int32.init)
        return numbers.withUnsafeBufferPointer { scvae_affinity_pin($0.baseAddress, Int32($0.count)) } == 0
    }
}

/// Contiguous slices of a CPU list, one per rank, sizes differing by at most one. With more
/// ranks than CPUs, ranks share: rank i gets CPU i mod count.
public func cpuSlices(of cpus: [Int], ranks: Int) -> [[Int]] {
    guard ranks > 0 else { return [] }
    guard !cpus.isEmpty else { return Array(repeating: [], count: ranks) }
    guard ranks <= cpus.count else { return (0..<ranks).map { [cpus[$0 % cpus.count]] } }
    let base = cpus.count / ranks, extra = cpus.count % ranks
    var slices: [[Int]] = []
    var start = 0
    for rank in 0..<ranks {
        let size = base + (rank < extra ? 1 : 0)
        slices.append(Array(cpus[start..<start + size]))
        start += size
    }
    return slices
}
