import ArgumentParser
import Codes
import CommandOptions
import Foundation
import TensorFiles

struct CodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codes",
        abstract: "Look at a codes file (scvae encode).",
        subcommands: [CodesStatsCommand.self])
}

struct CodesStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Atom usage and sparsity per latent position: OUT/stats.json, OUT/atom-usage.png, OUT/position-sparsity.png.")

    @Option(help: "The codes file (scvae encode).")
    var codes: String

    @Option(help: "Output folder.")
    var out: String

    func run() throws {
        let file = try CodesFile.read(codes)
        let stats = CodeStatistics(file)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try BinaryFile.writeAtomically(Array(try stats.json()), to: (out as NSString).appendingPathComponent("stats.json"))
        try writePNG(stats.usageChart(), to: (out as NSString).appendingPathComponent("atom-usage.png"))
        try writePNG(stats.sparsityMap(), to: (out as NSString).appendingPathComponent("position-sparsity.png"))
        let unused = stats.atomUsage.filter { $0 == 0 }.count
        print("\(stats.images) images: sparsity \(String(format: "%.4f", stats.sparsity)), \(String(format: "%.1f", stats.meanActiveAtoms)) active atoms per position, \(unused) of \(stats.atoms) atoms never used; written to \(out)")
    }
}
