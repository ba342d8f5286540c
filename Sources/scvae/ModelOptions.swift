import ArgumentParser
import Model
import Worker

/// Options every model tool shares: which configuration, how many BLAS threads.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model configuration: tiny, small, imagenet-f8 or imagenet-f16.")
    var config: String = "tiny"

    @Option(help: "OpenBLAS threads.")
    var threads: Int = 1

    func validate() throws {
        guard ModelConfig.named(config) != nil else {
            throw ValidationError("--config must be one of \(ModelConfig.all.map(\.name).joined(separator: ", ")); got '\(config)'.")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1.") }
    }

    /// The validated configuration, with BLAS set to the requested threads.
    func prepare() -> ModelConfig {
        BLASKernels.useFastestKernels()
        BLAS.setThreads(threads)
        return ModelConfig.named(config)!
    }
}
