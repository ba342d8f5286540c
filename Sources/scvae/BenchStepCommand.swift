import ArgumentParser
import CommandOptions
import Foundation
import Model
import Worker

/// `scvae bench step`: whole training steps (forward, backward, optimizer update) of one
/// configuration on one process, timed after a warm-up.
struct BenchStepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Time full training steps: ms/step, images/s, achieved GFLOP/s, peak memory, beside this machine's sgemm peak.")

    @OptionGroup var model: ModelOptions

    @Option(help: "Images per step.")
    var batch: Int = 16

    @Option(help: "Timed steps (after one warm-up step).")
    var steps: Int = 5

    func validate() throws {
        guard batch >= 1, steps >= 1 else { throw ValidationError("--batch and --steps must be at least 1.") }
    }

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let config = model.prepare()
        let figures = try StepBenchmark.run(config: config, batch: batch, steps: steps)
        let peak = StepBenchmark.sgemmPeak()
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; \(model.threads) BLAS thread(s); config \(config.name), batch \(batch)")
        print(String(format: "sgemm 1024^3 peak now: %.1f GFLOP/s", peak))
        print("kernels: \(KernelVariant.selected); convolutions: \(Conv2dDirect.kernelDescription()); OpenBLAS kernels: \(BLAS.coreName)")
        print(String(format: "step: median %.1f ms, best %.1f ms over %d steps; %.2f images/s; %.1f GFLOP/s (%.0f%% of sgemm peak); peak RSS %.2f GiB",
                     figures.medianSeconds * 1000, figures.bestSeconds * 1000, steps, Double(batch) / figures.medianSeconds,
                     figures.flopsPerStep / figures.medianSeconds / 1e9,
                     100 * figures.flopsPerStep / figures.medianSeconds / 1e9 / peak,
                     Double(StepBenchmark.peakResidentBytes()) / Double(1 << 30)))
        print(String(format: "work per step: %.1f GFLOP (forward %.1f GFLOP/image x 3)", figures.flopsPerStep / 1e9,
                     figures.flopsPerStep / 3 / Double(batch) / 1e9))
    }
}
