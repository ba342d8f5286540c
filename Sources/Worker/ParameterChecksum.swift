import Wire

/// CRC32C of the parameter bytes: equal on every rank after every step (docs/decisions.md, "Bit-identical replicas").
public func parameterChecksum(_ parameters: [Float]) -> UInt32 {
    parameters.withUnsafeBytes { crc32c($0) }
}
