import CZmq

/// A received message part that owns its libzmq buffer, so large data can be read in place
/// (no copy into a Swift array). Belongs to the thread that received it.
public final class ZmqMessage {
    let pointer: UnsafeMutablePointer<zmq_msg_t>

    init() {
        pointer = .allocate(capacity: 1)
        zmq_msg_init(pointer)
    }

    /// Allocates the `zmq_msg_t` only; the caller initialises it with one `zmq_msg_init_*`.
    init(uninitialized: Void) {
        pointer = .allocate(capacity: 1)
    }

    deinit {
        zmq_msg_close(pointer)
        pointer.deallocate()
    }

    public var count: Int { zmq_msg_size(pointer) }

    /// Whether more parts of the same multipart message follow.
    public var hasMore: Bool { zmq_msg_more(pointer) != 0 }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: zmq_msg_data(pointer), count: zmq_msg_size(pointer)))
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// A property libzmq attaches to a received message, e.g. "Peer-Address" (the sending peer's
    /// IP address on TCP connections); nil when there is none.
    public func property(_ name: String) -> String? {
        guard let value = zmq_msg_gets(pointer, name) else { return nil }
        return String(cString: value)
    }
}
