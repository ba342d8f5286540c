import CCRC32C
import Testing
@testable import Wire

@Suite struct CRC32CTests {
    @Test func knownCheckValue() {
        // The CRC-32C check value of the ASCII string "123456789" (RFC 3720, iSCSI).
        #expect(crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(crc32c([]) == 0)
    }

    @Test func hardwareAndPortablePathsAgreeOnEveryLengthAndSplit() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes: [UInt8] = (0..<1000).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 999, 1000] {
            let slice = Array(bytes.prefix(length))
            let fast = crc32c(slice)
            let portable = slice.withUnsafeBytes { scvae_crc32c_portable(0, $0.baseAddress, $0.count) }
            #expect(fast == portable, "length \(length)")
            // Continuing across a split gives the checksum of the whole.
            let half = length / 2
            let split = crc32c(Array(slice[half...]), continuing: crc32c(Array(slice[..<half])))
            #expect(split == fast, "length \(length) split at \(half)")
        }
    }
}
