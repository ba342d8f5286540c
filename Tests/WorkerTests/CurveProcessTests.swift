import Foundation
import Testing

/// CURVE with the real executables: keys from `scvae keygen`, a coordinator that admits only
/// the listed workers' keys. In the serialized process suite.
extension ProcessTests {
    /// Keys for the coordinator and `names`, laid out as --curve-keys expects: the coordinator's
    /// folder holds its secret and the admitted `*.key`; each worker's its secret and coordinator.key.
    static func curveFolders(in folder: String, workers names: [String], admitted: Set<String>) throws {
        let all = "\(folder)/all"
        for name in ["coordinator"] + names {
            let keygen = try ChildProcess("scvae", ["keygen", "--out", all, "--name", name], log: "\(folder)/keygen-\(name).log")
            #expect(keygen.waitForExit(seconds: 30) == 0, "\(keygen.output)")
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(folder)/coordinator", withIntermediateDirectories: true)
        try fm.copyItem(atPath: "\(all)/coordinator.key_secret", toPath: "\(folder)/coordinator/coordinator.key_secret")
        for name in names {
            if admitted.contains(name) { try fm.copyItem(atPath: "\(all)/\(name).key", toPath: "\(folder)/coordinator/\(name).key") }
            try fm.createDirectory(atPath: "\(folder)/\(name)", withIntermediateDirectories: true)
            try fm.copyItem(atPath: "\(all)/\(name).key_secret", toPath: "\(folder)/\(name)/\(name).key_secret")
            try fm.copyItem(atPath: "\(all)/coordinator.key", toPath: "\(folder)/\(name)/coordinator.key")
        }
    }

    @Test func withCurveOnlyListedWorkersJoinAndOthersAreRefusedWhileTheRunGoesOn() throws {
        let folder = try Scratch.folder("curve")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.curveFolders(in: folder, workers: ["good0", "good1", "stranger"], admitted: ["good0", "good1"])
        let cluster = Cluster(folder: folder, coordinatorArguments: [
            "--workers", "2", "--steps", "4", "--global-batch", "4", "--config", "tiny", "--checkpoint-every", "0",
            "--curve-keys", "\(folder)/coordinator"])
        try cluster.startCoordinator()
        // A stranger with its own (unlisted) key, and a plain-text worker: neither gets in.
        try cluster.startWorker("stranger", extra: ["--curve-keys", "\(folder)/stranger", "--reconnect-timeout", "\(Deadline.seconds(4))"])
        try cluster.startWorker("plain", extra: ["--reconnect-timeout", "\(Deadline.seconds(4))"])
        let stranger = try #require(cluster.workers["stranger"]), plain = try #require(cluster.workers["plain"])
        let strangerStatus = stranger.waitForExit(seconds: 60), plainStatus = plain.waitForExit(seconds: 60)
        #expect(strangerStatus != nil && strangerStatus != 0, "\(stranger.output.suffix(1500))")
        #expect(plainStatus != nil && plainStatus != 0, "\(plain.output.suffix(1500))")
        #expect(cluster.coordinator?.process.isRunning == true, "the run goes on")
        let refusals = cluster.coordinator?.output ?? ""
        #expect(refusals.contains("refused a connection") && refusals.contains("127.0.0.1") && refusals.contains("key not admitted"),
                "the refusal is logged with the address:\n\(refusals.suffix(3000))")
        #expect(!refusals.contains("admitted worker stranger") && !refusals.contains("admitted worker plain"))

        for name in ["good0", "good1"] { try cluster.startWorker(name, extra: ["--curve-keys", "\(folder)/\(name)"]) }
        #expect(cluster.coordinator?.waitForExit(seconds: 240) == 0, "\(cluster.logs())")
        #expect(FileManager.default.fileExists(atPath: "\(folder)/run/final/model.safetensors"))
    }

    @Test func aCoordinatorReachableFromOtherMachinesNeedsCurveOrInsecure() throws {
        let folder = try Scratch.folder("insecure")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let refused = try ChildProcess("scvae-coordinator", ["--workers", "1", "--listen", "tcp://0.0.0.0:0"], log: "\(folder)/refused.log")
        #expect(refused.waitForExit(seconds: 30) != 0)
        #expect(refused.output.contains("--insecure") && refused.output.contains("--curve-keys"), "\(refused.output)")
    }
}
