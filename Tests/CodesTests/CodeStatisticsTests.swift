import Codes
import Foundation
import Testing

@Suite struct CodeStatisticsTests {
    /// 2 images of 2x2 positions, 3 atoms.
    static func file() -> CodesFile {
        var codes = SparseCodes(atoms: 3)
        codes.append(dense: [1, 0, 0,   1, 2, 0,   0, 0, 0,   0, 0, 0,     // image 0
                             1, 0, 0,   0, 2, 0,   0, 0, 0,   3, 0, 0])    // image 1
        return CodesFile(codes: codes, config: "tiny", imageSize: 4, latentSide: 2, files: ["a.png", "b.png"],
                         weightsFingerprint: "00", weightsFile: "w")
    }

    @Test func countsAtomUsesAndZerosPerPosition() throws {
        let stats = CodeStatistics(Self.file())
        #expect(stats.images == 2 && stats.latentSide == 2 && stats.atoms == 3)
        #expect(stats.atomUsage == [4, 2, 0])
        let expected: [[Double]] = [[1 - 2.0 / 6, 1 - 3.0 / 6], [1, 1 - 1.0 / 6]]
        #expect(stats.positionSparsity == expected)
        #expect(stats.sparsity == 1 - 6.0 / 24)
        #expect(stats.meanActiveAtoms == 6.0 / 8)
        let json = try JSONSerialization.jsonObject(with: try stats.json()) as? [String: Any]
        #expect(json?["atom_usage"] as? [Int] == [4, 2, 0])
        #expect(json?["sparsity"] as? Double == 0.75)
    }

    @Test func drawsABarPerAtomAndAGreyPerPosition() {
        let stats = CodeStatistics(Self.file())
        let chart = stats.usageChart(height: 100, barWidth: 4)
        #expect(chart.width == 3 * 4 + 16 && chart.height == 116)
        func isWhite(_ x: Int, _ y: Int) -> Bool { rgb(chart, x, y) == [255, 255, 255] }
        // Atom 0 (4 uses) fills the plot, atom 1 (2 uses) half of it, atom 2 (none) nothing.
        #expect(!isWhite(8, 8) && !isWhite(8, 107))
        #expect(isWhite(12, 8) && isWhite(12, 57) && !isWhite(12, 58) && !isWhite(12, 107))
        #expect(isWhite(16, 8) && isWhite(16, 107))
        #expect(rgb(chart, 16, 108) == [0, 0, 0])
        let map = stats.sparsityMap(cell: 4)
        #expect(map.width == 8 && map.height == 8)
        #expect(rgb(map, 0, 4) == [255, 255, 255])
        #expect(rgb(map, 0, 0) == [170, 170, 170])
        #expect(rgb(map, 7, 7)[0] == UInt8(((1 - 1.0 / 6) * 255).rounded()))
    }
}
