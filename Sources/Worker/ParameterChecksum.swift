import Wire

/// CRC32C of the parameter bytes: equal on every rank after every step (DESIGN invariant 3).
public func parameterChecksum(_ parameters: [Float]) -> UInt32 {
    parameters.withUnsafeBytes { crc32c($0) }
}
