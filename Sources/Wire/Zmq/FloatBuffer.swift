/// A heap buffer of float32 with a stable address, for zero-copy sends that outlive the
/// caller's scope: `ZmqSocket.sendZeroCopy(_:range:...)` keeps the buffer alive until libzmq
/// releases it. Like a socket it belongs to one thread at a time; it is `@unchecked Sendable`
/// only so the release callback (on libzmq's I/O thread) may hold the last reference.
public final class FloatBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutableBufferPointer<Float>

    public init(count: Int, repeating value: Float = 0) {
        pointer = .allocate(capacity: max(count, 0))
        pointer.initialize(repeating: value)
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        _ = pointer.initialize(from: values)
    }

    deinit { pointer.deallocate() }

    public var count: Int { pointer.count }
    public var array: [Float] { Array(pointer) }
}

extension ZmqSocket {
    /// Sends `buffer[range]` without copying; the buffer stays alive until libzmq releases the
    /// bytes (then `onRelease`, if any, runs on libzmq's thread). Do not write to the range
    /// before the release.
    public func sendZeroCopy(_ buffer: FloatBuffer, range: Range<Int>? = nil, more: Bool = false,
                             deadline: ContinuousClock.Instant,
                             onRelease: (@Sendable () -> Void)? = nil) throws(ZmqError) {
        let slice = range.map { $0.clamped(to: 0..<buffer.count) } ?? 0..<buffer.count
        let bytes = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer.pointer[slice]))
        try sendZeroCopy(bytes, more: more, deadline: deadline) {
            withExtendedLifetime(buffer) { onRelease?() }
        }
    }
}
