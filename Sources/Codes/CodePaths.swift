import Foundation

/// Codes between two images' codes, for `scvae interpolate`.
public enum CodePaths {
    /// `steps` codes from `a` to `b` (both ends included, exactly `a` and `b`): along the straight
    /// line, or along the great circle (`slerp`) with the length interpolated linearly.
    public static func between(_ a: [Float], _ b: [Float], steps: Int, slerp: Bool) -> [[Float]] {
        precondition(a.count == b.count && steps >= 2)
        var path = [a]
        for i in 1..<(steps - 1) {
            let t = Double(i) / Double(steps - 1)
            path.append(slerp ? spherical(a, b, t) : linear(a, b, t))
        }
        path.append(b)
        return path
    }

    static func linear(_ a: [Float], _ b: [Float], _ t: Double) -> [Float] {
        zip(a, b).map { Float((1 - t) * Double($0) + t * Double($1)) }
    }

    /// Slerp of the directions of the flattened codes; the norm goes linearly from |a| to |b|.
    /// Falls back to the line when either is zero or they are (anti)parallel.
    static func spherical(_ a: [Float], _ b: [Float], _ t: Double) -> [Float] {
        var dot = 0.0, aa = 0.0, bb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            aa += Double(x) * Double(x)
            bb += Double(y) * Double(y)
        }
        let (na, nb) = (aa.squareRoot(), bb.squareRoot())
        guard na > 0, nb > 0 else { return linear(a, b, t) }
        let cosine = min(max(dot / (na * nb), -1), 1)
        let omega = Foundation.acos(cosine)
        let s = Foundation.sin(omega)
        guard s > 1e-6 else { return linear(a, b, t) }
        let wa = Foundation.sin((1 - t) * omega) / s / na, wb = Foundation.sin(t * omega) / s / nb
        let norm = (1 - t) * na + t * nb
        return zip(a, b).map { Float(norm * (wa * Double($0) + wb * Double($1))) }
    }
}
