import Foundation
import Launch
import Testing

@Suite struct CgroupQuotaTests {
    @Test func cpuMaxIsQuotaOverPeriodAndMaxIsNoLimit() {
        #expect(CgroupQuota.cpus(cpuMax: "max 100000\n") == nil)
        #expect(CgroupQuota.cpus(cpuMax: "200000 100000\n") == 2)
        #expect(CgroupQuota.cpus(cpuMax: "150000 100000") == 1.5)
        #expect(CPUAllowance(affinity: Array(0..<8), online: 8, quota: CgroupQuota.cpus(cpuMax: "150000 100000")).usable == 2)
        #expect(CgroupQuota.cpus(cpuMax: "") == nil)
        #expect(CgroupQuota.cpus(cpuMax: "lots 100000") == nil)
        #expect(CgroupQuota.cpus(cpuMax: "100000 0") == nil)
    }

    @Test func cgroupV1QuotaOfMinusOneIsNoLimit() {
        #expect(CgroupQuota.cpus(cfsQuota: "-1\n", cfsPeriod: "100000\n") == nil)
        #expect(CgroupQuota.cpus(cfsQuota: "50000\n", cfsPeriod: "100000\n") == 0.5)
    }

    @Test func procSelfCgroupNamesTheV2AndV1CPUPaths() {
        let v2 = CgroupQuota.paths(procSelfCgroup: "0::/kubepods/pod1/abc\n")
        #expect(v2.v2 == "/kubepods/pod1/abc" && v2.v1 == nil)
        let v1 = CgroupQuota.paths(procSelfCgroup: "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n")
        #expect(v1.v2 == nil && v1.v1 == "/docker/abc")
    }

    @Test func theSmallestQuotaFromTheCgroupUpToTheRootCounts() {
        let files = [
            "/proc/self/cgroup": "0::/outer/inner\n",
            "/sys/fs/cgroup/outer/inner/cpu.max": "max 100000\n",
            "/sys/fs/cgroup/outer/cpu.max": "300000 100000\n",
            "/sys/fs/cgroup/cpu.max": "max 100000\n",
        ]
        #expect(CgroupQuota.read(using: { files[$0] }) == 3)
        #expect(CgroupQuota.folders(mount: "/m", path: "/a/b") == ["/m/a/b", "/m/a", "/m"])
        #expect(CgroupQuota.read(using: { $0 == "/proc/self/cgroup" ? "0::/\n" : nil }) == nil)
        let v1 = ["/proc/self/cgroup": "2:cpu,cpuacct:/job\n",
                  "/sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us": "250000\n",
                  "/sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us": "100000\n"]
        #expect(CgroupQuota.read(using: { v1[$0] }) == 2.5)
    }

    @Test func thisProcessHasAnAffinityMaskWithinTheOnlineCPUs() throws {
        let mask = try #require(Affinity.ofCallingThread())
        #expect(!mask.isEmpty && mask == mask.sorted())
        let current = CPUAllowance.current()
        #expect(current.affinity == mask && current.usable >= 1 && current.usable <= mask.count)
    }

    @Test func aChildStartedWithCPUsIsPinnedToThemAndTheSpawningThreadIsNot() throws {
        let mask = try #require(Affinity.ofCallingThread())
        let output = NSTemporaryDirectory() + "scvae-affinity-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let chosen = mask[mask.count - 1]
        let process = try ChildLauncher.start("/bin/sh", arguments: ["-c", "grep Cpus_allowed_list /proc/self/status > \(output)"],
                                              environment: [:], cpus: [chosen])
        process.waitUntilExit()
        #expect(ChildLauncher.exit(of: process) == .exited(0))
        #expect(Affinity.ofCallingThread() == mask, "the spawning thread gets its own mask back")
        let line = try String(contentsOfFile: output, encoding: .utf8)
        #expect(line.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) == "\(chosen)", "\(line)")
    }
}

@Suite struct CPUSlicesTests {
    @Test func slicesAreContiguousAndDifferByAtMostOne() {
        #expect(cpuSlices(of: Array(0..<8), ranks: 2) == [[0, 1, 2, 3], [4, 5, 6, 7]])
        #expect(cpuSlices(of: Array(0..<5), ranks: 2) == [[0, 1, 2], [3, 4]])
        #expect(cpuSlices(of: [2, 3, 8, 9], ranks: 4) == [[2], [3], [8], [9]])
        #expect(cpuSlices(of: [0, 1], ranks: 3) == [[0], [1], [0]], "more ranks than CPUs share")
        #expect(cpuSlices(of: [0, 1], ranks: 0) == [])
    }

    @Test func rankLayoutsShareTheThreadsUnlessGivenPerRank() {
        let shared = RankLayout.plan(baseID: "n1", count: 2, threadsPerRank: nil, processThreads: 8, cpus: Array(0..<8))
        #expect(shared == [RankLayout(id: "n1-0", threads: 4, cpus: [0, 1, 2, 3]), RankLayout(id: "n1-1", threads: 4, cpus: [4, 5, 6, 7])])
        let given = RankLayout.plan(baseID: "n1", count: 3, threadsPerRank: 1, processThreads: 8, cpus: [0, 1])
        #expect(given.map(\.threads) == [1, 1, 1] && given.map(\.id) == ["n1-0", "n1-1", "n1-2"])
        #expect(RankLayout.plan(baseID: "b", count: 4, threadsPerRank: nil, processThreads: 2, cpus: [0, 1]).allSatisfy { $0.threads == 1 })
        #expect(cpuList([0, 1, 2, 3, 8, 10, 11]) == "0-3,8,10-11")
    }

    @Test func theSupervisorsOwnOptionsAreRemovedFromTheChildCommandLine() {
        let raw = ["--nproc-per-node", "2", "--threads=1", "--cache-dir", "/c", "--worker-id", "w", "--coordinator=tcp://h:1", "--insecure"]
        #expect(removingOptions(["--nproc-per-node", "--threads", "--worker-id", "--coordinator"], from: raw) == ["--cache-dir", "/c", "--insecure"])
        #expect(removingOptions(["--threads"], from: ["--data", "--threads-dir", "--", "--threads", "1"]) == ["--data", "--threads-dir", "--", "--threads", "1"])
    }
}
