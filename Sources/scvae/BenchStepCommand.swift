import ArgumentParser
import Foundation
import Model
import Worker

/// `scvae bench step`: whole training steps (forward, backward, optimizer update) of one
/// configuration on one process, timed after a warm-up.
struct BenchStepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Time full training steps: ms/step, images/s, achieved GFLOP/s, peak memory, beside this machine's sgemm peak.")

    @Option(help: "Model configuration: tiny, small, imagenet-f8 or imagenet-f16.")
    var config: String = "small"

    @Option(help: "Images per step.")
    var batch: Int = 16

    @Option(help: "OpenBLAS threads.")
    var threads: Int = 1

    @Option(help: "Timed steps (after one warm-up step).")
    var steps: Int = 5

    func validate() throws {
        guard ModelConfig.named(config) != nil else {
            throw ValidationError("--config must be one of \(ModelConfig.all.map(\.name).joined(separator: ", ")); got '\(config)'.")
        }
        guard batch >= 1, threads >= 1, steps >= 1 else { throw ValidationError("--batch, --threads and --steps must be at least 1.") }
    }

    func run() throws {
        BLAS.setThreads(threads)
        let model = ModelConfig.named(config)!
        let figures = StepBenchmark.run(config: model, batch: batch, steps: steps)
        let peak = StepBenchmark.sgemmPeak()
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; \(threads) BLAS thread(s); config \(config), batch \(batch)")
        print(String(format: "sgemm 1024^3 peak now: %.1f GFLOP/s", peak))
        print(String(format: "step: median %.1f ms, best %.1f ms over %d steps; %.2f images/s; %.1f GFLOP/s (%.0f%% of sgemm peak); peak RSS %.2f GiB",
                     figures.medianSeconds * 1000, figures.bestSeconds * 1000, steps, Double(batch) / figures.medianSeconds,
                     figures.flopsPerStep / figures.medianSeconds / 1e9,
                     100 * figures.flopsPerStep / figures.medianSeconds / 1e9 / peak,
                     Double(StepBenchmark.peakResidentBytes()) / Double(1 << 30)))
        print(String(format: "work per step: %.1f GFLOP (forward %.1f GFLOP/image x 3)", figures.flopsPerStep / 1e9,
                     figures.flopsPerStep / 3 / Double(batch) / 1e9))
    }
}
