import Foundation
import Images

/// How a set of codes uses the dictionary (`scvae codes stats`).
public struct CodeStatistics: Codable, Equatable, Sendable {
    public var images: Int
    public var latentSide: Int
    public var atoms: Int
    /// Fraction of exactly-zero codes over everything.
    public var sparsity: Double
    /// Mean number of nonzero atoms per latent position.
    public var meanActiveAtoms: Double
    /// For each atom, the number of (image, position) rows where it is nonzero.
    public var atomUsage: [Int]
    /// For each latent position (row y, column x), the fraction of zero codes over all images.
    public var positionSparsity: [[Double]]

    enum CodingKeys: String, CodingKey {
        case images, latentSide = "latent_side", atoms, sparsity, meanActiveAtoms = "mean_active_atoms"
        case atomUsage = "atom_usage", positionSparsity = "position_sparsity"
    }

    public init(_ file: CodesFile) {
        let codes = file.codes, side = file.latentSide, positions = file.positions
        images = file.imageCount
        latentSide = side
        atoms = codes.atoms
        atomUsage = [Int](repeating: 0, count: codes.atoms)
        for atom in codes.indices { atomUsage[Int(atom)] += 1 }
        var nonzero = [Int](repeating: 0, count: positions)
        for r in 0..<codes.rowCount { nonzero[r % positions] += codes.offsets[r + 1] - codes.offsets[r] }
        let perPosition = Double(max(1, file.imageCount) * codes.atoms)
        positionSparsity = (0..<side).map { y in (0..<side).map { x in 1 - Double(nonzero[y * side + x]) / perPosition } }
        let total = Double(codes.rowCount * codes.atoms)
        sparsity = total == 0 ? 0 : 1 - Double(codes.nonzeroCount) / total
        meanActiveAtoms = codes.rowCount == 0 ? 0 : Double(codes.nonzeroCount) / Double(codes.rowCount)
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// A bar per atom (left to right by index), its height the share of rows that use it; the
    /// tallest bar fills the plot. Bars are `barWidth` pixels wide on a white ground with a base line.
    public func usageChart(height: Int = 200, barWidth: Int = 4) -> RGBImage {
        let margin = 8
        let width = atoms * barWidth + 2 * margin, total = height + 2 * margin
        var canvas = Canvas(width: width, height: total)
        let peak = max(1, atomUsage.max() ?? 1)
        for (atom, uses) in atomUsage.enumerated() {
            let bar = Int((Double(uses) / Double(peak) * Double(height)).rounded())
            let left = margin + atom * barWidth
            canvas.fill(x: left..<(left + max(1, barWidth - 1)), y: (margin + height - bar)..<(margin + height), color: (40, 90, 170))
        }
        canvas.fill(x: margin..<(width - margin), y: (margin + height)..<(margin + height + 1), color: (0, 0, 0))
        return canvas.image
    }

    /// The latent grid with each position's sparsity as a grey level (black 0, white 1),
    /// `cell` pixels per position.
    public func sparsityMap(cell: Int = 16) -> RGBImage {
        var canvas = Canvas(width: latentSide * cell, height: latentSide * cell)
        for y in 0..<latentSide {
            for x in 0..<latentSide {
                let level = UInt8((min(max(positionSparsity[y][x], 0), 1) * 255).rounded())
                canvas.fill(x: (x * cell)..<((x + 1) * cell), y: (y * cell)..<((y + 1) * cell), color: (level, level, level))
            }
        }
        return canvas.image
    }
}

/// An RGB picture drawn with filled rectangles.
struct Canvas {
    private(set) var image: RGBImage

    init(width: Int, height: Int) {
        image = RGBImage(width: width, height: height, pixels: [UInt8](repeating: 255, count: width * height * 3))
    }

    mutating func fill(x: Range<Int>, y: Range<Int>, color: (UInt8, UInt8, UInt8)) {
        for row in y.clamped(to: 0..<image.height) {
            for column in x.clamped(to: 0..<image.width) {
                let i = (row * image.width + column) * 3
                image.pixels[i] = color.0
                image.pixels[i + 1] = color.1
                image.pixels[i + 2] = color.2
            }
        }
    }
}
