/// A peer the ZAP authenticator turned away, reported so the server can log it.
public struct ZapRefusal: Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// A CURVE client whose public key is not admitted.
        case keyNotAdmitted
        /// A mechanism other than CURVE (e.g. PLAIN) on a socket of this context.
        case notCurve
        /// A server socket of another ZAP domain: it was not set up through
        /// `ZmqSocket.enableCurveServer(_:authenticatedBy:)`, so it is refused too (fail closed).
        case foreignDomain(String)
        /// The request did not follow ZAP (never sent by libzmq itself).
        case malformedRequest(String)
    }

    /// The peer's address from the ZAP request (its IP address for tcp://).
    public var address: String
    /// The client's public key in Z85, for CURVE.
    public var publicKey: String?
    public var mechanism: String
    public var reason: Reason

    public var description: String {
        let who = "peer \(address.isEmpty ? "(no address)" : address)" + (publicKey.map { " with key \($0)" } ?? "")
        switch reason {
        case .keyNotAdmitted: return "refused \(who): key not admitted"
        case .notCurve: return "refused \(who): mechanism \(mechanism), only CURVE is admitted"
        case let .foreignDomain(domain): return "refused \(who): server socket of ZAP domain \"\(domain)\" is not guarded by this authenticator"
        case let .malformedRequest(reason): return "refused \(who): malformed ZAP request: \(reason)"
        }
    }
}

/// Counters of one authenticator.
public struct ZapStatistics: Sendable, Equatable {
    public var admitted = 0
    public var refused = 0
}

/// The decision on one ZAP request, with no I/O: frames in, reply frames and what to report out.
struct ZapGatekeeper {
    var domain: String
    var admitted: AdmittedKeys

    struct Decision: Equatable {
        var reply: ZapReply
        /// Nil when admitted.
        var refusal: ZapRefusal?
    }

    func decide(_ frames: [[UInt8]]) -> Decision {
        let request: ZapRequest
        do {
            request = try ZapRequest.parse(frames)
        } catch {
            return refuse(error.requestID, code: "500", ZapRefusal(address: error.address, publicKey: nil, mechanism: "",
                                                                  reason: .malformedRequest(error.reason)))
        }
        let key = request.mechanism == "CURVE" && request.credentials.count == 1 ? Z85Key.encode(request.credentials[0]) : nil
        let refusal = ZapRefusal(address: request.address, publicKey: key, mechanism: request.mechanism, reason: .keyNotAdmitted)
        guard request.domain == domain else {
            return refuse(request.requestID, code: "400", with(refusal, .foreignDomain(request.domain)))
        }
        guard request.mechanism == "CURVE" else { return refuse(request.requestID, code: "400", with(refusal, .notCurve)) }
        guard let key else {
            return refuse(request.requestID, code: "500", with(refusal, .malformedRequest("CURVE credentials are not one 32-byte key")))
        }
        guard let name = admitted.name(of: key) else { return refuse(request.requestID, code: "400", refusal) }
        return Decision(reply: ZapReply(requestID: request.requestID, statusCode: "200", statusText: "OK", userID: name), refusal: nil)
    }

    private func refuse(_ requestID: [UInt8], code: String, _ refusal: ZapRefusal) -> Decision {
        Decision(reply: ZapReply(requestID: requestID, statusCode: code, statusText: refusal.description, userID: ""), refusal: refusal)
    }

    private func with(_ refusal: ZapRefusal, _ reason: ZapRefusal.Reason) -> ZapRefusal {
        var changed = refusal
        changed.reason = reason
        return changed
    }
}
