import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures (run them on a release build; record them in BENCHMARKS.md).",
        subcommands: [BenchStepCommand.self, BenchDataCommand.self, BenchAllReduceCommand.self, BenchAlphaBetaCommand.self, BenchAllReduceRankCommand.self, BenchCheckpointCommand.self, BenchIndexCommand.self, BenchShardsCommand.self,
                      BenchKMeansCommand.self, BenchScalingCommand.self])
}
