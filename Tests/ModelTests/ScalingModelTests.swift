import Testing
@testable import Model

/// The step profile that `scvae bench scaling` records and the model it projects from.
@Suite struct ScalingModelTests {
    typealias Part = ScalingModel.Part

    @Test func aPoolJobTakesWholeChunksPerThread() {
        #expect(ScalingModel.chunkShare(chunks: 16, threads: 1) == 1)
        #expect(ScalingModel.chunkShare(chunks: 16, threads: 2) == 0.5)
        #expect(ScalingModel.chunkShare(chunks: 16, threads: 5) == 4.0 / 16)
        #expect(ScalingModel.chunkShare(chunks: 16, threads: 64) == 1.0 / 16)
        #expect(ScalingModel.chunkShare(chunks: 1, threads: 8) == 1)
    }

    @Test func eachKindScalesByItsOwnRule() {
        let model = ScalingModel(measuredThreads: 2, parts: [
            // Perfect on two threads: efficiency 1; 8 chunks cap it at 8 threads.
            Part(label: "conv", kind: .pool(chunks: 8), one: 0.8, many: 0.4),
            // 3 chunks on 2 threads: ideal 2/3 of 0.3 = 0.2, measured 0.25: efficiency 0.8.
            Part(label: "norm", kind: .pool(chunks: 3), one: 0.3, many: 0.25),
            // Half of it serial: 0.2 * (0.5 + 0.5/2) = 0.15.
            Part(label: "gemm", kind: .blas, one: 0.2, many: 0.15),
            Part(label: "adam", kind: .serial, one: 0.1, many: 0.11),
        ])
        #expect(model.parts.map(\.label) == ["conv", "norm", "gemm", "adam"])
        #expect(abs(ScalingModel.efficiency(model.parts[1], threads: 2) - 0.8) < 1e-12)
        #expect(abs(ScalingModel.serialFraction(model.parts[2], threads: 2) - 0.5) < 1e-12)
        func projected(_ label: String, _ threads: Int) -> Double {
            model.projected(model.parts.first { $0.label == label }!, threads: threads)
        }
        #expect(abs(projected("conv", 4) - 0.2) < 1e-12)
        #expect(abs(projected("conv", 16) - 0.1) < 1e-12, "8 chunks: no faster beyond 8 threads")
        #expect(abs(projected("norm", 4) - 0.1 / 0.8) < 1e-12, "one chunk each, at the measured efficiency")
        #expect(abs(projected("gemm", 4) - 0.2 * (0.5 + 0.5 / 4)) < 1e-12)
        #expect(projected("adam", 64) == 0.1)
        // Projected back to the measured thread count, the model gives what was measured (but
        // for serial work, which it keeps at its one-thread time).
        #expect(abs(model.projectedSeconds(threads: 2) - (0.4 + 0.25 + 0.15 + 0.1)) < 1e-12)
        #expect(model.projectedSeconds(threads: 1) == model.oneThreadSeconds, "one thread: as measured")
        // Floor: the serial part, half the gemm, one chunk of each pool job at its efficiency.
        #expect(abs(model.floorSeconds - (0.1 + 0.1 + 0.8 / 8 + 0.1 / 0.8)) < 1e-12)
        #expect(model.projectedSeconds(threads: 1_000) >= model.floorSeconds - 1e-12)
    }

    @Test func fasterThanIdealAndSlowerThanSerialAreClamped() {
        let model = ScalingModel(measuredThreads: 2, parts: [
            Part(label: "cache", kind: .pool(chunks: 4), one: 1, many: 0.4),
            Part(label: "gemm", kind: .blas, one: 1, many: 1.3),
        ])
        let cache = model.parts.first { $0.label == "cache" }!, gemm = model.parts.first { $0.label == "gemm" }!
        #expect(ScalingModel.efficiency(cache, threads: 2) == 1, "never above 1")
        #expect(ScalingModel.serialFraction(gemm, threads: 2) == 1, "never above 1")
        #expect(ScalingModel.serialFraction(Part(label: "x", kind: .blas, one: 1, many: 0.3), threads: 2) == 0, "never below 0")
    }

    /// A profile records the pool's jobs and BLAS calls of the recording thread once each, by
    /// file, function and chunk count; a BLAS call inside a pool job belongs to the job.
    @Test func aProfileTimesEachRegionOnceByFileAndKind() {
        let pool = ThreadPool(threads: 2)
        let profile = StepProfile()
        var a = [Float](repeating: 1, count: 64 * 64), c = [Float](repeating: 0, count: 64 * 64)
        StepProfile.record(profile) {
            pool.run(chunks: 3) { _, _ in }
            pool.run(chunks: 3) { chunk, _ in
                // Inside the job, on whichever thread runs the chunk: part of the job's time.
                if chunk == 0 { BLAS.sgemm(m: 64, n: 64, k: 64, a: a, lda: 64, b: a, ldb: 64, c: &c, ldc: 64, function: "nested") }
                StepProfile.measure("inside a chunk") {}
            }
            BLAS.sgemm(m: 64, n: 64, k: 64, a: a, lda: 64, b: a, ldb: 64, c: &c, ldc: 64)
            StepProfile.measure("outer") {
                pool.run(chunks: 5) { _, _ in }
                a[0] = 2
            }
            profile.addStep(seconds: 1)
        }
        // Not recorded: after the recording.
        pool.run(chunks: 7) { _, _ in }
        let keys = Set(profile.seconds.keys), here = "ScalingModelTests.aProfileTimesEachRegionOnceByFileAndKind"
        #expect(keys == [
            StepProfile.Key(label: here, kind: .pool(chunks: 3)),
            StepProfile.Key(label: here, kind: .blas),
            StepProfile.Key(label: "outer", kind: .serial),
        ])
        #expect(c[0] == 64)
        #expect(profile.steps == 1 && profile.stepSeconds == 1)
        #expect(profile.untimedPerStep > 0.9, "the timed regions took well under a second")
        #expect(profile.untimedPerStep < 1, "the timed regions are not untimed")
        // The one-thread and many-thread sides are kept apart.
        let other = StepProfile()
        StepProfile.record(other) {
            StepProfile.measure("outer") {}
            other.addStep(seconds: 3)
        }
        let model = ScalingModel(one: profile, many: other, measuredThreads: 2)
        #expect(model.parts.count == 4)
        let outer = model.parts.first { $0.label == "outer" }!
        #expect(outer.one == profile.perStep(StepProfile.Key(label: "outer", kind: .serial)))
        #expect(outer.many == other.perStep(StepProfile.Key(label: "outer", kind: .serial)))
        let rest = model.parts.first { $0.label == ScalingModel.untimedLabel && $0.kind == .serial }!
        #expect(rest.one < 1 && rest.many > 2.9)
        let job = model.parts.first { $0.kind == .pool(chunks: 3) }!
        #expect(job.one > 0 && job.many == 0, "missing from the second profile: 0 there")
    }
}
