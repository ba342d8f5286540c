import CZmq
import Foundation

/// A peer that connected to a monitored socket and was dropped during the ZMTP handshake, before
/// any message: for a CURVE server, typically a client without CURVE keys, with the wrong server
/// key, or with a key the authenticator does not admit. Reported by `HandshakeMonitor`.
public struct HandshakeFailure: Sendable, Hashable, CustomStringConvertible {
    /// Why the handshake failed, as libzmq's monitor events say.
    public enum Reason: Sendable, Hashable {
        /// The peer broke the handshake protocol; `code` is a `ZMQ_PROTOCOL_ERROR_*`. A plain-text
        /// client of a CURVE server gives `ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`.
        case protocolError(code: Int32)
        /// The ZAP handler refused the peer (`status` 300, 400 or 500). `ZapAuthenticator`'s
        /// `onRefusal` reports the same peer with its public key.
        case authentication(status: Int32)
        /// The connection ended during the handshake (closed by the peer, a port scan, a client
        /// of another protocol); `errno` as libzmq gives it (0 when it gives none).
        case noDetail(errno: Int32)

        public var kind: Kind {
            switch self {
            case .protocolError: .protocolError
            case .authentication: .authentication
            case .noDetail: .noDetail
            }
        }

        public var description: String {
            switch self {
            case .protocolError(ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH):
                "its security mechanism differs from this socket's (a client without CURVE keys connecting to a CURVE server, or the reverse)"
            case .protocolError(ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC):
                "CURVE could not decrypt its handshake (a client that has another server public key than this server's)"
            case let .protocolError(code) where code & 0x7000_0000 == 0x2000_0000:
                "the authentication handler answered badly (ZAP protocol error 0x\(String(UInt32(bitPattern: code), radix: 16)))"
            case let .protocolError(code):
                "it broke the ZMTP handshake (protocol error 0x\(String(UInt32(bitPattern: code), radix: 16)))"
            case let .authentication(status):
                "the authenticator refused it (ZAP status \(status))"
            case .noDetail(0):
                "the connection closed during the handshake"
            case let .noDetail(number):
                "the connection ended during the handshake (\(String(cString: strerror(number))))"
            }
        }
    }

    /// The three kinds of failure libzmq reports (ZMQ_EVENT_HANDSHAKE_FAILED_*).
    public enum Kind: Sendable, Hashable, CaseIterable {
        case protocolError, authentication, noDetail

        var event: Int32 {
            switch self {
            case .protocolError: ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            case .authentication: ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
            case .noDetail: ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
            }
        }
    }

    /// The monitored socket's endpoint the peer connected to (libzmq's monitor events name the
    /// local end of a connection, not the peer's).
    public var endpoint: String
    /// The peer as "IP:port" (IPv6 as "[IP]:port"), or only "IP" in a report that stands for
    /// several connections; nil when it could not be learnt. Best effort: libzmq 4.3's monitor
    /// does not give it, so the monitor asks the kernel (`getpeername`) for the descriptor of
    /// each accepted connection as soon as it hears of it, which a connection that fails within
    /// microseconds can outrun.
    public var peerAddress: String?
    public var reason: Reason
    /// How many failed handshakes this report stands for: 1, or more in a report that sums up
    /// those held back by the monitor's rate limit (the latest one's reason and endpoint).
    public var count: Int

    public init(endpoint: String, peerAddress: String?, reason: Reason, count: Int = 1) {
        self.endpoint = endpoint
        self.peerAddress = peerAddress
        self.reason = reason
        self.count = count
    }

    /// The peer's host: the address without its port.
    public var peerHost: String? {
        guard let peerAddress else { return nil }
        if peerAddress.hasPrefix("["), let close = peerAddress.firstIndex(of: "]") {
            return String(peerAddress[peerAddress.index(after: peerAddress.startIndex)..<close])
        }
        guard let colon = peerAddress.lastIndex(of: ":"), !peerAddress[..<colon].contains(":") else { return peerAddress }
        return String(peerAddress[..<colon])
    }

    public var description: String {
        let peer = peerAddress.map { "from \($0)" } ?? (count == 1 ? "from an unknown address" : "from several or unknown addresses")
        if count == 1 { return "refused a connection to \(endpoint) \(peer) during the handshake: \(reason.description)" }
        return "refused \(count) more connections to \(endpoint) \(peer) during the handshake since the last report: \(reason.description)"
    }
}

/// Turns the monitor's events, in order, into handshake failures with the peer's address where
/// known. No I/O: the monitor feeds it.
///
/// libzmq 4.3 emits, for an accepted connection, ACCEPTED (value: its descriptor), and, when its
/// handshake fails, HANDSHAKE_FAILED_* (value: the reason) immediately followed by DISCONNECTED
/// (value: the descriptor) from the same I/O thread. A failure is therefore tied to the
/// connection whose disconnection comes right after it; one followed by anything else (or by
/// nothing, `flush`) is reported without an address.
struct HandshakeEventTracker {
    enum Event: Equatable {
        /// `peer` as learnt when the event was read, nil if the connection was gone by then.
        case accepted(descriptor: Int32, peer: String?)
        case handshakeFailed(HandshakeFailure.Reason, endpoint: String)
        case disconnected(descriptor: Int32)
        /// Any other event (handshake succeeded, closed, listening...).
        case other
    }

    private var peers: [Int32: String] = [:]
    private var pending: HandshakeFailure?

    /// The failures `event` completes, in order.
    mutating func take(_ event: Event) -> [HandshakeFailure] {
        var failures: [HandshakeFailure] = []
        if var failure = pending {
            pending = nil
            if case let .disconnected(descriptor) = event {
                failure.peerAddress = peers.removeValue(forKey: descriptor)
                return [failure]
            }
            failures.append(failure)
        }
        switch event {
        case let .accepted(descriptor, peer):
            peers[descriptor] = peer
        case let .handshakeFailed(reason, endpoint):
            pending = HandshakeFailure(endpoint: endpoint, peerAddress: nil, reason: reason)
        case let .disconnected(descriptor):
            peers[descriptor] = nil
        case .other:
            break
        }
        return failures
    }

    /// A failure still waiting for its disconnection, once none came (reported without address).
    mutating func flush() -> [HandshakeFailure] {
        defer { pending = nil }
        return pending.map { [$0] } ?? []
    }
}

/// The monitor's rate limit, with no I/O and no clock of its own: per (endpoint, peer host,
/// reason), the first failure is reported at once and the next ones within `interval` are held
/// back and summed up in one report when the interval ends (`flush`). A flood from many hosts
/// is bounded too: past `maximumKeys` hosts at once, further ones share one entry per reason.
struct HandshakeFailureLimiter {
    struct Key: Hashable {
        var endpoint: String
        var host: String?
        var reason: HandshakeFailure.Reason
    }

    struct Entry {
        var windowEnd: ContinuousClock.Instant
        var heldBack: Int
        var latest: HandshakeFailure
    }

    let interval: Duration
    let maximumKeys: Int
    private(set) var entries: [Key: Entry] = [:]

    init(interval: Duration, maximumKeys: Int = 64) {
        self.interval = interval
        self.maximumKeys = max(1, maximumKeys)
    }

    /// The reports due for `failure` at `now`: itself when it is the first of its kind in the
    /// interval, after the summaries of intervals that have ended.
    mutating func admit(_ failure: HandshakeFailure, at now: ContinuousClock.Instant) -> [HandshakeFailure] {
        var reports = flush(at: now)
        var key = Key(endpoint: failure.endpoint, host: failure.peerHost, reason: failure.reason)
        if entries[key] == nil && entries.count >= maximumKeys { key.host = nil }
        if var entry = entries[key] {
            entry.heldBack += 1
            entry.latest = failure
            entries[key] = entry
            return reports
        }
        entries[key] = Entry(windowEnd: now + interval, heldBack: 0, latest: failure)
        reports.append(failure)
        return reports
    }

    /// Summaries of the intervals that have ended by `now` and held failures back, in a stable
    /// order; the entries of ended intervals are dropped.
    mutating func flush(at now: ContinuousClock.Instant) -> [HandshakeFailure] {
        var reports: [HandshakeFailure] = []
        for (key, entry) in entries where now >= entry.windowEnd {
            entries[key] = nil
            guard entry.heldBack > 0 else { continue }
            var summary = entry.latest
            summary.peerAddress = key.host
            summary.count = entry.heldBack
            reports.append(summary)
        }
        return reports.sorted { $0.description < $1.description }
    }
}
