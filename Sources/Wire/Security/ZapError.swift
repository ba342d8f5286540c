/// Failures of the ZAP authenticator and of guarding a socket with it.
public enum ZapError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Another ZAP handler is already bound in this context (libzmq allows one per context).
    case handlerAlreadyBound
    /// Creating, binding or setting up a socket failed.
    case socket(ZmqError)
    /// The authenticator's thread did not report ready within `seconds`.
    case didNotStart(seconds: Double)
    /// The authenticator was stopped. libzmq lets every CURVE client in when no ZAP handler is
    /// bound, so a socket is never guarded by a stopped authenticator.
    case stopped
    /// The socket was made from another context than the authenticator's. ZAP handlers are per
    /// context: that socket would never consult this one, and would admit any client.
    case differentContext
    /// A ZAP domain must be 1 to 254 bytes (libzmq treats an empty domain as "no ZAP").
    case invalidDomain(String)

    public var description: String {
        switch self {
        case .handlerAlreadyBound: "a ZAP handler is already bound in this ZeroMQ context"
        case let .socket(error): "ZAP: \(error)"
        case let .didNotStart(seconds): "the ZAP authenticator did not start within \(seconds) s"
        case .stopped: "the ZAP authenticator is stopped: a CURVE server it guarded would admit any client"
        case .differentContext: "the socket and the ZAP authenticator belong to different ZeroMQ contexts"
        case let .invalidDomain(domain): "ZAP domain \"\(domain)\" must be 1 to 254 bytes"
        }
    }
}
