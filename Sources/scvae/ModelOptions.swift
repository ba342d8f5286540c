import ArgumentParser
import Model
import Worker

/// Options every model tool shares: which configuration, how many BLAS threads.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model configuration.")
    var config: ModelConfigName = ModelConfigName(.tiny)

    @Option(help: "OpenBLAS threads.")
    var threads: Int = 1

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1.") }
    }

    /// The validated configuration, with BLAS set to the requested threads.
    func prepare() -> ModelConfig {
        BLASKernels.useFastestKernels()
        BLAS.setThreads(threads)
        return config.config
    }
}

/// A model configuration as a command-line value; the list is the model's own (`ModelConfig.all`).
struct ModelConfigName: ExpressibleByArgument, CaseIterable {
    var config: ModelConfig

    init(_ config: ModelConfig) { self.config = config }

    init?(argument: String) {
        guard let config = ModelConfig.named(argument) else { return nil }
        self.config = config
    }

    static var allCases: [ModelConfigName] { ModelConfig.all.map(ModelConfigName.init) }
    static var allValueStrings: [String] { ModelConfig.all.map(\.name) }
    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
    var defaultValueDescription: String { config.name }
}
