import ArgumentParser

@main
struct ScvaeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scvae",
        abstract: "SC-VAE tools: inspect the build, and (as they land) pack, grad, reconstruct, bench, keygen, checkpoint.",
        subcommands: [InfoCommand.self, GradCommand.self, ReconstructCommand.self, PackCommand.self, BenchCommand.self,
                      KeygenCommand.self, CheckpointCommand.self])
}
