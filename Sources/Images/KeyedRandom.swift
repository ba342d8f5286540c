import TensorFiles
/// Counter-based random numbers for the data pipeline. Every value is a pure function of a key
/// and a position, so a sample's augmentation and an epoch's permutation are the same on every
/// rank, every platform and after every resume, whatever was drawn before. (Named apart from
/// Model's `CounterRandom`, whose chain differs, so code importing both stays unambiguous.)
///
/// The generator is SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014), in the form used by Java's SplittableRandom and many libraries:
///
///     state_i  = key + i * 0x9E3779B97F4A7C15                (i = 1, 2, 3, ...; wrapping)
///     mix(z)   = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
///                z ^= z >>27; z *= 0x94D049BB133111EB; z ^= z >> 31
///     output_i = mix(state_i)
///
/// Keys are derived from several words by absorbing them one at a time:
///
///     key(w_1, ..., w_n) = h_n,  h_0 = 0,  h_k = mix(h_{k-1} + 0x9E3779B97F4A7C15 ^ w_k)
///
/// (`+` before `^`, all arithmetic on UInt64 with wrapping). Only wrapping 64-bit integer
/// arithmetic is involved, so the numbers are identical on every platform.
public struct KeyedRandom: Sendable, Equatable {
    public static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// The key the stream was created with.
    public let key: UInt64
    /// How many values have been drawn.
    public private(set) var counter: UInt64 = 0

    /// The SplitMix64 output function (a bijection of UInt64).
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A key absorbing `words` in order.
    public static func key(_ words: [UInt64]) -> UInt64 {
        var h: UInt64 = 0
        for word in words { h = mix((h &+ golden) ^ word) }
        return h
    }

    public init(key: UInt64) {
        self.key = key
    }

    /// The stream of one purpose within a run: `(purpose, seed, words...)` keyed as documented.
    public init(_ purpose: Purpose, seed: UInt64, _ words: Int...) {
        self.init(key: KeyedRandom.key([purpose.rawValue, seed] + words.map { UInt64(bitPattern: Int64($0)) }))
    }

    /// Separates the streams of different uses of the same seed.
    public enum Purpose: UInt64, Sendable {
        /// The permutation of epoch e: words (epoch).
        case permutation = 1
        /// The augmentation of one sample: words (epoch, sample index).
        case augmentation = 2
        /// Built-in sample data: words (image index).
        case sampleData = 3
        /// The order of the shards in epoch e, with shard windows: words (epoch).
        case shardOrder = 4
        /// The order of the samples within window w of epoch e: words (epoch, w).
        case windowShuffle = 5
    }

    /// The value at position `index` (1-based) of the stream, without advancing.
    public func value(at index: UInt64) -> UInt64 {
        KeyedRandom.mix(key &+ index &* KeyedRandom.golden)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        counter &+= 1
        return value(at: counter)
    }

    /// A uniform integer in 0..<bound (bound > 0), without modulo bias: Lemire's multiply-shift
    /// with rejection ("Fast random integer generation in an interval", 2019).
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "KeyedRandom.below: bound must be positive")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold {
                product = next().multipliedFullWidth(by: range)
            }
        }
        return Int(product.high)
    }

    /// A fair coin from the top bit of the next value.
    public mutating func coin() -> Bool {
        next() >> 63 == 1
    }

    /// A uniform Float in [0, 1) from the top 24 bits of the next value.
    public mutating func unitFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }
}
