import CommandOptions
import Launch
import Testing

/// The environment contract of docs/launching.md, rule by rule, with no machine behind it.
@Suite struct WorkerLaunchDefaultsTests {
    static let eightOfThirtyTwo = CPUAllowance(affinity: Array(0..<8), online: 32, quota: nil)

    static func resolve(_ environment: [String: String], threads: Int? = nil, coordinator: String? = nil, workerID: String? = nil,
                        cpus: CPUAllowance = eightOfThirtyTwo) throws(LaunchEnvironmentError) -> WorkerLaunchDefaults {
        try WorkerLaunchDefaults.resolve(threads: threads, coordinator: coordinator, workerID: workerID, environment: environment,
                                         cpus: cpus, host: "node7", pid: 4242)
    }

    static func error(_ environment: [String: String]) -> LaunchEnvironmentError? {
        do {
            _ = try resolve(environment)
            return nil
        } catch {
            return error
        }
    }

    @Test func withNothingSetTheDefaultsAreTheCPUsTheLoopbackCoordinatorAndHostPID() throws {
        let defaults = try Self.resolve([:])
        #expect(defaults.threads == Resolved(8, from: "the affinity mask, 8 of 32 CPUs"))
        #expect(defaults.coordinator == Resolved("tcp://127.0.0.1:5555", from: "the default"))
        #expect(defaults.workerID == Resolved("node7-4242", from: "host name and process id"))
        #expect(defaults.logLine == "threads 8 (from the affinity mask, 8 of 32 CPUs), coordinator tcp://127.0.0.1:5555 (from the default), worker id node7-4242 (from host name and process id)")
    }

    @Test func threadsComeFromOMPThenOpenBLASThenSlurmThenTheCPUs() throws {
        let all = ["OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "5", "SLURM_CPUS_PER_TASK": "6"]
        #expect(try Self.resolve(all).threads == Resolved(3, from: "OMP_NUM_THREADS"))
        #expect(try Self.resolve(all.filter { $0.key != "OMP_NUM_THREADS" }).threads == Resolved(5, from: "OPENBLAS_NUM_THREADS"))
        #expect(try Self.resolve(["SLURM_CPUS_PER_TASK": "6"]).threads == Resolved(6, from: "SLURM_CPUS_PER_TASK"))
        #expect(try Self.resolve(["OMP_NUM_THREADS": ""]).threads.value == 8, "an empty variable is unset")
    }

    @Test func theThreadsFlagWinsOverEveryVariable() throws {
        let defaults = try Self.resolve(["OMP_NUM_THREADS": "3", "SLURM_CPUS_PER_TASK": "6"], threads: 2)
        #expect(defaults.threads == Resolved(2, from: "--threads"))
        // Even over a malformed one: the flag is what the person meant.
        #expect(try Self.resolve(["OMP_NUM_THREADS": "abc"], threads: 2).threads.value == 2)
    }

    @Test func aMalformedThreadCountIsAnErrorNamingTheVariable() {
        #expect(Self.error(["OMP_NUM_THREADS": "abc"]) == .notACount(variable: "OMP_NUM_THREADS", value: "abc", minimum: 1))
        #expect(Self.error(["OMP_NUM_THREADS": "0"]) == .notACount(variable: "OMP_NUM_THREADS", value: "0", minimum: 1))
        #expect(Self.error(["OPENBLAS_NUM_THREADS": "-2"]) == .notACount(variable: "OPENBLAS_NUM_THREADS", value: "-2", minimum: 1))
        #expect(Self.error(["SLURM_CPUS_PER_TASK": "4(x2)"]) == .notACount(variable: "SLURM_CPUS_PER_TASK", value: "4(x2)", minimum: 1))
        let message = LaunchEnvironmentError.notACount(variable: "OMP_NUM_THREADS", value: "abc", minimum: 1).description
        #expect(message.contains("OMP_NUM_THREADS=abc") && message.contains("command line"), "\(message)")
    }

    @Test func theCPUsAreTheAffinityMaskCappedByTheQuotaRoundedUp() throws {
        let quota = CPUAllowance(affinity: Array(0..<8), online: 32, quota: 1.5)
        #expect(try Self.resolve([:], cpus: quota).threads == Resolved(2, from: "the cgroup CPU quota 1.50 (affinity mask: 8 of 32 CPUs)"))
        let generous = CPUAllowance(affinity: [2, 3], online: 4, quota: 16)
        #expect(try Self.resolve([:], cpus: generous).threads == Resolved(2, from: "the affinity mask, 2 of 4 CPUs"))
        let tiny = CPUAllowance(affinity: Array(0..<4), online: 4, quota: 0.1)
        #expect(tiny.usable == 1)
        #expect(CPUAllowance(affinity: [], online: 4, quota: nil).usable == 1, "at least one")
    }

    @Test func theCoordinatorComesFromSCVAECoordinatorThenMasterAddrAndPort() throws {
        let both = ["SCVAE_COORDINATOR": "tcp://head:6000", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"]
        #expect(try Self.resolve(both).coordinator == Resolved("tcp://head:6000", from: "SCVAE_COORDINATOR"))
        #expect(try Self.resolve(both.filter { $0.key != "SCVAE_COORDINATOR" }).coordinator
                == Resolved("tcp://10.0.0.1:29500", from: "MASTER_ADDR and MASTER_PORT"))
        #expect(try Self.resolve(["MASTER_ADDR": "head"]).coordinator == Resolved("tcp://head:5555", from: "MASTER_ADDR, port 5555"))
        #expect(try Self.resolve(["MASTER_ADDR": "fd00::1"]).coordinator.value == "tcp://[fd00::1]:5555")
        #expect(try Self.resolve(both, coordinator: "tcp://flag:7000").coordinator == Resolved("tcp://flag:7000", from: "--coordinator"))
    }

    @Test func aBadCoordinatorVariableIsAnErrorNamingIt() {
        #expect(Self.error(["MASTER_PORT": "29500"]) == .portWithoutAddress(port: "29500"))
        #expect(Self.error(["MASTER_ADDR": "head", "MASTER_PORT": "http"]) == .notAPort(variable: "MASTER_PORT", value: "http"))
        #expect(Self.error(["MASTER_ADDR": "head", "MASTER_PORT": "70000"]) == .notAPort(variable: "MASTER_PORT", value: "70000"))
        #expect(Self.error(["SCVAE_COORDINATOR": "head:5555"]) == .notAnEndpoint(variable: "SCVAE_COORDINATOR", value: "head:5555"))
        #expect(Self.error(["SCVAE_COORDINATOR": "tcp://head"]) == .notAnEndpoint(variable: "SCVAE_COORDINATOR", value: "tcp://head"))
        #expect(LaunchEnvironmentError.portWithoutAddress(port: "29500").description.contains("set MASTER_ADDR"))
    }

    @Test func theWorkerIDComesFromSlurmProcIDThenPodName() throws {
        let both = ["SLURM_PROCID": "3", "POD_NAME": "scvae-worker-2"]
        #expect(try Self.resolve(both).workerID == Resolved("node7-task3", from: "SLURM_PROCID"))
        #expect(try Self.resolve(["POD_NAME": "scvae-worker-2"]).workerID == Resolved("scvae-worker-2", from: "POD_NAME"))
        #expect(try Self.resolve(both, workerID: "mine").workerID == Resolved("mine", from: "--worker-id"))
        #expect(try Self.resolve(["SLURM_PROCID": "0"]).workerID.value == "node7-task0")
        #expect(Self.error(["SLURM_PROCID": "x"]) == .notACount(variable: "SLURM_PROCID", value: "x", minimum: 0))
    }
}

@Suite struct CoordinatorLaunchDefaultsTests {
    static func resolve(_ environment: [String: String], workers: Int? = nil, listen: String? = nil) throws -> CoordinatorLaunchDefaults {
        try CoordinatorLaunchDefaults.resolve(workers: workers, listen: listen, environment: environment)
    }

    @Test func withNothingSetTheDefaultsAreTwoWorkersOnLoopback() throws {
        let defaults = try Self.resolve([:])
        #expect(defaults.workers == Resolved(2, from: "the default"))
        #expect(defaults.listen == Resolved("tcp://127.0.0.1:5555", from: "the default"))
        #expect(defaults.logLine == "workers 2 (from the default), listen tcp://127.0.0.1:5555 (from the default)")
    }

    @Test func workersComeFromWorldSizeThenSlurmNTasksAndTheFlagWins() throws {
        #expect(try Self.resolve(["WORLD_SIZE": "8", "SLURM_NTASKS": "4"]).workers == Resolved(8, from: "WORLD_SIZE"))
        #expect(try Self.resolve(["SLURM_NTASKS": "4"]).workers == Resolved(4, from: "SLURM_NTASKS"))
        #expect(try Self.resolve(["WORLD_SIZE": "8"], workers: 3).workers == Resolved(3, from: "--workers"))
        #expect(throws: LaunchEnvironmentError.notACount(variable: "WORLD_SIZE", value: "0", minimum: 1)) { try Self.resolve(["WORLD_SIZE": "0"]) }
        #expect(throws: LaunchEnvironmentError.notACount(variable: "SLURM_NTASKS", value: "two", minimum: 1)) { try Self.resolve(["SLURM_NTASKS": "two"]) }
    }

    @Test func listenComesFromSCVAEListenThenMasterPortOnEveryInterface() throws {
        let both = ["SCVAE_LISTEN": "tcp://10.0.0.1:6000", "MASTER_PORT": "29500"]
        #expect(try Self.resolve(both).listen == Resolved("tcp://10.0.0.1:6000", from: "SCVAE_LISTEN"))
        #expect(try Self.resolve(["MASTER_PORT": "29500"]).listen == Resolved("tcp://0.0.0.0:29500", from: "MASTER_PORT"))
        #expect(try Self.resolve(both, listen: "tcp://127.0.0.1:0").listen == Resolved("tcp://127.0.0.1:0", from: "--listen"))
        #expect(throws: LaunchEnvironmentError.notAPort(variable: "MASTER_PORT", value: "x")) { try Self.resolve(["MASTER_PORT": "x"]) }
        #expect(throws: LaunchEnvironmentError.notAnEndpoint(variable: "SCVAE_LISTEN", value: "0.0.0.0:5555")) {
            try Self.resolve(["SCVAE_LISTEN": "0.0.0.0:5555"])
        }
    }
}
