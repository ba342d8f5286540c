import ArgumentParser
import BuildInfo

@main
struct ScvaeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scvae",
        abstract: "SC-VAE tools: inspect the build, compute gradients, reconstruct images, pack datasets, benchmark, make CURVE keys, check checkpoints, report on a run, work with the sparse codes.",
        version: BuildInfo.description,
        subcommands: [InfoCommand.self, GradCommand.self, ReconstructCommand.self, PackCommand.self, BenchCommand.self,
                      KeygenCommand.self, CheckpointCommand.self, ReportCommand.self,
                      EncodeCommand.self, DecodeCommand.self, InterpolateCommand.self, TraverseCommand.self, CodesCommand.self,
                      SegmentCommand.self])
}
