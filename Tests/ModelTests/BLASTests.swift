import Testing
@testable import Model

@Suite struct BLASTests {
    /// A naive row-major product, the reference for sgemm.
    static func naiveProduct(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int,
                             transA: Bool, transB: Bool) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: Double = 0
                for p in 0..<k {
                    let av = transA ? a[p * m + i] : a[i * k + p]
                    let bv = transB ? b[j * k + p] : b[p * n + j]
                    sum += Double(av) * Double(bv)
                }
                c[i * n + j] = Float(sum)
            }
        }
        return c
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func sgemmMatchesNaiveProduct(transA: Bool, transB: Bool) {
        let m = 7, n = 5, k = 9
        var state: UInt32 = 12345
        func next() -> Float { state = state &* 1664525 &+ 1013904223; return Float(state >> 8) / Float(1 << 24) - 0.5 }
        let a = (0..<(m * k)).map { _ in next() }
        let b = (0..<(k * n)).map { _ in next() }
        var c = [Float](repeating: 0, count: m * n)
        BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k,
                   a: a, lda: transA ? m : k, b: b, ldb: transB ? k : n, c: &c, ldc: n)
        let expected = Self.naiveProduct(a, b, m: m, n: n, k: k, transA: transA, transB: transB)
        let maxDiff = zip(c, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(maxDiff < 1e-5, "max |sgemm - naive| = \(maxDiff); first values \(Array(c.prefix(4))) vs \(Array(expected.prefix(4)))")
    }
}
