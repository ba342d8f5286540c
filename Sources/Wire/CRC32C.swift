import CCRC32C

/// CRC-32C (Castagnoli) of a byte buffer, the checksum of every frame payload.
public func crc32c(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    scvae_crc32c(crc, bytes.baseAddress, bytes.count)
}

/// CRC-32C of an array of bytes.
public func crc32c(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBytes { crc32c($0, continuing: crc) }
}
