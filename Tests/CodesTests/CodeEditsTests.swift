import Codes
import Foundation
import Model
import Testing
@testable import Worker

/// interpolate and traverse: the codes they build and the images they decode.
@Suite struct CodeEditsTests {
    @Test(arguments: [false, true]) func interpolationEndsAreTheReconstructions(slerp: Bool) throws {
        let folder = try TemporaryFolder()
        let paths = try TestImages.write(2, into: folder.path)
        let weights = try TrainedWeights(path: TinyFixture.weightsPath, config: .tiny)
        let strip = try CodeEdits.interpolate(paths[0], paths[1], steps: 5, slerp: slerp, with: CodeModel(weights: weights))
        let inputs = try paths.flatMap { try ImageInputs.load($0, size: 32) }
        let (reconstructions, _) = Reconstruction.forward(SCVAEModel(config: .tiny, maxBatch: 8), parameters: weights.parameters,
                                                          inputs: inputs, batch: 2)
        let a = Array(reconstructions[..<(3 * 32 * 32)]), b = Array(reconstructions[(3 * 32 * 32)...])
        #expect(strip.count == 5)
        #expect(strip[0] == a, "max difference \(maxAbsDifference(strip[0], a))")
        #expect(strip[4] == b, "max difference \(maxAbsDifference(strip[4], b))")
        #expect(strip[2] != a && strip[2] != b)
    }

    @Test func pathsRunAlongTheLineOrTheGreatCircle() {
        let a: [Float] = [1, 0, 0, 2], b: [Float] = [0, 3, 0, -2]
        let line = CodePaths.between(a, b, steps: 3, slerp: false)
        #expect(line[0] == a && line[2] == b)
        #expect(line[1] == [0.5, 1.5, 0, 0])
        // Orthogonal, equal lengths: the midpoint keeps the length.
        let x: [Float] = [2, 0, 0], y: [Float] = [0, 2, 0]
        let arc = CodePaths.between(x, y, steps: 3, slerp: true)
        #expect(arc[0] == x && arc[2] == y)
        let root = Float(2).squareRoot()
        #expect(abs(arc[1][0] - root) < 1e-6 && abs(arc[1][1] - root) < 1e-6 && arc[1][2] == 0)
        // A zero end falls back to the line.
        #expect(CodePaths.between([0, 0], [2, 4], steps: 3, slerp: true)[1] == [1, 2])
    }

    @Test func traversalSetsOneComponentAtEveryPositionOrAtOne() {
        let atoms = 4, positions = 3
        let base: [Float] = (0..<(atoms * positions)).map { Float($0) }
        let everywhere = Traversal(atoms: [1, 3], values: [-1, 2], position: nil).grid(from: base, atomCount: atoms)
        #expect(everywhere.count == 4)
        for (i, codes) in everywhere.enumerated() {
            let atom = [1, 3][i / 2], value: Float = [-1, 2][i % 2]
            for p in 0..<positions {
                for k in 0..<atoms {
                    #expect(codes[p * atoms + k] == (k == atom ? value : base[p * atoms + k]))
                }
            }
        }
        let one = Traversal(atoms: [2], values: [5], position: 1).grid(from: base, atomCount: atoms)[0]
        #expect(zip(one, base).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset) == [1 * atoms + 2])
        #expect(one[1 * atoms + 2] == 5)
        #expect(Traversal.values(from: -2, to: 2, steps: 5) == [-2, -1, 0, 1, 2])
    }

    @Test func mostUsedAtomsCountPositionsThenMagnitude() {
        // 3 positions x 4 atoms: atom 2 used 3 times, atoms 0 and 3 twice (atom 3 larger), atom 1 never.
        let codes: [Float] = [1, 0, 1, 0,
                              0.5, 0, 1, 5,
                              0, 0, 1, 1]
        #expect(Traversal.mostUsedAtoms(codes, atoms: 4, count: 3) == [2, 3, 0])
    }

    @Test func traverseDrawsARowPerAtomAndRefusesAtomsAndPositionsOffTheModel() throws {
        let folder = try TemporaryFolder()
        let path = try TestImages.write(1, into: folder.path)[0]
        let model = CodeModel(weights: try TrainedWeights(path: TinyFixture.weightsPath, config: .tiny))
        let grid = try CodeEdits.traverse(path, atoms: nil, top: 2, range: -1...1, position: (2, 3), steps: 3, with: model)
        let base = try CodeEdits.codes(of: [path], with: model)[0]
        #expect(grid.atoms == Traversal.mostUsedAtoms(base, atoms: 128, count: 2))
        #expect(grid.values == [-1, 0, 1])
        #expect(grid.images.count == 6)
        #expect(grid.images[0] != grid.images[2])
        #expect(throws: CodesError.invalidArgument("atom 128 is not one of the 128 atoms of tiny (0...127)")) {
            try CodeEdits.traverse(path, atoms: [3, 128], top: nil, range: nil, position: nil, steps: 3, with: model)
        }
        #expect(throws: CodesError.invalidArgument("position 8,0 is off the 8x8 latent grid of tiny")) {
            try CodeEdits.traverse(path, atoms: [3], top: nil, range: nil, position: (8, 0), steps: 3, with: model)
        }
    }
}
