import Foundation
import Testing
@testable import TensorFiles

/// The event-file encoding, byte by byte against the protobuf and TFRecord rules (the reading
/// back by TensorBoard itself is `ProcessTests.tensorBoardReadsBackEveryScalarOfTheMetrics`).
@Suite struct TensorBoardEventTests {
    @Test func varintsAreSevenBitGroupsLowFirst() {
        #expect(TensorBoardEvents.varint(0) == [0])
        #expect(TensorBoardEvents.varint(1) == [1])
        #expect(TensorBoardEvents.varint(300) == [0xAC, 0x02])
        #expect(TensorBoardEvents.varint(UInt64.max).count == 10)
    }

    @Test func anEventOfOneScalarIsTheProtobufFieldsInOrder() {
        let bytes = TensorBoardEvents.encode(.init(wallTime: 1.5, step: 300, scalars: [.init("a", 2)]))
        let wallTime: [UInt8] = [0x09] + withUnsafeBytes(of: (1.5).bitPattern.littleEndian) { Array($0) }
        let step: [UInt8] = [0x10, 0xAC, 0x02]
        // Value { tag "a" (0x0A 1 'a'); simple_value 2.0 (0x15 + float) } inside Summary field 1, inside Event field 5.
        let value: [UInt8] = [0x0A, 0x01, UInt8(ascii: "a"), 0x15] + withUnsafeBytes(of: Float(2).bitPattern.littleEndian) { Array($0) }
        let summary: [UInt8] = [0x0A, UInt8(value.count)] + value
        #expect(bytes == wallTime + step + [0x2A, UInt8(summary.count)] + summary)
        let version = TensorBoardEvents.encode(.init(wallTime: 0, step: 0, fileVersion: "brain.Event:2"))
        #expect(Array(version.suffix(15)) == [0x1A, 13] + Array("brain.Event:2".utf8), "step 0 is left out, as proto3 does")
    }

    @Test func aRecordIsLengthAndDataEachWithTheirMaskedCRC() {
        // CRC-32C of "123456789" is 0xE3069283 (the standard check value); masked: rotated right by 15, plus 0xA282EAD8.
        let check = Array("123456789".utf8)
        let crc: UInt32 = 0xE306_9283
        let masked = ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
        #expect(TensorBoardEvents.maskedCRC(check) == masked)
        let record = TensorBoardEvents.record(check)
        #expect(record.count == 8 + 4 + 9 + 4)
        #expect(Array(record[0..<8]) == [9, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(record[12..<21]) == check)
        #expect(Array(record[21..<25]) == withUnsafeBytes(of: TensorBoardEvents.maskedCRC(check).littleEndian) { Array($0) })
    }

    @Test func aFileStartsWithItsVersionAndTakesScalars() throws {
        let folder = NSTemporaryDirectory() + "scvae-tb-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = try TensorBoardEventFile(folder: folder, now: Date(timeIntervalSince1970: 1_700_000_000), host: "node", pid: 7)
        #expect(file.path == folder + "/events.out.tfevents.1700000000.node.7")
        try file.append(step: 1, scalars: [.init("train/loss", 0.5)])
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file.path)))
        let first = TensorBoardEvents.record(TensorBoardEvents.encode(.init(wallTime: 1_700_000_000, step: 0, fileVersion: "brain.Event:2")))
        #expect(Array(bytes.prefix(first.count)) == first)
        #expect(bytes.count > first.count + 16)
    }
}
