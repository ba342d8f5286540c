import Foundation
@testable import Model

/// Deterministic pseudo-random numbers for kernel tests (a 64-bit LCG; quality is not the point).
struct KernelRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed &* 6364136223846793005 &+ 1442695040888963407 }

    /// Uniform in [-1, 1).
    mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 23) - 1
    }

    mutating func array(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in next() * scale }
    }

    mutating func index(_ count: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int(state >> 33) % count
    }
}

/// Largest absolute elementwise difference.
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

func maxAbs(_ a: [Float]) -> Float { a.map(abs).max() ?? 0 }

/// A fixed-address float buffer (layers keep pointers to their inputs between forward and backward).
final class PinnedFloats {
    let buffer: UnsafeMutableBufferPointer<Float>

    init(_ values: [Float]) {
        buffer = .allocate(capacity: max(1, values.count))
        buffer.initialize(repeating: 0)
        for (i, v) in values.enumerated() { buffer[i] = v }
    }

    convenience init(zeros count: Int) { self.init([Float](repeating: 0, count: count)) }

    deinit { buffer.deallocate() }

    var pointer: UnsafeMutablePointer<Float> { buffer.baseAddress! }
    var array: [Float] { Array(buffer) }
    func zero() { buffer.update(repeating: 0) }
}

/// Builds a small ParameterLayout entry by entry, for testing single layers.
struct TestLayoutBuilder {
    var entries: [ParameterEntry] = []
    var next = 0

    mutating func add(_ name: String, _ shape: [Int]) {
        entries.append(ParameterEntry(name: name, shape: shape, offset: next))
        next += shape.reduce(1, *)
    }

    mutating func conv(_ prefix: String, _ cin: Int, _ cout: Int, kernel: Int) {
        add("\(prefix).weight", [cout, cin, kernel, kernel])
        add("\(prefix).bias", [cout])
    }

    mutating func norm(_ prefix: String, _ channels: Int) {
        add("\(prefix).weight", [channels])
        add("\(prefix).bias", [channels])
    }

    var layout: ParameterLayout { ParameterLayout(entries: entries) }
}

/// Random parameters for a layout: conv weights Xavier-uniform, biases and norms perturbed around
/// their PyTorch initial values so that every gradient path is exercised.
func randomParameters(_ layout: ParameterLayout, seed: UInt64, biasScale: Float = 0.1) -> [Float] {
    var random = KernelRandom(seed: seed)
    var values = [Float](repeating: 0, count: layout.totalCount)
    for entry in layout.entries {
        let isNorm = entry.name.contains("norm")
        for i in entry.range {
            if entry.shape.count == 4 {
                let receptive = entry.shape[2] * entry.shape[3]
                let bound = (6 / Float((entry.shape[0] + entry.shape[1]) * receptive)).squareRoot()
                values[i] = random.next() * bound
            } else if isNorm && entry.name.hasSuffix(".weight") {
                values[i] = 1 + random.next() * 0.2
            } else {
                values[i] = random.next() * biasScale
            }
        }
    }
    return values
}

/// Central finite differences of a scalar function of one float, in Double.
func centralDifference(_ value: UnsafeMutablePointer<Float>, epsilon: Float, _ loss: () -> Double) -> Double {
    let saved = value.pointee
    value.pointee = saved + epsilon
    let plus = loss()
    value.pointee = saved - epsilon
    let minus = loss()
    value.pointee = saved
    return (plus - minus) / (Double((saved + epsilon) - (saved - epsilon)))
}

/// One finite-difference comparison, for readable failure messages.
struct GradientCheck: CustomStringConvertible {
    var name: String
    var index: Int
    var analytic: Double
    var numeric: Double
    var description: String { "\(name)[\(index)]: analytic \(analytic) numeric \(numeric)" }
}

/// Checks analytic against numeric: |a - n| <= relative * |n| + absolute.
func gradientMismatches(_ checks: [GradientCheck], relative: Double, absolute: Double) -> [GradientCheck] {
    checks.filter { abs($0.analytic - $0.numeric) > relative * abs($0.numeric) + absolute }
}
