import CCRC32C
import Foundation

/// TensorBoard's event files, written by hand (docs/observability.md has the format): a file is a
/// sequence of TFRecords, each `length` (UInt64, little-endian), the masked CRC-32C of those 8
/// bytes (UInt32), `length` bytes of a serialized `Event` protobuf, and the masked CRC-32C of
/// those. The first event names the file version ("brain.Event:2"); each further one holds a
/// `Summary` of scalar values at a step. Only the protobuf fields TensorBoard reads for scalars
/// are written:
///
///     Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
///     Summary { repeated Value value = 1; }
///     Value   { string tag = 1; float simple_value = 2; Image image = 4; }
///     Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
public enum TensorBoardEvents {
    /// One event: at `step`, `wallTime` seconds since 1970, either the file version or scalars.
    public struct Event: Equatable, Sendable {
        public var wallTime: Double
        public var step: Int64
        public var fileVersion: String?
        public var scalars: [Scalar]
        public var images: [Image]

        public init(wallTime: Double, step: Int64, fileVersion: String? = nil, scalars: [Scalar] = [], images: [Image] = []) {
            self.wallTime = wallTime
            self.step = step
            self.fileVersion = fileVersion
            self.scalars = scalars
            self.images = images
        }
    }

    /// An image summary: a PNG (or JPEG) with its size; RGB.
    public struct Image: Equatable, Sendable {
        public var tag: String
        public var width: Int
        public var height: Int
        public var encoded: [UInt8]

        public init(tag: String, width: Int, height: Int, encoded: [UInt8]) {
            self.tag = tag
            self.width = width
            self.height = height
            self.encoded = encoded
        }
    }

    public struct Scalar: Equatable, Sendable {
        public var tag: String
        public var value: Float

        public init(_ tag: String, _ value: Float) {
            self.tag = tag
            self.value = value
        }
    }

    public static let fileVersion = "brain.Event:2"

    /// The serialized `Event` protobuf.
    public static func encode(_ event: Event) -> [UInt8] {
        var out: [UInt8] = []
        out.append(fieldKey(1, wireType: 1))
        out += littleEndian(event.wallTime.bitPattern)
        if event.step != 0 {
            out.append(fieldKey(2, wireType: 0))
            out += varint(UInt64(bitPattern: event.step))
        }
        if let version = event.fileVersion {
            out += lengthDelimited(3, Array(version.utf8))
        }
        if !event.scalars.isEmpty || !event.images.isEmpty {
            var summary: [UInt8] = []
            for scalar in event.scalars {
                var value = lengthDelimited(1, Array(scalar.tag.utf8))
                value.append(fieldKey(2, wireType: 5))
                value += littleEndian(scalar.value.bitPattern)
                summary += lengthDelimited(1, value)
            }
            for image in event.images {
                var fields: [UInt8] = [fieldKey(1, wireType: 0)] + varint(UInt64(image.height))
                fields += [fieldKey(2, wireType: 0)] + varint(UInt64(image.width))
                fields += [fieldKey(3, wireType: 0)] + varint(3)  // RGB
                fields += lengthDelimited(4, image.encoded)
                summary += lengthDelimited(1, lengthDelimited(1, Array(image.tag.utf8)) + lengthDelimited(4, fields))
            }
            out += lengthDelimited(5, summary)
        }
        return out
    }

    /// `data` framed as one TFRecord.
    public static func record(_ data: [UInt8]) -> [UInt8] {
        let length = littleEndian(UInt64(data.count))
        return length + littleEndian(maskedCRC(length)) + data + littleEndian(maskedCRC(data))
    }

    /// TFRecord's masked CRC-32C: the checksum rotated right by 15 bits plus a constant, so that
    /// a record holding checksums does not checksum to something regular.
    public static func maskedCRC(_ bytes: [UInt8]) -> UInt32 {
        let crc = bytes.withUnsafeBytes { scvae_crc32c(0, $0.baseAddress, $0.count) }
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    static func fieldKey(_ number: UInt64, wireType: UInt64) -> UInt8 { UInt8(number << 3 | wireType) }

    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        repeat {
            let low = UInt8(value & 0x7F)
            value >>= 7
            out.append(value == 0 ? low : low | 0x80)
        } while value != 0
        return out
    }

    static func lengthDelimited(_ number: UInt64, _ bytes: [UInt8]) -> [UInt8] {
        [fieldKey(number, wireType: 2)] + varint(UInt64(bytes.count)) + bytes
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}

/// One event file in a folder TensorBoard watches (`tensorboard --logdir FOLDER`), named
/// `events.out.tfevents.SECONDS.HOST.PID` as TensorBoard expects; each process run writes a file
/// of its own, and TensorBoard shows them together. Every event is written and flushed at once.
public final class TensorBoardEventFile {
    public let path: String
    private let handle: FileHandle

    public enum Failure: Error, CustomStringConvertible {
        case cannotOpen(path: String, reason: String)
        case cannotWrite(path: String, reason: String)

        public var description: String {
            switch self {
            case let .cannotOpen(path, reason): "cannot create the TensorBoard event file \(path): \(reason)"
            case let .cannotWrite(path, reason): "cannot append to the TensorBoard event file \(path): \(reason)"
            }
        }
    }

    /// Creates the folder and a new event file in it, starting with the file-version event.
    public init(folder: String, now: Date = Date(), host: String = ProcessInfo.processInfo.hostName,
                pid: Int32 = getpid()) throws(Failure) {
        let seconds = Int(now.timeIntervalSince1970)
        path = folder + "/events.out.tfevents.\(seconds).\(host).\(pid)"
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw Failure.cannotOpen(path: path, reason: "cannot create the file")
            }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .cannotOpen(path: path, reason: "\(error)")
        }
        try append(TensorBoardEvents.Event(wallTime: now.timeIntervalSince1970, step: 0, fileVersion: TensorBoardEvents.fileVersion))
    }

    deinit { try? handle.close() }

    public func append(_ event: TensorBoardEvents.Event) throws(Failure) {
        do {
            try handle.write(contentsOf: TensorBoardEvents.record(TensorBoardEvents.encode(event)))
        } catch {
            throw .cannotWrite(path: path, reason: "\(error)")
        }
    }

    /// Scalars (and images) at `step`, stamped with the time now.
    public func append(step: Int, scalars: [TensorBoardEvents.Scalar], images: [TensorBoardEvents.Image] = [], now: Date = Date()) throws(Failure) {
        try append(TensorBoardEvents.Event(wallTime: now.timeIntervalSince1970, step: Int64(step), scalars: scalars, images: images))
    }
}
