import Dataset
import Foundation
import Model
import Testing
import Worker

/// cluster/slurm/train.sbatch submitted to a real Slurm: a one-node cluster started by
/// cluster/slurm/local-cluster.sh (Debian's slurmctld, slurmd and munge, as root), two tasks of
/// one CPU each, the tiny configuration on the built-in sample data. In the serialized process
/// suite; skipped, with the reason, where the cluster cannot run.
extension ProcessTests {
    /// Starts a cluster in a fresh folder, runs `body` with it and the environment of a job
    /// (executables, run folder, sample data), then cancels what is left, stops the daemons and
    /// removes the folder, whatever happened. Cancels the test, with the script's output, when
    /// the cluster cannot start here.
    static func withLocalSlurm(_ name: String, _ body: (LocalSlurm, [String: String]) throws -> Void) throws {
        let bin = try #require(Executables.directory)
        let folder = try Scratch.folder(name)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The jobs' $XDG_CACHE_HOME/scvae is the suite's data cache: the sample set is made once.
        _ = try SampleData.ensure(at: Scratch.cache)
        try FileManager.default.createDirectory(atPath: "\(folder)/cache", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/cache/scvae", withDestinationPath: Scratch.cache)

        let slurm = LocalSlurm(folder: folder)
        defer { slurm.stop() }
        if let failure = slurm.start() { try Test.cancel("no one-node Slurm cluster here: \(failure)") }
        try body(slurm, ["SCVAE_BIN": bin, "SCVAE_RUN_DIR": "\(folder)/run", "SCVAE_CHECKPOINT_EVERY": "2",
                         "XDG_CACHE_HOME": "\(folder)/cache"])
    }

    /// sbatch options of every job here: two workers of one CPU, the log in the test's folder.
    static func sbatchArguments(_ slurm: LocalSlurm, wait: Bool, steps: Int) -> [String] {
        ["sbatch", "--parsable"] + (wait ? ["--wait"] : [])
            + ["--chdir=\(slurm.folder)", "--output=\(slurm.folder)/job-%j.out", "--ntasks=2", "--cpus-per-task=1",
               "\(LocalSlurm.package)/cluster/slurm/train.sbatch",
               "--config", "tiny", "--steps", "\(steps)", "--global-batch", "8", "--log-every", "1"]
    }

    /// The job id sbatch --parsable printed (its first line that is a number).
    static func jobID(_ output: String) -> String? {
        output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    /// `scvae checkpoint verify` of the run folder passes and picks step `last`; the final weights are of step `last`.
    static func expectVerifiedCheckpoints(_ folder: String, last: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let verify = try ChildProcess("scvae", ["checkpoint", "verify", "\(folder)/run"], log: "\(folder)/verify.log")
        let status = verify.waitForExit(seconds: 60)
        let newest = String(format: "step-%08d", last)
        #expect(status == 0, "scvae checkpoint verify:\n\(verify.output)", sourceLocation: sourceLocation)
        #expect(verify.output.contains("OK      \(folder)/run/\(newest)"), "\(verify.output)", sourceLocation: sourceLocation)
        #expect(verify.output.contains("a resume would use: \(folder)/run/\(newest)"), "\(verify.output)", sourceLocation: sourceLocation)
        let weights = try WeightsFile.load("\(folder)/run/final/model.safetensors", layout: ParameterLayout(config: .tiny))
        #expect(weights.metadata["step"] == "\(last)" && weights.metadata["config"] == "tiny", "\(weights.metadata)",
                sourceLocation: sourceLocation)
        #expect(weights.unknownNames.isEmpty, sourceLocation: sourceLocation)
    }

    @Test(.disabled(if: LocalSlurm.unavailableReason != nil, Comment(rawValue: LocalSlurm.unavailableReason ?? "")))
    func aJobSubmittedToSlurmTrainsWithOneWorkerPerTaskToItsLastStepAndLeavesVerifiedCheckpoints() throws {
        try Self.withLocalSlurm("slurm-job") { slurm, job in
            let submit = slurm.run(Self.sbatchArguments(slurm, wait: true, steps: 6), seconds: 300, environment: job)
            let id = try #require(Self.jobID(submit.output), "sbatch printed no job id:\n\(submit.output)\n\(slurm.daemonLogs())")
            let log = (try? String(contentsOfFile: "\(slurm.folder)/job-\(id).out", encoding: .utf8)) ?? ""
            #expect(submit.status == 0, "sbatch --wait exited with \(submit.status.map(String.init) ?? "nothing (killed at the deadline)"):\n\(submit.output)\n\(log.suffix(4000))")

            let record = slurm.job(id)
            #expect(record["JobState"] == "COMPLETED" && record["ExitCode"] == "0:0" && record["Restarts"] == "0", "\(record)")
            #expect(record["NumTasks"] == "2", "\(record)")
            // One worker per task, named after its host and task (SLURM_PROCID), finding the
            // coordinator from MASTER_ADDR and MASTER_PORT, each a rank of the run.
            #expect(log.contains("workers 2 (from SLURM_NTASKS)"), "\(log.suffix(4000))")
            for task in 0..<2 {
                #expect(log.contains("-task\(task): coordinator tcp://"), "\(log.suffix(4000))")
                #expect(log.contains("threads 1 (from SLURM_CPUS_PER_TASK)"), "\(log.suffix(4000))")
                #expect(log.contains("rank \(task) of 2, ring over tcp: tiny"), "\(log.suffix(4000))")
            }
            #expect(log.contains("(restart 0)") && !log.contains("(restart 1)"), "\(log.suffix(4000))")
            #expect(log.contains("step 6/6 epoch 0"), "\(log.suffix(4000))")
            #expect(log.contains("summary: 6/6 steps in") && !log.contains("stopped early"), "\(log.suffix(4000))")
            try Self.expectVerifiedCheckpoints(slurm.folder, last: 6)
        }
    }

    /// What the time-limit warning (`#SBATCH --signal=B:TERM@120`) does, sent by hand: the batch
    /// script alone gets SIGTERM, the coordinator saves at the next step boundary, the script
    /// requeues the job, and the job's second run resumes from that checkpoint and finishes.
    @Test(.disabled(if: LocalSlurm.unavailableReason != nil, Comment(rawValue: LocalSlurm.unavailableReason ?? "")))
    func aSlurmJobSignalledMidRunIsRequeuedByItsScriptAndResumesFromItsCheckpointToTheEnd() throws {
        try Self.withLocalSlurm("slurm-requeue") { slurm, job in
            let steps = 40
            let submit = slurm.run(Self.sbatchArguments(slurm, wait: false, steps: steps), seconds: 60, environment: job)
            let id = try #require(Self.jobID(submit.output), "sbatch printed no job id:\n\(submit.output)\n\(slurm.daemonLogs())")
            let logPath = "\(slurm.folder)/job-\(id).out"
            func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

            // Mid-run: once the first checkpoint (step 2 of 40) is on disk.
            let firstCheckpoint = "\(slurm.folder)/run/step-00000002/state.json"
            let deadline = Date(timeIntervalSinceNow: Deadline.seconds(300))
            while !FileManager.default.fileExists(atPath: firstCheckpoint) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            try #require(FileManager.default.fileExists(atPath: firstCheckpoint),
                         "no checkpoint of step 2: \(slurm.job(id))\n\(log().suffix(4000))\n\(slurm.daemonLogs())")
            let signal = slurm.run(["scancel", "--signal=TERM", "--batch", id], seconds: 30)
            #expect(signal.status == 0, "scancel --signal=TERM --batch:\n\(signal.output)")

            // The script requeues the job; Slurm holds a requeued job for about two minutes
            // (its BeginTime). Moved to a few seconds from now, so the suite does not wait for it:
            // not to now, because slurmd refuses a launch whose credential dates from the same
            // second as the previous run's revoked one ("Job credential revoked").
            let requeued = slurm.waitForJob(id, seconds: 300) { ($0["Restarts"].flatMap(Int.init) ?? 0) >= 1 }
            try #require(requeued["Restarts"] == "1", "the job was not requeued: \(requeued)\n\(log().suffix(4000))")
            if requeued["JobState"] == "PENDING" {
                _ = slurm.run(["scontrol", "update", "JobId=\(id)", "StartTime=now+3"], seconds: 30)
            }
            let record = slurm.waitForJob(id, seconds: 400) { LocalSlurm.finalStates.contains($0["JobState"] ?? "") }
            let text = log()
            #expect(record["JobState"] == "COMPLETED" && record["ExitCode"] == "0:0" && record["Restarts"] == "1",
                    "\(record)\n\(text.suffix(5000))\n\(slurm.daemonLogs())")

            // First run: stopped early at a step boundary after the signal, saved and requeued.
            #expect(text.contains("(restart 0)") && text.contains("(restart 1)"), "\(text.suffix(4000))")
            #expect(text.contains("SIGTERM (time limit near): checkpointing, then requeueing job \(id)"), "\(text.suffix(4000))")
            #expect(text.contains("requeueing job \(id); it resumes from the newest checkpoint"), "\(text.suffix(4000))")
            let stopped = text.firstMatch(of: /summary: (\d+)\/40 steps \(stopped early\)/).flatMap { Int($0.1) }
            let stoppedStep = try #require(stopped, "the first run did not stop early:\n\(text.suffix(4000))")
            #expect((2..<steps).contains(stoppedStep), "stopped at step \(stoppedStep)")
            // Second run: from the checkpoint of the step the first one stopped at, to the end.
            #expect(text.contains("resuming from the checkpoint of step \(stoppedStep) "), "\(text.suffix(4000))")
            let resumedWorkers = text.components(separatedBy: "from step \(stoppedStep) (epoch 0 step \(stoppedStep)), \(steps - stoppedStep) steps to go").count - 1
            #expect(resumedWorkers == 2, "both workers continue from the checkpoint:\n\(text.suffix(4000))")
            #expect(text.contains("summary: \(steps)/\(steps) steps in"), "\(text.suffix(4000))")
            try Self.expectVerifiedCheckpoints(slurm.folder, last: steps)
        }
    }
}
