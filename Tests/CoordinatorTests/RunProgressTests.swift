import Foundation
import Testing
import Wire
@testable import Coordinator

@Suite struct RunProgressTests {
    static func recipe(total: Int = 10, every: Int = 5) -> TrainingRecipe {
        var settings = CoordinatorSettings()
        settings.checksumEvery = every
        return TrainingRecipe(settings: settings, totalSteps: total)
    }

    static func report(rank: Int, step: Int, loss: Double = 1, checksum: UInt32 = 7, compute: Double = 0.5,
                       samples: UInt32 = 4) -> StepReport {
        StepReport(rank: UInt32(rank), epoch: 0, step: UInt64(step),
                   lossTerms: [LossTerm(name: "loss", value: loss), LossTerm(name: "recon", value: 0.75),
                               LossTerm(name: "latent", value: 0.25), LossTerm(name: "sparsity", value: 0.5),
                               LossTerm(name: "lr", value: 1e-3), LossTerm(name: "applied", value: 1)],
                   goodSamples: samples, imagesPerSecond: 8,
                   timings: StepTimings(dataSeconds: 0.1, computeSeconds: compute, allReduceSeconds: 0.2),
                   parameterChecksum: checksum)
    }

    @Test func aStepCompletesWhenEveryRankReportedIt() throws {
        var progress = RunProgress(worldSize: 2, recipe: Self.recipe())
        #expect(progress.report(rank: 0, Self.report(rank: 0, step: 1, compute: 0.5)).isEmpty)
        let events = progress.report(rank: 1, Self.report(rank: 1, step: 1, compute: 0.9, samples: 3))
        guard case let .stepCompleted(summary)? = events.first else { Issue.record("\(events)"); return }
        #expect(summary.step == 1 && summary.loss == 1 && summary.recon == 0.75 && summary.sparsity == 0.5)
        #expect(summary.samples == 7, "good samples add up over ranks")
        #expect(summary.computeSeconds == 0.9, "the slowest rank sets the pace")
        #expect(abs(summary.stepSeconds - 1.2) < 1e-12)
        #expect(abs(summary.imagesPerSecond - 7 / 1.2) < 1e-9)
        #expect(progress.lastCompletedStep == 1)
        #expect(progress.report(rank: 0, Self.report(rank: 0, step: 1)).isEmpty, "a late duplicate is ignored")
    }

    @Test func checksumsAreComparedAtTheStartAtTheRecipesStepsAndAtTheEnd() {
        var progress = RunProgress(worldSize: 3, recipe: Self.recipe(total: 10, every: 5))
        _ = progress.status(rank: 0, lastAppliedStep: 0, epoch: 0, checksum: 1)
        _ = progress.status(rank: 1, lastAppliedStep: 0, epoch: 0, checksum: 1)
        #expect(progress.status(rank: 2, lastAppliedStep: 0, epoch: 0, checksum: 1) == [.replicasAgree(step: 0, checksum: 1)])
        // Step 4 is not a checksum step: differing (unset) checksums are not compared.
        for rank in 0..<3 { _ = progress.report(rank: rank, Self.report(rank: rank, step: 4, checksum: UInt32(rank))) }
        var events: [RunProgress.Event] = []
        for rank in 0..<3 { events += progress.report(rank: rank, Self.report(rank: rank, step: 5, checksum: rank == 2 ? 9 : 8)) }
        #expect(events.contains(.checksumMismatch(step: 5, checksums: [0: 8, 1: 8, 2: 9])))
        let sentence = RunProgress.Event.describeMismatch(step: 5, checksums: [0: 8, 1: 8, 2: 9])
        #expect(sentence.contains("after step 5") && sentence.contains("rank 2 0x9") && sentence.contains("ranks 2 differ from rank 0"))
    }

    @Test func theRunFinishesWhenEveryRankStoppedAtTheSameStepWithTheSameParameters() {
        var progress = RunProgress(worldSize: 2, recipe: Self.recipe())
        for rank in 0..<2 { _ = progress.status(rank: rank, lastAppliedStep: 0, epoch: 0, checksum: 3) }
        #expect(progress.status(rank: 0, lastAppliedStep: 10, epoch: 1, checksum: 4).isEmpty)
        #expect(progress.status(rank: 1, lastAppliedStep: 10, epoch: 1, checksum: 4) == [.finished(step: 10, epoch: 1, checksum: 4)])

        var split = RunProgress(worldSize: 2, recipe: Self.recipe())
        for rank in 0..<2 { _ = split.status(rank: rank, lastAppliedStep: 0, epoch: 0, checksum: 3) }
        _ = split.status(rank: 0, lastAppliedStep: 6, epoch: 0, checksum: 4)
        #expect(split.status(rank: 1, lastAppliedStep: 7, epoch: 0, checksum: 4) == [.finalStepsDiffer(steps: [0: 6, 1: 7])])

        var diverged = RunProgress(worldSize: 2, recipe: Self.recipe())
        _ = diverged.status(rank: 0, lastAppliedStep: 0, epoch: 0, checksum: 3)
        #expect(diverged.status(rank: 1, lastAppliedStep: 0, epoch: 0, checksum: 5) == [.checksumMismatch(step: 0, checksums: [0: 3, 1: 5])])
    }

    @Test func progressLinesAndMetricsCarryWhatUsersExpect() throws {
        var progress = RunProgress(worldSize: 1, recipe: Self.recipe())
        guard case let .stepCompleted(summary)? = progress.report(rank: 0, Self.report(rank: 0, step: 3)).first else {
            Issue.record("no summary"); return
        }
        let line = ProgressFormat.line(summary, totalSteps: 10, etaSeconds: 75, ringTransport: "shm")
        for part in ["step 3/10", "epoch 0", "loss 1.0000", "sparsity 0.500", "img/s", "data 0.100 s", "compute 0.500 s",
                     "all-reduce 0.200 s", "over shm", "ETA 1:15"] {
            #expect(line.contains(part), "'\(part)' in: \(line)")
        }
        let data = try JSONEncoder().encode(StepMetrics(summary, elapsedSeconds: 2, ringTransport: "tcp"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["step"] as? Int == 3 && object["epoch"] as? Int == 0 && object["loss"] as? Double == 1.0)
        #expect(object["images_per_s"] is Double && object["ring_transport"] as? String == "tcp")
        var broken = summary
        broken.loss = .nan
        let nan = String(decoding: try JSONEncoder().encode(StepMetrics(broken, elapsedSeconds: 2, ringTransport: "tcp")), as: UTF8.self)
        #expect(nan.contains("\"loss\":null"), "JSON has no NaN: \(nan)")
        #expect(ProgressFormat.clock(3725) == "1:02:05")
    }

    @Test func theRecipeIsTheJSONObjectWorkersDecode() throws {
        var settings = CoordinatorSettings()
        settings.optimizer = "sgd"
        settings.learningRate = 0.005
        let recipe = TrainingRecipe(settings: settings, totalSteps: 12)
        let json = recipe.json
        #expect(try TrainingRecipe.decode(json) == recipe)
        for key in ["\"learningRate\":0.005", "\"optimizer\":\"sgd\"", "\"totalSteps\":12", "\"checksumEvery\":10",
                    "\"microBatch\":16", "\"schedule\":\"constant\"", "\"warmupSteps\":0", "\"exactReduction\":false"] {
            #expect(json.contains(key), "\(key) in \(json)")
        }
    }

    @Test func refusalsNameBothProtocolVersions() {
        let (reason, detail) = RunController.describe(Membership.Refusal.protocolVersionMismatch(worker: 0, coordinator: 2))
        #expect(reason == .protocolVersionMismatch)
        #expect(detail.contains("protocol version 0") && detail.contains("version 2"))
    }

    @Test func portZeroBindsAnEphemeralPort() {
        var settings = CoordinatorSettings()
        settings.listen = "tcp://127.0.0.1:0"
        #expect(settings.bindEndpoint == "tcp://127.0.0.1:*")
        settings.optimizer = "rmsprop"
        #expect(settings.problems().contains { $0.contains("--optimizer") })
    }
}
