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
        case let .call(operation, errno, text): "\(operation) failed: \(text) (errno \(errno))" + (hint.map { "; \($0)" } ?? "")
        case let .timedOut(operation, endpoint, seconds): "\(operation) on \(endpoint) timed out after \(seconds) s"
        case let .tooManyParts(endpoint, parts, limit): "message of \(parts) parts on \(endpoint) discarded (at most \(limit))"
        case let .contextTerminated(operation): "\(operation): ZeroMQ context terminated"
        }
    }

    /// What a person can do about a failed bind, by its errno; nil for other failures.
    public var hint: String? {
        guard case let .call(operation, number, _) = self, operation.hasPrefix("zmq_bind") else { return nil }
        let ipc = operation.contains("ipc://")
        switch number {
        case EADDRINUSE:
            return ipc ? "another process is bound to that path: stop it, or choose another path"
                       : "another process is listening on that port: stop it, or choose another port (port 0 picks a free one)"
        case EACCES:
            return ipc ? "this user cannot create that path: choose a path in a folder it can write"
                       : "ports below 1024 need privileges: choose a port above 1024 (port 0 picks a free one)"
        case EADDRNOTAVAIL, ENODEV:
            return "the address is not one of this machine's: give one of its addresses, or 0.0.0.0 for all of them"
        case ENOENT where ipc:
            return "the folder of that path does not exist: create it, or choose another path"
        case EINVAL, EPROTONOSUPPORT:
            return "not an endpoint ZeroMQ can bind: write tcp://HOST:PORT (PORT from 0 to 65535) or ipc://PATH"
        default:
            return nil
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
