import CZmq

extension ZmqSocket {
    /// Makes this socket a CURVE server that admits only the clients `authenticator` admits
    /// (set before `bind`). Refused with a typed error when the authenticator is stopped or
    /// belongs to another context: in both cases libzmq would let any client in.
    ///
    /// Sets the socket's ZAP domain to the authenticator's. With CURVE, libzmq 4.3 consults the
    /// context's ZAP handler even without a domain; the domain lets the authenticator tell its
    /// own sockets from others of the same context, which it refuses (fail closed).
    public func enableCurveServer(_ keys: CurveKeyPair, authenticatedBy authenticator: ZapAuthenticator) throws(ZapError) {
        guard authenticator.context === context else { throw .differentContext }
        guard authenticator.isRunning else { throw .stopped }
        do throws(ZmqError) {
            try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(authenticator.domain.utf8), "ZMQ_ZAP_DOMAIN")
            try enableCurveServer(keys)
        } catch {
            throw .socket(error)
        }
    }
}
