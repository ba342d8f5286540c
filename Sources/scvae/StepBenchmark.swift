import Foundation
import Model
import Worker

/// Timing of whole training steps of one replica on this process (the worker's compute alone).
enum StepBenchmark {
    struct Figures: Sendable {
        var medianSeconds: Double
        var bestSeconds: Double
        /// Forward + backward FLOPs counted as 3x the forward's multiply-adds x 2.
        var flopsPerStep: Double
    }

    /// Runs one warm-up step and `steps` (at least 1) timed steps (forward, backward, Adam) on
    /// smooth synthetic images; parameters from the seed-0 initialisation. The model's kernels run
    /// on `threads` threads (OpenBLAS's as set); the timed steps are recorded into `profile`.
    static func run(config: ModelConfig, batch: Int, steps: Int, threads: Int = BLAS.threads,
                    profile: StepProfile? = nil) throws -> Figures {
        precondition(steps >= 1 && batch >= 1, "StepBenchmark needs at least one step of one image")
        let model = SCVAEModel(config: config, maxBatch: batch, threads: threads)
        var parameters = [Float](repeating: 0, count: model.layout.totalCount)
        parameters.withUnsafeMutableBufferPointer {
            initializeParameters($0, layout: model.layout, config: config, seed: 0)
        }
        let replica = TrainingReplica(model: model, parameters: parameters,
                                      optimizer: Optimizer(settings: OptimizerSettings(), parameterCount: parameters.count),
                                      microBatch: batch)
        let side = config.imageSize
        let images: [Float] = (0..<(batch * 3 * side * side)).map { i in
            let x = Float(i % side), y = Float((i / side) % side), image = Float(i / (3 * side * side))
            return 0.9 * sin(0.11 * x + image) * cos(0.07 * y)
        }
        let reducer = SingleRankReducer()
        var times: [Double] = []
        try images.withUnsafeBufferPointer { pixels in
            for step in 0...steps {
                let start = DispatchTime.now().uptimeNanoseconds
                if step > 0, let profile {
                    _ = try StepProfile.record(profile) {
                        try replica.step(images: pixels.baseAddress!, count: batch, reducer: reducer)
                    }
                } else {
                    _ = try replica.step(images: pixels.baseAddress!, count: batch, reducer: reducer)
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if step > 0 {
                    times.append(seconds)
                    profile?.addStep(seconds: seconds)
                }
            }
        }
        let sorted = times.sorted()
        return Figures(medianSeconds: sorted[sorted.count / 2], bestSeconds: sorted[0],
                       flopsPerStep: 3 * model.forwardFlopsPerImage * Double(batch))
    }

    /// Single-thread-per-BLAS-setting sgemm rate of a 1024^3 product, best of 3 (GFLOP/s).
    static func sgemmPeak() -> Double {
        let n = 1024
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        for _ in 0..<4 {
            let start = DispatchTime.now().uptimeNanoseconds
            BLAS.sgemm(m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, c: &c, ldc: n)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    /// Peak resident set size of this process (getrusage's ru_maxrss, KiB on Linux).
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Int(usage.ru_maxrss) * 1024
    }
}
