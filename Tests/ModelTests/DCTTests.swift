import Testing
@testable import Model

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct DCTTests {
    struct Case: Sendable, CustomStringConvertible {
        var channels: Int, atoms: Int, perAxis: Int
        var description: String { "C=\(channels) K=\(atoms) m=\(perAxis)" }
    }
    static let paperCases = [Case(channels: 64, atoms: 128, perAxis: 12), Case(channels: 256, atoms: 512, perAxis: 23)]

    @Test(arguments: paperCases)
    func hasTheRightShapeAndUnitColumns(_ shape: Case) {
        let d = DCT.dictionary(channels: shape.channels, atoms: shape.atoms, atomsPerAxis: shape.perAxis)
        #expect(d.count == shape.channels * shape.atoms)
        var worst = 0.0
        for k in 0..<shape.atoms {
            let norm = (0..<shape.channels).map { d[$0 * shape.atoms + k] * d[$0 * shape.atoms + k] }.reduce(0, +)
            worst = max(worst, abs(norm - 1))
        }
        #expect(worst < 1e-12, "largest | |column|^2 - 1 | = \(worst)")
    }

    /// Builds A (x) A as a full matrix and permutes its rows, the long way round.
    @Test(arguments: paperCases)
    func matchesTheKroneckerRecipe(_ shape: Case) {
        let n = Int(Double(shape.channels).squareRoot()), m = shape.perAxis
        func oneD(_ i: Int, _ k: Int) -> Double {
            let column = (0..<n).map { cos(Double($0) * Double(k) * .pi / Double(m)) }
            let mean = k == 0 ? 0 : column.reduce(0, +) / Double(n)
            let centred = column.map { $0 - mean }
            return centred[i] / centred.map { $0 * $0 }.reduce(0, +).squareRoot()
        }
        let d = DCT.dictionary(channels: shape.channels, atoms: shape.atoms, atomsPerAxis: shape.perAxis)
        // Kronecker entry (i1 * n + i2, k1 * m + k2) = A[i1, k1] A[i2, k2]; row r of D = row perm(r).
        var worst = 0.0
        for (row, column) in [(0, 0), (3 * n + 5, 1), (5 * n + 3, 1), (7, m + 2), (n * n - 1, shape.atoms - 1),
                              (2 * n + 1, 2 * m + 7), (n + 4, shape.atoms / 2)] {
            let a = row / n, b = row % n
            let oldRow = b * n + a
            let i1 = oldRow / n, i2 = oldRow % n
            let k1 = column / m, k2 = column % m
            let expected = oneD(i1, k1) * oneD(i2, k2)
            worst = max(worst, abs(d[row * shape.atoms + column] - expected))
        }
        #expect(worst < 1e-12, "largest spot-check difference \(worst)")
        // The DC atom is constant 1/n; atom 1 varies with the high digit a of the row a * n + b.
        #expect(abs(d[0] - 1 / Double(n)) < 1e-12)
        let centred = (0..<n).map { cos(Double($0) * .pi / Double(m)) }
        let mean = centred.reduce(0, +) / Double(n)
        let norm = centred.map { ($0 - mean) * ($0 - mean) }.reduce(0, +).squareRoot()
        let expected = (centred[3] - mean) / norm / Double(n).squareRoot()
        #expect(abs(d[(3 * n + 5) * shape.atoms + 1] - expected) < 1e-12)
        #expect(abs(d[(3 * n + 6) * shape.atoms + 1] - expected) < 1e-12)
    }

    /// c0 against the Jacobi eigenvalue method on D D^T, a method that shares nothing with power iteration.
    @Test(arguments: paperCases)
    func initialCIsTheLargestEigenvalueOfTheGram(_ shape: Case) {
        let d = DCT.dictionary(channels: shape.channels, atoms: shape.atoms, atomsPerAxis: shape.perAxis)
        let c0 = DCT.squaredSpectralNorm(d, rows: shape.channels, columns: shape.atoms)
        let eigenvalues = jacobiEigenvalues(gram(d, rows: shape.channels, columns: shape.atoms), size: shape.channels)
        let largest = eigenvalues.max()!
        #expect(abs(c0 - largest) <= 1e-10 * largest, "power iteration \(c0), Jacobi \(largest)")
        // And the Float the initialiser stores.
        let config = ModelConfig(name: "t", imageSize: 8, ch: 4, chMult: [1], resBlocks: 1, attnResolutions: [],
                                 latentChannels: shape.channels, atoms: shape.atoms, istaIterations: 1,
                                 dctAtomsPerAxis: shape.perAxis)
        #expect(initialDictionary(config: config).c == Float(largest))
    }

    @Test func spectralNormOfAKnownMatrix() {
        // diag(3, 2) padded with a zero column: largest singular value 3.
        let matrix: [Double] = [3, 0, 0, 0, 2, 0]
        #expect(abs(DCT.squaredSpectralNorm(matrix, rows: 2, columns: 3) - 9) < 1e-12)
        // Equal top eigenvalues do not slow it down.
        let degenerate: [Double] = [1, 0, 0, 1]
        #expect(abs(DCT.squaredSpectralNorm(degenerate, rows: 2, columns: 2) - 1) < 1e-12)
    }
}

func gram(_ m: [Double], rows: Int, columns: Int) -> [Double] {
    var g = [Double](repeating: 0, count: rows * rows)
    for i in 0..<rows {
        for j in 0..<rows {
            for k in 0..<columns { g[i * rows + j] += m[i * columns + k] * m[j * columns + k] }
        }
    }
    return g
}

/// All eigenvalues of a symmetric matrix by cyclic Jacobi rotations.
func jacobiEigenvalues(_ matrix: [Double], size n: Int) -> [Double] {
    var a = matrix
    for _ in 0..<100 {
        var offDiagonal = 0.0
        for p in 0..<n { for q in (p + 1)..<n { offDiagonal += a[p * n + q] * a[p * n + q] } }
        if offDiagonal < 1e-26 { break }
        for p in 0..<n {
            for q in (p + 1)..<n where a[p * n + q] != 0 {
                let apq = a[p * n + q]
                let tau = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                let t = (tau >= 0 ? 1 : -1) / (abs(tau) + (1 + tau * tau).squareRoot())
                let c = 1 / (1 + t * t).squareRoot(), s = t * c
                for k in 0..<n {
                    let akp = a[k * n + p], akq = a[k * n + q]
                    a[k * n + p] = c * akp - s * akq
                    a[k * n + q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let apk = a[p * n + k], aqk = a[q * n + k]
                    a[p * n + k] = c * apk - s * aqk
                    a[q * n + k] = s * apk + c * aqk
                }
            }
        }
    }
    return (0..<n).map { a[$0 * n + $0] }
}
