/// Element types of safetensors files, spelled as in their headers. Only F32 is used by scvae's
/// own state; the others are recognised so that a file holding them is reported by name rather
/// than refused as malformed, and F64/F16/BF16 can be widened to Float.
public enum TensorDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16
    case I64, I32, I16, I8
    case U64, U32, U16, U8
    case BOOL
    case F8_E4M3, F8_E5M2

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: return 1
        }
    }
}

/// Float widening of half-precision formats, by bit manipulation so it is the same everywhere.
enum HalfFloat {
    /// IEEE 754 binary16 to Float: sign, 5-bit exponent (bias 15), 10-bit fraction.
    static func float(fromF16 bits: UInt16) -> Float {
        let sign = UInt32(bits >> 15) << 31
        let exponent = Int(bits >> 10) & 0x1F
        let fraction = UInt32(bits & 0x3FF)
        if exponent == 0x1F {  // infinity or NaN
            return Float(bitPattern: sign | 0x7F80_0000 | (fraction << 13))
        }
        if exponent == 0 {  // zero or subnormal: fraction * 2^-24
            let magnitude = Float(fraction) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (fraction << 13))
    }

    /// bfloat16 is the top half of a binary32.
    static func float(fromBF16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }
}
