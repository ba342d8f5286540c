// The LISTA bottleneck of SC-VAE (docs/model.md, "The LISTA bottleneck"), forward and backward, on all latent
// positions at once: every step is one GEMM per image (ImageRows), and the elementwise passes
// run over all rows.
//
// Shape legend:
//   P = positions (batch * Hl * Wl, NHWC order: one row per latent vector)
//   C = latent channels, K = dictionary atoms, T = unrolled ISTA iterations
//   H [P, C]     encoder output h, one row per position
//   D [C, K]     the dictionary `Dict`, row-major
//   G [K, K]     D^T D;  S = I - G / c (symmetric)
//   Y [P, K]     H D, i.e. y = D^T h per position
//   U_t [P, K]   soft-threshold inputs: U_0 = Y, U_t = Z_{t-1} S + Y / c
//   Z_t [P, K]   soft(U_t, theta), t = 0...T; Z_T are the codes
//   hHat [P, C]  Z_T D^T, i.e. D z per position
//
// Row-major with rows as positions turns every matrix-vector product of the maths into a GEMM
// over all positions: y^T = h^T D, (S z)^T = z^T S (S is symmetric), (D z)^T = z^T D^T.

/// LISTA at every latent position. Rows are positions (P = batch * Hl * Wl, NHWC order), C = latent channels, K = atoms.
///
/// `forward` keeps the iterates that `backward` reads, so a backward pass must follow the forward
/// pass of the same inputs (as in llm.c); a second forward overwrites them. Memory: about
/// (T + 5) * maxPositions * K floats (imagenet-f8 at batch 8: P = 8192, K = 512, T = 16: ~350 MB).
public final class LISTA {
    /// The floor that keeps c positive: the forward uses max(c, LISTA.cFloor); dL/dc is 0 when c < cFloor.
    public static let cFloor: Float = 1e-4

    public let channels: Int      // C
    public let atoms: Int         // K
    public let iterations: Int    // T
    public let beta: Float
    public let maxPositions: Int

    /// Z_0 ... Z_T, each [maxPositions, K], stored one after the other. The masks and signs of the
    /// soft threshold are read back from them: z != 0 exactly when |u| > theta, with sign(z) = sign(u).
    private let iterates: UnsafeMutablePointer<Float>
    private let y: UnsafeMutablePointer<Float>          // Y [maxPositions, K]
    private let gram: UnsafeMutablePointer<Float>       // G [K, K]
    private let step: UnsafeMutablePointer<Float>       // S [K, K]
    // Backward workspaces.
    private let gradZ: UnsafeMutablePointer<Float>      // dL/dZ_t [maxPositions, K]
    private let gradU: UnsafeMutablePointer<Float>      // dL/dU_t [maxPositions, K]
    private let gradUSum: UnsafeMutablePointer<Float>   // sum over t >= 1 of dL/dU_t [maxPositions, K]
    private let gradStep: UnsafeMutablePointer<Float>   // dL/dS [K, K]
    private var lastPositions = -1
    private var lastImagePositions = 1
    private var lastC: Float = .nan

    /// Allocates caches for up to `maxPositions` rows.
    public init(config: ModelConfig, maxPositions: Int) {
        precondition(maxPositions > 0, "LISTA needs room for at least one position")
        channels = config.latentChannels
        atoms = config.atoms
        iterations = config.istaIterations
        beta = config.beta
        self.maxPositions = maxPositions
        let rowsByAtoms = maxPositions * config.atoms
        func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: count)
            pointer.initialize(repeating: 0, count: count)
            return pointer
        }
        iterates = allocate((config.istaIterations + 1) * rowsByAtoms)
        y = allocate(rowsByAtoms)
        gram = allocate(config.atoms * config.atoms)
        step = allocate(config.atoms * config.atoms)
        gradZ = allocate(rowsByAtoms)
        gradU = allocate(rowsByAtoms)
        gradUSum = allocate(rowsByAtoms)
        gradStep = allocate(config.atoms * config.atoms)
    }

    /// Z_t, the iterate after t ISTA steps ([maxPositions, K] rows; the first P are in use).
    private func iterate(_ t: Int) -> UnsafeMutablePointer<Float> {
        iterates + t * maxPositions * atoms
    }

    deinit {
        for pointer in [iterates, y, gram, step, gradZ, gradU, gradUSum, gradStep] { pointer.deallocate() }
    }

    /// h: [P, C]; dictionary: [C, K] row-major (the `Dict` tensor); c: the `c` scalar.
    /// Writes hHat [P, C] = D z and codes z [P, K]; keeps what backward needs. Returns the number of exactly-zero codes.
    /// The rows come in images of `imagePositions` rows (P by default): every GEMM whose rows are
    /// positions runs one image at a time, so an image's codes do not depend on the batch.
    public func forward(h: UnsafePointer<Float>, dictionary: UnsafePointer<Float>, c: Float, positions: Int,
                        imagePositions: Int? = nil,
                        hHat: UnsafeMutablePointer<Float>, codes: UnsafeMutablePointer<Float>) -> Int {
        precondition(positions >= 1 && positions <= maxPositions,
                     "LISTA.forward: \(positions) positions, room for 1...\(maxPositions)")
        let C = channels, K = atoms, P = positions
        let images = ImageRows(positions: P, perImage: imagePositions ?? P)
        let cEffective = max(c, Self.cFloor)
        let theta = beta / cEffective
        let inverseC = 1 / cEffective
        lastPositions = P
        lastImagePositions = images.perImage
        lastC = c

        // Y = H D; G = D^T D; S = I - G / c.
        images.each { first, rows in
            BLAS.sgemm(m: rows, n: K, k: C, a: h + first * C, lda: C, b: dictionary, ldb: K, c: y + first * K, ldc: K)
        }
        BLAS.sgemm(transA: true, m: K, n: K, k: C, a: dictionary, lda: K, b: dictionary, ldb: K, c: gram, ldc: K)
        for i in 0..<(K * K) { step[i] = -gram[i] * inverseC }
        for i in 0..<K { step[i * K + i] += 1 }

        // Z_0 = soft(Y, theta): the reference's first step, not textbook ISTA.
        for i in 0..<(P * K) { iterates[i] = softThreshold(y[i], theta) }
        for t in stride(from: 1, through: iterations, by: 1) {
            let previous = iterate(t - 1), current = iterate(t)
            // U_t = Y / c + Z_{t-1} S, built in place, then thresholded.
            for i in 0..<(P * K) { current[i] = y[i] * inverseC }
            images.each { first, rows in
                BLAS.sgemm(m: rows, n: K, k: K, a: previous + first * K, lda: K, b: step, ldb: K, beta: 1,
                           c: current + first * K, ldc: K)
            }
            for i in 0..<(P * K) { current[i] = softThreshold(current[i], theta) }
        }
        // hHat = Z_T D^T; the codes are Z_T.
        let zLast = iterate(iterations)
        images.each { first, rows in
            BLAS.sgemm(transB: true, m: rows, n: C, k: K, a: zLast + first * K, lda: K, b: dictionary, ldb: K,
                       c: hHat + first * C, ldc: C)
        }
        codes.update(from: zLast, count: P * K)
        var zeros = 0
        for i in 0..<(P * K) where codes[i] == 0 { zeros += 1 }
        return zeros
    }

    /// Given dL/dhHat [P, C], ACCUMULATES (+=) dL/dh [P, C], dL/dDict [C, K] and dL/dc (one Float).
    public func backward(dHHat: UnsafePointer<Float>, h: UnsafePointer<Float>, dictionary: UnsafePointer<Float>, c: Float, positions: Int,
                         dH: UnsafeMutablePointer<Float>, dDictionary: UnsafeMutablePointer<Float>, dC: UnsafeMutablePointer<Float>) {
        precondition(positions == lastPositions,
                     "LISTA.backward: \(positions) positions, but the last forward had \(lastPositions)")
        precondition(c.bitPattern == lastC.bitPattern, "LISTA.backward: c = \(c), but the last forward used \(lastC)")
        let C = channels, K = atoms, P = positions
        let images = ImageRows(positions: P, perImage: lastImagePositions)
        let cEffective = max(c, Self.cFloor)
        let inverseC = 1 / cEffective
        // Sums that feed dL/dc, in Double so that their order of magnitude cannot swamp them.
        var gradTheta: Double = 0      // dL/dtheta
        var gradYOverC: Double = 0     // sum over t >= 1 of <dL/dU_t, Y>, the path through y / c
        var gradStepDotGram: Double = 0

        // hHat = Z_T D^T: dZ_T = dHHat D; dD += dHHat^T Z_T.
        let zLast = iterate(iterations)
        images.each { first, rows in
            BLAS.sgemm(m: rows, n: K, k: C, a: dHHat + first * C, lda: C, b: dictionary, ldb: K, c: gradZ + first * K, ldc: K)
        }
        BLAS.sgemm(transA: true, m: C, n: K, k: P, a: dHHat, lda: C, b: zLast, ldb: K,
                   beta: 1, c: dDictionary, ldc: K)

        gradUSum.update(repeating: 0, count: P * K)
        gradStep.update(repeating: 0, count: K * K)
        for t in stride(from: iterations, through: 1, by: -1) {
            gradTheta += maskGradient(gradZ: gradZ, codes: iterate(t), count: P * K, into: gradU)
            var dot: Double = 0
            for i in 0..<(P * K) {
                gradUSum[i] += gradU[i]
                dot += Double(gradU[i]) * Double(y[i])
            }
            gradYOverC += dot
            // U_t = Z_{t-1} S + Y / c: dZ_{t-1} = dU_t S (S symmetric); dS += Z_{t-1}^T dU_t.
            images.each { first, rows in
                BLAS.sgemm(m: rows, n: K, k: K, a: gradU + first * K, lda: K, b: step, ldb: K, c: gradZ + first * K, ldc: K)
            }
            BLAS.sgemm(transA: true, m: K, n: K, k: P, a: iterate(t - 1), lda: K, b: gradU, ldb: K,
                       beta: 1, c: gradStep, ldc: K)
        }
        // Z_0 = soft(Y, theta). dY = dU_0 + (sum over t >= 1 of dU_t) / c, kept in gradU.
        gradTheta += maskGradient(gradZ: gradZ, codes: iterate(0), count: P * K, into: gradU)
        for i in 0..<(P * K) { gradU[i] += gradUSum[i] * inverseC }

        // Y = H D: dH += dY D^T; dD += H^T dY.
        images.each { first, rows in
            BLAS.sgemm(transB: true, m: rows, n: C, k: K, a: gradU + first * K, lda: K, b: dictionary, ldb: K,
                       beta: 1, c: dH + first * C, ldc: C)
        }
        BLAS.sgemm(transA: true, m: C, n: K, k: P, a: h, lda: C, b: gradU, ldb: K,
                   beta: 1, c: dDictionary, ldc: K)

        // S = I - G / c: dG = -dS / c, symmetrised because G = D^T D; dD += D (dG + dG^T).
        for i in 0..<(K * K) { gradStepDotGram += Double(gradStep[i]) * Double(gram[i]) }
        for row in 0..<K {
            for column in row..<K {
                let symmetric = -(gradStep[row * K + column] + gradStep[column * K + row]) * inverseC
                gradStep[row * K + column] = symmetric
                gradStep[column * K + row] = symmetric
            }
        }
        BLAS.sgemm(m: C, n: K, k: K, a: dictionary, lda: K, b: gradStep, ldb: K,
                   beta: 1, c: dDictionary, ldc: K)

        // c enters through theta = beta / c, y / c and S = I - G / c; each derivative is -(.)/c^2.
        guard c >= Self.cFloor else { return }
        let cDouble = Double(cEffective)
        let gradC = -(Double(beta) * gradTheta + gradYOverC - gradStepDotGram) / (cDouble * cDouble)
        dC.pointee += Float(gradC)
    }
}

/// Rows [P, *] in images of `perImage` rows (the last may be shorter): the GEMMs of one image.
/// OpenBLAS's AVX2 sgemm rounds a row differently with the number of rows in the call, so a GEMM
/// over the whole batch would make an image's result depend on the batch it is in.
struct ImageRows {
    let positions: Int
    let perImage: Int

    init(positions: Int, perImage: Int) {
        precondition(perImage >= 1, "images of at least one row")
        self.positions = positions
        self.perImage = perImage
    }

    /// Calls `body(firstRow, rows)` for each image in order.
    func each(_ body: (_ first: Int, _ rows: Int) -> Void) {
        for first in stride(from: 0, to: positions, by: perImage) { body(first, min(perImage, positions - first)) }
    }
}

/// soft(u, t) = sign(u) * max(|u| - t, 0).
@inline(__always)
func softThreshold(_ u: Float, _ threshold: Float) -> Float {
    if u > threshold { return u - threshold }
    if u < -threshold { return u + threshold }
    return 0
}

/// Writes dL/dU = dL/dZ where the threshold let u through (z != 0), else 0, and returns
/// dL/dtheta = -sum sign(u) dL/dZ over those places.
@inline(__always)
private func maskGradient(gradZ: UnsafePointer<Float>, codes: UnsafePointer<Float>, count: Int,
                          into gradU: UnsafeMutablePointer<Float>) -> Double {
    var gradTheta: Double = 0
    for i in 0..<count {
        let z = codes[i]
        if z > 0 {
            gradU[i] = gradZ[i]
            gradTheta -= Double(gradZ[i])
        } else if z < 0 {
            gradU[i] = gradZ[i]
            gradTheta += Double(gradZ[i])
        } else {
            gradU[i] = 0
        }
    }
    return gradTheta
}
