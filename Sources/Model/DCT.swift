// The initial dictionary of SC-VAE: an overcomplete 2-D DCT (docs/model.md, "Dictionary
// initialisation"), and the initial c, the squared spectral norm of D.
//
// Shape legend:
//   C = latent channels = n * n, K = atoms kept, m = 1-D atoms per axis (m >= n, m * m >= K)
//   A [n, m]      1-D overcomplete DCT, column k = cos(i k pi / m), i = 0..<n
//   A (x) A [C, m * m]   Kronecker product, row i1 * n + i2, column k1 * m + k2
//   D [C, K]      rows permuted so row a * n + b is old row b * n + a; first K columns
// Everything is computed in Double and rounded to Float once at the end, so platforms whose cos
// differ in the last Double bit still agree on the Float values (barring a 1-in-2^29 tie).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum DCT {
    /// D [C, K] row-major in Double, exactly as docs/model.md builds it.
    public static func dictionary(channels: Int, atoms: Int, atomsPerAxis m: Int) -> [Double] {
        let n = Int(Double(channels).squareRoot().rounded())
        precondition(n * n == channels, "the DCT dictionary needs a square number of channels, got \(channels)")
        precondition(m >= n, "the DCT needs at least n = \(n) atoms per axis, got \(m)")
        precondition(atoms <= m * m, "the DCT has \(m * m) atoms, \(atoms) requested")

        // 1-D: column k = cos(i k pi / m); columns k > 0 lose their mean (the DC atom is column 0).
        var oneD = [Double](repeating: 0, count: n * m)   // [n, m]
        for k in 0..<m {
            var column = (0..<n).map { i in cos(Double(i * k) * Double.pi / Double(m)) }
            if k > 0 {
                let mean = column.reduce(0, +) / Double(n)
                column = column.map { $0 - mean }
            }
            let norm = column.map { $0 * $0 }.reduce(0, +).squareRoot()
            for i in 0..<n { oneD[i * m + k] = column[i] / norm }
        }

        // 2-D: row a * n + b of D is row b * n + a of A (x) A, whose entry at column k1 * m + k2
        // is A[b, k1] * A[a, k2]. Only the first K columns are kept.
        var d = [Double](repeating: 0, count: channels * atoms)
        for a in 0..<n {
            for b in 0..<n {
                for column in 0..<atoms {
                    let k1 = column / m, k2 = column % m
                    d[(a * n + b) * atoms + column] = oneD[b * m + k1] * oneD[a * m + k2]
                }
            }
        }
        // The product of unit columns is already a unit column; normalising again follows the
        // recipe and removes the last bit of rounding.
        for column in 0..<atoms {
            var sum: Double = 0
            for row in 0..<channels { sum += d[row * atoms + column] * d[row * atoms + column] }
            let norm = sum.squareRoot()
            for row in 0..<channels { d[row * atoms + column] /= norm }
        }
        return d
    }

    /// The largest eigenvalue of D^T D (= of D D^T), i.e. the squared spectral norm of D [rows, columns].
    ///
    /// Power iteration on every vector at once: D D^T is squared repeatedly (renormalised by its
    /// trace), which converges even when the top eigenvalues are close or equal; a Rayleigh quotient
    /// on the dominant column then gives the eigenvalue to Double precision.
    public static func squaredSpectralNorm(_ matrix: [Double], rows: Int, columns: Int) -> Double {
        precondition(matrix.count == rows * columns, "squaredSpectralNorm: \(matrix.count) values for \(rows) x \(columns)")
        let gram = outerGram(matrix, rows: rows, columns: columns)   // D D^T [rows, rows]
        var power = gram
        for _ in 0..<64 {
            let trace = (0..<rows).map { power[$0 * rows + $0] }.reduce(0, +)
            guard trace > 0 else { return 0 }
            var normalised = power.map { $0 / trace }
            normalised = multiply(normalised, normalised, size: rows)
            let newTrace = (0..<rows).map { normalised[$0 * rows + $0] }.reduce(0, +)
            let next = normalised.map { $0 / newTrace }
            let change = zip(next, power.map { $0 / trace }).map { abs($0 - $1) }.max() ?? 0
            power = next
            if change < 1e-15 { break }
        }
        // The dominant column of the projector-like power lies in the top eigenspace.
        var best = 0, bestNorm = -1.0
        for j in 0..<rows {
            let norm = (0..<rows).map { power[$0 * rows + j] * power[$0 * rows + j] }.reduce(0, +)
            if norm > bestNorm { bestNorm = norm; best = j }
        }
        var vector = (0..<rows).map { power[$0 * rows + best] }
        var eigenvalue = 0.0
        // A few ordinary power steps polish the vector; the Rayleigh quotient is the answer.
        for _ in 0..<50 {
            let image = multiply(gram, vector: vector, size: rows)
            let vv = vector.map { $0 * $0 }.reduce(0, +)
            eigenvalue = zip(vector, image).map { $0 * $1 }.reduce(0, +) / vv
            let norm = image.map { $0 * $0 }.reduce(0, +).squareRoot()
            vector = image.map { $0 / norm }
        }
        return eigenvalue
    }

    /// M M^T for M [rows, columns].
    private static func outerGram(_ matrix: [Double], rows: Int, columns: Int) -> [Double] {
        var gram = [Double](repeating: 0, count: rows * rows)
        for i in 0..<rows {
            for j in i..<rows {
                var sum: Double = 0
                for k in 0..<columns { sum += matrix[i * columns + k] * matrix[j * columns + k] }
                gram[i * rows + j] = sum
                gram[j * rows + i] = sum
            }
        }
        return gram
    }

    private static func multiply(_ a: [Double], _ b: [Double], size: Int) -> [Double] {
        var product = [Double](repeating: 0, count: size * size)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                product.withUnsafeMutableBufferPointer { product in
                    for i in 0..<size {
                        for k in 0..<size {
                            let aik = a[i * size + k]
                            if aik == 0 { continue }
                            for j in 0..<size { product[i * size + j] += aik * b[k * size + j] }
                        }
                    }
                }
            }
        }
        return product
    }

    private static func multiply(_ a: [Double], vector: [Double], size: Int) -> [Double] {
        (0..<size).map { i in (0..<size).map { a[i * size + $0] * vector[$0] }.reduce(0, +) }
    }
}
