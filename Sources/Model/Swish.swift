#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// swish(x) = x * sigmoid(x), elementwise over n floats.
///
/// The model uses it fused into GroupNorm (GroupNorm.swift); this standalone pair exists for
/// tests and for any swish not preceded by a norm.
enum Swish {
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { out[i] = inp[i] / (1 + expf(-inp[i])) }
    }

    /// dInput += dOut * swish'(x), swish'(x) = s + x * s * (1 - s) with s = sigmoid(x).
    static func backward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = inp[i]
            let s = 1 / (1 + expf(-x))
            dInput[i] += dOut[i] * s * (1 + x * (1 - s))
        }
    }
}
