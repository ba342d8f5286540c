import ArgumentParser
import Codes
import Foundation
import Images
import Model

/// k-means over synthetic sparse codes the size of a large segmentation run: seconds and peak memory.
struct BenchKMeansCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kmeans",
        abstract: "Seconds and peak memory of scvae segment's k-means on synthetic sparse patch codes (drawn around hidden prototypes).")

    @Option(help: "Patch codes.")
    var points: Int = 1_000_000

    @Option(help: "Atoms per code (the width of a row).")
    var atoms: Int = 512

    @Option(help: "Nonzero atoms per code.")
    var active: Int = 20

    @Option(help: "Clusters (and hidden prototypes).")
    var clusters: Int = 8

    @Option(help: "Lloyd iterations at most.")
    var maxIterations: Int = 20

    @Option(help: "OpenBLAS threads.")
    var threads: Int = 1

    func validate() throws {
        guard points >= clusters, clusters >= 1, atoms >= 1, atoms <= 65_536, (1...atoms).contains(active), maxIterations >= 1, threads >= 1 else {
            throw ValidationError("Need points >= clusters >= 1, 1 <= active <= atoms <= 65536, --max-iterations and --threads at least 1.")
        }
    }

    func run() throws {
        BLAS.setThreads(threads)
        var random = KeyedRandom(key: 17)
        // Each prototype uses `active` atoms with fixed values; a code is one prototype's atoms with noise.
        let prototypes = (0..<clusters).map { _ in
            Array(Set((0..<(active * 4)).map { _ in random.below(atoms) }).sorted().prefix(active))
        }
        var codes = SparseCodes(atoms: atoms)
        var row = [Float](repeating: 0, count: atoms)
        for _ in 0..<points {
            let prototype = prototypes[random.below(clusters)]
            for (i, atom) in prototype.enumerated() { row[atom] = Float(i % 3 + 1) + random.unitFloat() - 0.5 }
            codes.append(dense: row)
            for atom in prototype { row[atom] = 0 }
        }
        let bytes = codes.nonzeroCount * 6 + codes.rowCount * 8
        print(String(format: "%d codes of %d atoms, %d nonzeros (%.0f MiB sparse); peak memory so far %.0f MiB",
                     points, atoms, codes.nonzeroCount, Double(bytes) / 1_048_576, BenchIndexCommand.peakMiB()))
        let start = Date()
        let result = KMeans(clusters: clusters, seed: 0, initializations: 1, maxIterations: maxIterations).fit(codes)
        print(String(format: "k-means, %d clusters, 1 start: %.1f s for %d iterations, inertia %.4g; peak memory %.0f MiB (%d BLAS threads)",
                     clusters, Date().timeIntervalSince(start), result.iterations, result.inertia, BenchIndexCommand.peakMiB(), threads))
    }
}
