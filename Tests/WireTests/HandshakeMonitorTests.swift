#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import Wire

/// libzmq's ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: a plain-text peer of a CURVE socket.
private let mechanismMismatch: Int32 = 0x1100_0002

/// The monitor's logic without sockets: tying failures to connections, and the rate limit.
@Suite struct HandshakeMonitorLogicTests {
    let endpoint = "tcp://10.0.0.9:5555"
    let mismatch = HandshakeFailure.Reason.protocolError(code: mechanismMismatch)

    func failure(from peer: String?, _ reason: HandshakeFailure.Reason? = nil) -> HandshakeFailure {
        HandshakeFailure(endpoint: endpoint, peerAddress: peer, reason: reason ?? mismatch)
    }

    @Test func aFailureIsTiedToTheConnectionWhoseDisconnectionFollowsIt() {
        var tracker = HandshakeEventTracker()
        #expect(tracker.take(.accepted(descriptor: 7, peer: "10.0.0.1:40000")).isEmpty)
        #expect(tracker.take(.accepted(descriptor: 8, peer: "10.0.0.2:40001")).isEmpty)
        #expect(tracker.take(.handshakeFailed(mismatch, endpoint: endpoint)).isEmpty, "waits for its disconnection")
        #expect(tracker.take(.disconnected(descriptor: 8)) == [failure(from: "10.0.0.2:40001")])
        // Descriptor 8 is free again; a new connection on it is another peer.
        #expect(tracker.take(.accepted(descriptor: 8, peer: "10.0.0.3:40002")).isEmpty)
        #expect(tracker.take(.handshakeFailed(.noDetail(errno: 0), endpoint: endpoint)).isEmpty)
        #expect(tracker.take(.disconnected(descriptor: 8)) == [failure(from: "10.0.0.3:40002", .noDetail(errno: 0))])
    }

    @Test func aFailureNotFollowedByItsDisconnectionHasNoAddress() {
        var tracker = HandshakeEventTracker()
        _ = tracker.take(.accepted(descriptor: 7, peer: "10.0.0.1:40000"))
        _ = tracker.take(.handshakeFailed(.authentication(status: 400), endpoint: endpoint))
        #expect(tracker.take(.other) == [failure(from: nil, .authentication(status: 400))])
        _ = tracker.take(.handshakeFailed(mismatch, endpoint: endpoint))
        #expect(tracker.flush() == [failure(from: nil)])
        #expect(tracker.flush().isEmpty)
        // A connection whose peer could not be learnt (closed before its accept was read).
        _ = tracker.take(.accepted(descriptor: 9, peer: nil))
        _ = tracker.take(.handshakeFailed(mismatch, endpoint: endpoint))
        #expect(tracker.take(.disconnected(descriptor: 9)) == [failure(from: nil)])
    }

    @Test func theFirstFailureOfAKindIsReportedAtOnceAndTheRestSummedUpPerInterval() {
        var limiter = HandshakeFailureLimiter(interval: .seconds(10))
        let start = ContinuousClock.now
        let first = failure(from: "10.0.0.1:1000")
        #expect(limiter.admit(first, at: start) == [first])
        #expect(limiter.admit(failure(from: "10.0.0.1:1001"), at: start + .seconds(1)).isEmpty)
        #expect(limiter.admit(failure(from: "10.0.0.1:1002"), at: start + .seconds(2)).isEmpty)
        let otherHost = failure(from: "10.0.0.2:7")
        #expect(limiter.admit(otherHost, at: start + .seconds(3)) == [otherHost], "another host is another kind")
        let otherReason = failure(from: "10.0.0.1:1003", .noDetail(errno: 0))
        #expect(limiter.admit(otherReason, at: start + .seconds(3)) == [otherReason], "so is another reason")

        #expect(limiter.flush(at: start + .seconds(9)).isEmpty, "the interval has not ended")
        let summary = limiter.flush(at: start + .seconds(10))
        #expect(summary == [HandshakeFailure(endpoint: endpoint, peerAddress: "10.0.0.1", reason: mismatch, count: 2)])
        #expect(summary.first?.description == "refused 2 more connections to \(endpoint) from 10.0.0.1 during the handshake since the last report: \(mismatch.description)")
        #expect(limiter.flush(at: start + .seconds(13)).isEmpty, "intervals that held nothing back end quietly")
        #expect(limiter.entries.isEmpty)
        let again = failure(from: "10.0.0.1:1004")
        #expect(limiter.admit(again, at: start + .seconds(14)) == [again], "a new interval reports at once again")
    }

    @Test func aFloodFromManyHostsSharesOneEntryPerReason() {
        var limiter = HandshakeFailureLimiter(interval: .seconds(10), maximumKeys: 2)
        let start = ContinuousClock.now
        for host in 1...2 {
            let each = failure(from: "10.0.0.\(host):1")
            #expect(limiter.admit(each, at: start) == [each])
        }
        let third = failure(from: "10.0.0.3:1")
        #expect(limiter.admit(third, at: start) == [third], "the first host past the bound is still reported")
        for host in 4...9 { #expect(limiter.admit(failure(from: "10.0.0.\(host):1"), at: start).isEmpty) }
        #expect(limiter.entries.count == 3)
        let summary = limiter.flush(at: start + .seconds(10))
        #expect(summary == [HandshakeFailure(endpoint: endpoint, peerAddress: nil, reason: mismatch, count: 6)])
        #expect(summary.first?.description.contains("from several or unknown addresses") == true)
    }

    @Test func descriptionsSayWhatHappenedAndWhoTheyWereFrom() {
        #expect(failure(from: "10.0.0.1:4000").description
                == "refused a connection to \(endpoint) from 10.0.0.1:4000 during the handshake: its security mechanism differs from this socket's (a client without CURVE keys connecting to a CURVE server, or the reverse)")
        #expect(failure(from: nil, .authentication(status: 400)).description.contains("from an unknown address"))
        #expect(HandshakeFailure.Reason.authentication(status: 400).description == "the authenticator refused it (ZAP status 400)")
        #expect(HandshakeFailure.Reason.protocolError(code: 0x1100_0001).description.contains("another server public key"))
        #expect(HandshakeFailure.Reason.protocolError(code: 0x1000_0001).description.contains("0x10000001"))
        #expect(failure(from: "[::1]:4000").peerHost == "::1")
        #expect(failure(from: "10.0.0.1:4000").peerHost == "10.0.0.1")
        #expect(failure(from: "10.0.0.1").peerHost == "10.0.0.1")
    }
}

/// The monitor with real sockets on 127.0.0.1 (in the serialized socket suite).
extension SocketTests {
    /// A CURVE ROUTER on 127.0.0.1 (port chosen by the kernel), monitored from before its bind.
    struct MonitoredCurveServer {
        let context: ZmqContext
        let server: ZmqSocket
        let keys: CurveKeyPair
        let monitor: HandshakeMonitor
        let endpoint: String
        let failures = FailureLog()

        init(authenticator: (ZmqContext) throws -> ZapAuthenticator? = { _ in nil }) throws {
            context = try ZmqContext()
            keys = try CurveKeyPair.generate()
            server = try ZmqSocket(context, type: .router)
            if let guardian = try authenticator(context) {
                try server.enableCurveServer(keys, authenticatedBy: guardian)
            } else {
                try server.enableCurveServer(keys)
            }
            let log = failures
            monitor = try HandshakeMonitor(socket: server) { log.append($0) }
            endpoint = try server.bind("tcp://127.0.0.1:*")
        }

        var port: UInt16 { UInt16(endpoint.split(separator: ":").last ?? "") ?? 0 }

        func close() {
            #expect(monitor.stop())
            server.close()
        }
    }

    /// The 64-byte ZMTP 3.0 greeting of a plain-text (NULL mechanism) client.
    static let nullGreeting: [UInt8] = [0xFF] + [UInt8](repeating: 0, count: 8) + [0x7F, 3, 0]
        + Array("NULL".utf8) + [UInt8](repeating: 0, count: 16) + [0] + [UInt8](repeating: 0, count: 31)

    /// Waits (bounded) until the monitor's counters satisfy `condition`.
    static func waitFor(_ monitor: HandshakeMonitor, seconds: Double = 10,
                        _ condition: (HandshakeMonitor.Statistics) -> Bool) -> Bool {
        let deadline = ContinuousClock.now + TestTiming.scaled(seconds)
        while ContinuousClock.now < deadline {
            if condition(monitor.statistics) { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return condition(monitor.statistics)
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func aPlainTextClientOfACurveServerIsReportedWithItsAddress() throws {
        let guarded = try MonitoredCurveServer()
        defer { guarded.close() }
        #expect(guarded.monitor.isRunning)
        let client = try HandshakeTCPClient(port: guarded.port)
        // Its greeting only once the monitor has read the accept, so the peer is still there to be named.
        #expect(Self.waitFor(guarded.monitor) { $0.accepted == 1 }, "the accept was reported")
        client.send(Self.nullGreeting)
        let failure = try #require(guarded.failures.waitForFirst(timeout: TestTiming.scaled(10)))
        #expect(failure == HandshakeFailure(endpoint: guarded.endpoint, peerAddress: client.localAddress,
                                            reason: .protocolError(code: mechanismMismatch)))
        #expect(failure.description.contains("from 127.0.0.1:") && failure.description.contains("without CURVE keys"))
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func aZeroMQClientWithoutCurveKeysIsReported() throws {
        let guarded = try MonitoredCurveServer()
        defer { guarded.close() }
        let clientContext = try ZmqContext()
        let client = try ZmqSocket(clientContext, type: .dealer)
        defer { client.close() }
        try client.connect(guarded.endpoint)
        let failure = try #require(guarded.failures.waitForFirst(timeout: TestTiming.scaled(10)))
        // Both peers see the other's greeting at once, and which notices the mismatch first is a
        // race: the server reads the client's NULL mechanism (a mechanism mismatch), or the
        // client has already dropped the connection and the server's write fails (EPIPE, or
        // ECONNRESET). Either way the failure is reported, with the endpoint.
        let expected: Set<HandshakeFailure.Reason> = [.protocolError(code: mechanismMismatch), .noDetail(errno: EPIPE), .noDetail(errno: ECONNRESET)]
        #expect(expected.contains(failure.reason), "\(failure)")
        #expect(failure.endpoint == guarded.endpoint)
        // Best effort: named when the monitor read the accept before libzmq closed the connection.
        #expect(failure.peerAddress == nil || failure.peerHost == "127.0.0.1", "\(failure)")
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func repeatedFailuresFromOneHostAreReportedOnceThenSummedUp() throws {
        let guarded = try MonitoredCurveServer()
        var clients: [HandshakeTCPClient] = []
        for round in 1...3 {
            let client = try HandshakeTCPClient(port: guarded.port)
            clients.append(client)
            #expect(Self.waitFor(guarded.monitor) { $0.accepted == round })
            client.send(Self.nullGreeting)
            #expect(Self.waitFor(guarded.monitor) { $0.failed == round }, "failure \(round) was seen")
        }
        #expect(guarded.monitor.statistics.reports == 1, "the 2nd and 3rd are held back within the interval")
        #expect(guarded.failures.all.count == 1)
        // Stopping reports what was held back.
        guarded.close()
        let reports = guarded.failures.all
        #expect(reports.count == 2)
        #expect(reports.last == HandshakeFailure(endpoint: guarded.endpoint, peerAddress: "127.0.0.1",
                                                 reason: .protocolError(code: mechanismMismatch), count: 2))
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func aClientWhoseKeyIsNotAdmittedIsReportedAsRefusedByTheAuthenticator() throws {
        let refusals = RefusalLog()
        var authenticator: ZapAuthenticator?
        let guarded = try MonitoredCurveServer { context in
            let made = try ZapAuthenticator(context: context, admitted: try AdmittedKeys([try CurveKeyPair.generate().publicKey: "w0"]),
                                            onRefusal: { refusals.append($0) })
            authenticator = made
            return made
        }
        defer {
            guarded.close()
            #expect(authenticator?.stop() == true)
        }
        let clientContext = try ZmqContext()
        let client = try ZmqSocket(clientContext, type: .dealer)
        defer { client.close() }
        try client.enableCurveClient(try CurveKeyPair.generate(), serverPublicKey: guarded.keys.publicKey)
        try client.connect(guarded.endpoint)
        let failure = try #require(guarded.failures.waitForFirst(timeout: TestTiming.scaled(10)))
        #expect(failure.reason == .authentication(status: 400))
        #expect(refusals.waitForFirst(timeout: TestTiming.scaled(10))?.reason == .keyNotAdmitted)
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func closingTheSocketEndsTheMonitor() throws {
        let guarded = try MonitoredCurveServer()
        #expect(guarded.monitor.isRunning)
        guarded.server.close()
        let deadline = ContinuousClock.now + TestTiming.scaled(10)
        while guarded.monitor.isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(!guarded.monitor.isRunning, "the monitor saw MONITOR_STOPPED and ended")
        #expect(guarded.monitor.stop())
    }
}

/// Failures reported by a monitor's thread, waited for by the test.
final class FailureLog: @unchecked Sendable {
    private let condition = NSCondition()
    private var failures: [HandshakeFailure] = []

    func append(_ failure: HandshakeFailure) {
        condition.lock()
        failures.append(failure)
        condition.broadcast()
        condition.unlock()
    }

    var all: [HandshakeFailure] {
        condition.lock()
        defer { condition.unlock() }
        return failures
    }

    func waitForFirst(timeout: Duration) -> HandshakeFailure? {
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
        condition.lock()
        defer { condition.unlock() }
        while failures.isEmpty && condition.wait(until: deadline) {}
        return failures.first
    }
}

/// A bare TCP connection to 127.0.0.1, to speak (or not) ZMTP by hand.
final class HandshakeTCPClient {
    let descriptor: Int32
    /// This end, "127.0.0.1:port", as the server sees it.
    let localAddress: String

    init(port: UInt16) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let number = errno
            close(descriptor)
            throw POSIXError(.init(rawValue: number) ?? .EIO)
        }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        localAddress = "127.0.0.1:\(UInt16(bigEndian: local.sin_port))"
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }
}
