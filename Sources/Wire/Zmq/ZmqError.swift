import CZmq

/// Failures of the ZeroMQ wrapper. Each names the operation and the endpoint when there is one.
public enum ZmqError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A libzmq call failed: `operation` is the call and its argument (e.g. "zmq_bind tcp://..."),
    /// `errno` and `text` are libzmq's error number and `zmq_strerror` text.
    case call(operation: String, errno: Int32, text: String)
    /// Nothing could be received (or sent) on `endpoint` before the deadline of `seconds`.
    case timedOut(operation: String, endpoint: String, seconds: Double)
    /// A message on `endpoint` had `parts` parts, more than the receiver's `limit`. It was read
    /// to its end and discarded, so the socket is still usable: a bad message from a peer
    /// (count and drop it), not a broken transport.
    case tooManyParts(endpoint: String, parts: Int, limit: Int)
    /// The context was terminated while a call was in progress (process shutting down).
    case contextTerminated(operation: String)

    public var description: String {
        switch self {
        case let .call(operation, errno, text): "\(operation) failed: \(text) (errno \(errno))"
        case let .timedOut(operation, endpoint, seconds): "\(operation) on \(endpoint) timed out after \(seconds) s"
        case let .tooManyParts(endpoint, parts, limit): "message of \(parts) parts on \(endpoint) discarded (at most \(limit))"
        case let .contextTerminated(operation): "\(operation): ZeroMQ context terminated"
        }
    }

    /// The error of the last failed libzmq call on this thread.
    static func last(_ operation: @autoclosure () -> String) -> ZmqError {
        let number = zmq_errno()
        if number == ETERM { return .contextTerminated(operation: operation()) }
        let text = zmq_strerror(number).map { String(cString: $0) } ?? "unknown error"
        return .call(operation: operation(), errno: number, text: text)
    }
}
