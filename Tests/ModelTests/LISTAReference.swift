@testable import Model
// A naive LISTA, one position at a time with plain loops in Double: the reference that tests hold
// the BLAS version (LISTA.swift) against. Slow on purpose; never used in training.
//
// Shape legend: P = positions, C = latent channels, K = atoms, T = ISTA iterations.
//   h [P, C], dictionary [C, K] row-major, hHat [P, C], codes [P, K].

/// The naive, per-position LISTA in Double. Inputs are the Float tensors the fast version takes.
public struct LISTAReference: Sendable {
    public let channels: Int     // C
    public let atoms: Int        // K
    public let iterations: Int   // T
    public let beta: Double

    public init(config: ModelConfig) {
        channels = config.latentChannels
        atoms = config.atoms
        iterations = config.istaIterations
        beta = Double(config.beta)
    }

    public struct Forward: Sendable {
        public var hHat: [Double]    // [P, C]
        public var codes: [Double]   // [P, K]
        /// The smallest | |u| - theta | over every soft-threshold input: how far the inputs are
        /// from a flip of the mask (tests want this well above float rounding).
        public var thresholdMargin: Double
    }

    public struct Gradients: Sendable {
        public var dH: [Double]           // [P, C]
        public var dDictionary: [Double]  // [C, K]
        public var dC: Double
    }

    /// The soft-threshold inputs U_0 ... U_T of one position, each [K].
    private func thresholdInputs(h: ArraySlice<Float>, dictionary: [Float], c: Double) -> [[Double]] {
        let C = channels, K = atoms
        let theta = beta / c
        var y = [Double](repeating: 0, count: K)
        for k in 0..<K {
            for i in 0..<C { y[k] += Double(dictionary[i * K + k]) * Double(h[h.startIndex + i]) }
        }
        let gram = gramMatrix(dictionary)
        var inputs = [y]
        var z = y.map { soft($0, theta) }
        for _ in 0..<iterations {
            var u = [Double](repeating: 0, count: K)
            for k in 0..<K {
                // (S z)_k = z_k - sum_j G_kj z_j / c
                var gz: Double = 0
                for j in 0..<K { gz += gram[k * K + j] * z[j] }
                u[k] = z[k] - gz / c + y[k] / c
            }
            inputs.append(u)
            z = u.map { soft($0, theta) }
        }
        return inputs
    }

    private func gramMatrix(_ dictionary: [Float]) -> [Double] {
        let C = channels, K = atoms
        var gram = [Double](repeating: 0, count: K * K)
        for a in 0..<K {
            for b in 0..<K {
                var sum: Double = 0
                for i in 0..<C { sum += Double(dictionary[i * K + a]) * Double(dictionary[i * K + b]) }
                gram[a * K + b] = sum
            }
        }
        return gram
    }

    public func forward(h: [Float], dictionary: [Float], c: Float, positions: Int) -> Forward {
        let C = channels, K = atoms
        let cValue = Double(max(c, LISTA.cFloor))
        let theta = beta / cValue
        var result = Forward(hHat: [], codes: [], thresholdMargin: .infinity)
        for p in 0..<positions {
            let inputs = thresholdInputs(h: h[(p * C)..<((p + 1) * C)], dictionary: dictionary, c: cValue)
            for u in inputs {
                for value in u { result.thresholdMargin = min(result.thresholdMargin, abs(abs(value) - theta)) }
            }
            let z = inputs.last!.map { soft($0, theta) }
            result.codes += z
            for i in 0..<C {
                var sum: Double = 0
                for k in 0..<K { sum += Double(dictionary[i * K + k]) * z[k] }
                result.hHat.append(sum)
            }
        }
        return result
    }

    /// The gradients of L = <dHHat, hHat>, written out step by step from the forward's definitions.
    public func backward(dHHat: [Float], h: [Float], dictionary: [Float], c: Float, positions: Int) -> Gradients {
        let C = channels, K = atoms, T = iterations
        let cValue = Double(max(c, LISTA.cFloor))
        let theta = beta / cValue
        let gram = gramMatrix(dictionary)
        var result = Gradients(dH: [], dDictionary: [Double](repeating: 0, count: C * K), dC: 0)
        var gradGram = [Double](repeating: 0, count: K * K)   // dL/dG, summed over positions

        for p in 0..<positions {
            let hRow = h[(p * C)..<((p + 1) * C)]
            let inputs = thresholdInputs(h: hRow, dictionary: dictionary, c: cValue)
            let zs = inputs.map { $0.map { soft($0, theta) } }
            let y = inputs[0]
            // hHat_i = sum_k D_ik z_k
            var gradZ = [Double](repeating: 0, count: K)
            for i in 0..<C {
                let g = Double(dHHat[p * C + i])
                for k in 0..<K {
                    gradZ[k] += g * Double(dictionary[i * K + k])
                    result.dDictionary[i * K + k] += g * zs[T][k]
                }
            }
            var gradY = [Double](repeating: 0, count: K)
            var t = T
            while t >= 0 {
                // z = soft(u, theta)
                var gradU = [Double](repeating: 0, count: K)
                for k in 0..<K where abs(inputs[t][k]) > theta {
                    gradU[k] = gradZ[k]
                    let sign: Double = inputs[t][k] > 0 ? 1 : -1
                    result.dC += -sign * gradZ[k] * (-beta / (cValue * cValue))
                }
                if t == 0 {
                    for k in 0..<K { gradY[k] += gradU[k] }
                    break
                }
                // u_k = z_k - sum_j G_kj z_j / c + y_k / c, with z = z_{t-1}
                let z = zs[t - 1]
                var gradPrevious = [Double](repeating: 0, count: K)
                for k in 0..<K {
                    gradPrevious[k] += gradU[k]
                    gradY[k] += gradU[k] / cValue
                    result.dC += gradU[k] * (-y[k] / (cValue * cValue))
                    for j in 0..<K {
                        gradPrevious[j] -= gradU[k] * gram[k * K + j] / cValue
                        gradGram[k * K + j] -= gradU[k] * z[j] / cValue
                        result.dC += gradU[k] * gram[k * K + j] * z[j] / (cValue * cValue)
                    }
                }
                gradZ = gradPrevious
                t -= 1
            }
            // y_k = sum_i D_ik h_i
            var gradH = [Double](repeating: 0, count: C)
            for i in 0..<C {
                for k in 0..<K {
                    gradH[i] += gradY[k] * Double(dictionary[i * K + k])
                    result.dDictionary[i * K + k] += gradY[k] * Double(hRow[hRow.startIndex + i])
                }
            }
            result.dH += gradH
        }
        // G_ab = sum_i D_ia D_ib
        for i in 0..<C {
            for a in 0..<K {
                for b in 0..<K {
                    let g = gradGram[a * K + b]
                    result.dDictionary[i * K + a] += g * Double(dictionary[i * K + b])
                    result.dDictionary[i * K + b] += g * Double(dictionary[i * K + a])
                }
            }
        }
        if c < LISTA.cFloor { result.dC = 0 }
        return result
    }
}

private func soft(_ u: Double, _ threshold: Double) -> Double {
    u > threshold ? u - threshold : (u < -threshold ? u + threshold : 0)
}
