/// Learned ISTA bottleneck (SCVAE.md). PLACEHOLDER written on branch model-kernels against the
/// agreed API so the whole model can be tested; the model-core branch owns the real file and
/// replaces this one at merge.
///
/// Legend: P = positions (rows), C = latent channels, K = atoms, T = iterations.
/// h, hHat [P, C]; D [C, K]; y = h D, u_t, z_t, codes [P, K]; S = I - D^T D / c [K, K].
/// z_0 = soft(y, theta), z_t = soft(z_{t-1} S + y / c, theta), hHat = z_T D^T, theta = beta / c.
public final class LISTA {
    /// c is clamped to at least this (a clamp: below it, c gets no gradient).
    public static let cFloor: Float = 1e-4

    let channels: Int
    let atoms: Int
    let iterations: Int
    let beta: Float
    let maxPositions: Int
    private let y: FloatStorage
    private let u: FloatStorage
    private let s: FloatStorage
    private let dZ: FloatStorage
    private let dU: FloatStorage
    private let dY: FloatStorage
    private let z: FloatStorage
    private let dS: FloatStorage

    public init(config: ModelConfig, maxPositions: Int) {
        channels = config.latentChannels
        atoms = config.atoms
        iterations = config.istaIterations
        beta = config.beta
        self.maxPositions = maxPositions
        let rows = maxPositions * config.atoms
        y = FloatStorage(count: rows)
        u = FloatStorage(count: (config.istaIterations + 1) * rows)
        s = FloatStorage(count: config.atoms * config.atoms)
        dZ = FloatStorage(count: rows)
        dU = FloatStorage(count: rows)
        dY = FloatStorage(count: rows)
        z = FloatStorage(count: rows)
        dS = FloatStorage(count: config.atoms * config.atoms)
    }

    private func soft(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ n: Int, _ theta: Float) {
        for i in 0..<n {
            let v = inp[i]
            out[i] = v > theta ? v - theta : (v < -theta ? v + theta : 0)
        }
    }

    public func forward(h: UnsafePointer<Float>, dictionary: UnsafePointer<Float>, c: Float, positions: Int,
                        hHat: UnsafeMutablePointer<Float>, codes: UnsafeMutablePointer<Float>) -> Int {
        precondition(positions <= maxPositions)
        let (p, cc, k) = (positions, channels, atoms)
        let cEff = max(c, Self.cFloor)
        let theta = beta / cEff
        BLAS.sgemm(m: p, n: k, k: cc, a: h, lda: cc, b: dictionary, ldb: k, c: y.pointer, ldc: k)
        BLAS.sgemm(transA: true, m: k, n: k, k: cc, alpha: -1 / cEff, a: dictionary, lda: k, b: dictionary, ldb: k,
                   c: s.pointer, ldc: k)
        for i in 0..<k { s.pointer[i * k + i] += 1 }
        u.pointer.update(from: y.pointer, count: p * k)
        soft(codes, u.pointer, p * k, theta)
        for t in 0..<iterations {
            let ut = u.pointer + (t + 1) * maxPositions * k
            for i in 0..<(p * k) { ut[i] = y.pointer[i] / cEff }
            BLAS.sgemm(m: p, n: k, k: k, a: codes, lda: k, b: s.pointer, ldb: k, beta: 1, c: ut, ldc: k)
            soft(codes, ut, p * k, theta)
        }
        BLAS.sgemm(transB: true, m: p, n: cc, k: k, a: codes, lda: k, b: dictionary, ldb: k, c: hHat, ldc: cc)
        var zeros = 0
        for i in 0..<(p * k) where codes[i] == 0 { zeros += 1 }
        return zeros
    }

    public func backward(dHHat: UnsafePointer<Float>, h: UnsafePointer<Float>, dictionary: UnsafePointer<Float>,
                         c: Float, positions: Int, dH: UnsafeMutablePointer<Float>,
                         dDictionary: UnsafeMutablePointer<Float>, dC: UnsafeMutablePointer<Float>) {
        let (p, cc, k) = (positions, channels, atoms)
        let n = p * k
        let cEff = max(c, Self.cFloor)
        let theta = beta / cEff
        var dTheta = 0.0, dCDirect = 0.0
        BLAS.sgemm(m: p, n: k, k: cc, a: dHHat, lda: cc, b: dictionary, ldb: k, c: dZ.pointer, ldc: k)
        let uT = u.pointer + iterations * maxPositions * k
        soft(z.pointer, uT, n, theta)
        BLAS.sgemm(transA: true, m: cc, n: k, k: p, a: dHHat, lda: cc, b: z.pointer, ldb: k, beta: 1, c: dDictionary, ldc: k)
        dY.pointer.update(repeating: 0, count: n)
        dS.pointer.update(repeating: 0, count: k * k)
        func maskedGradient(_ ut: UnsafePointer<Float>) {
            for i in 0..<n {
                let v = ut[i]
                if v > theta { dU.pointer[i] = dZ.pointer[i]; dTheta -= Double(dZ.pointer[i]) }
                else if v < -theta { dU.pointer[i] = dZ.pointer[i]; dTheta += Double(dZ.pointer[i]) }
                else { dU.pointer[i] = 0 }
            }
        }
        var t = iterations
        while t >= 1 {
            let ut = u.pointer + t * maxPositions * k
            maskedGradient(ut)
            for i in 0..<n {
                dY.pointer[i] += dU.pointer[i] / cEff
                dCDirect -= Double(dU.pointer[i]) * Double(y.pointer[i]) / Double(cEff * cEff)
            }
            soft(z.pointer, u.pointer + (t - 1) * maxPositions * k, n, theta)
            BLAS.sgemm(transA: true, m: k, n: k, k: p, a: z.pointer, lda: k, b: dU.pointer, ldb: k, beta: 1, c: dS.pointer, ldc: k)
            BLAS.sgemm(transB: true, m: p, n: k, k: k, a: dU.pointer, lda: k, b: s.pointer, ldb: k, c: dZ.pointer, ldc: k)
            t -= 1
        }
        maskedGradient(u.pointer)
        for i in 0..<n { dY.pointer[i] += dU.pointer[i] }
        // S = I - D^T D / c.
        BLAS.sgemm(m: cc, n: k, k: k, alpha: -1 / cEff, a: dictionary, lda: k, b: dS.pointer, ldb: k, beta: 1, c: dDictionary, ldc: k)
        BLAS.sgemm(transB: true, m: cc, n: k, k: k, alpha: -1 / cEff, a: dictionary, lda: k, b: dS.pointer, ldb: k, beta: 1, c: dDictionary, ldc: k)
        var dCFromS = 0.0
        for i in 0..<k {
            for j in 0..<k {
                let identity: Float = i == j ? 1 : 0
                dCFromS += Double(dS.pointer[i * k + j]) * Double(identity - s.pointer[i * k + j])
            }
        }
        dCDirect += dCFromS / Double(cEff)
        dCDirect -= dTheta * Double(beta) / Double(cEff * cEff)
        // y = h D.
        BLAS.sgemm(transB: true, m: p, n: cc, k: k, a: dY.pointer, lda: k, b: dictionary, ldb: k, beta: 1, c: dH, ldc: cc)
        BLAS.sgemm(transA: true, m: cc, n: k, k: p, a: h, lda: cc, b: dY.pointer, ldb: k, beta: 1, c: dDictionary, ldc: k)
        if c >= Self.cFloor { dC[0] += Float(dCDirect) }
    }
}
