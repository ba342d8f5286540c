import CZmq

/// A ZeroMQ context: I/O threads shared by the sockets made from it. Thread-safe (libzmq
/// contexts are); terminated when the last socket and the last reference are gone.
public final class ZmqContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// - Parameter ioThreads: libzmq I/O threads. One moves about 1 GB/s; the ring's benchmark
    ///   on two cores uses one.
    public init(ioThreads: Int = 1) throws(ZmqError) {
        guard let handle = zmq_ctx_new() else { throw .last("zmq_ctx_new") }
        self.handle = handle
        if zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(clamping: max(ioThreads, 1))) != 0 {
            zmq_ctx_term(handle)
            throw .last("zmq_ctx_set ZMQ_IO_THREADS")
        }
    }

    deinit {
        // Every socket holds a reference to its context and closes itself with a bounded
        // linger before releasing it, so termination here cannot wait forever.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}
