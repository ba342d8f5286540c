/// A counter-based random generator: every value is a pure function of (seed, stream, counter).
///
/// Why counter-based: a value does not depend on how many values were drawn before it, by which
/// thread, or in which order, so the same seed gives bit-identical parameters (and augmentations)
/// on any machine and any thread count, and any element can be regenerated on its own.
///
/// The hash is SplitMix64's finaliser (Steele, Lea, Flood 2014), applied in a chain:
///   bits(seed, stream, counter) = mix(mix(mix(seed) + stream) + counter)   (wrapping UInt64 adds)
/// Uniform values take the top 24 bits (Float) or 53 bits (Double), so they are exact and in [0, 1).
public struct CounterRandom: Sendable, Equatable, Hashable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// SplitMix64's output function: a bijective avalanche mix of one 64-bit word.
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 64 random bits for element `counter` of stream `stream`.
    @inline(__always)
    public func bits(stream: UInt64, counter: UInt64) -> UInt64 {
        Self.mix(Self.mix(Self.mix(seed) &+ stream) &+ counter)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public func unitDouble(stream: UInt64, counter: UInt64) -> Double {
        Double(bits(stream: stream, counter: counter) >> 11) * 0x1p-53
    }

    /// Uniform in [0, 1) with 24 random bits.
    public func unitFloat(stream: UInt64, counter: UInt64) -> Float {
        Float(bits(stream: stream, counter: counter) >> 40) * 0x1p-24
    }

    /// A stable stream number for a name (FNV-1a 64 over its UTF-8 bytes), so that a tensor's
    /// values follow its name, not its position in a layout.
    public static func stream(named name: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
