import Foundation
import Testing
@testable import Wire

/// The ZAP authenticator with real sockets on 127.0.0.1 (in the serialized socket suite).
extension SocketTests {
    /// A CURVE ROUTER server guarded by an authenticator admitting `admitted`, on a fresh context.
    struct GuardedServer {
        let context: ZmqContext
        let authenticator: ZapAuthenticator
        let server: ZmqSocket
        let serverKeys: CurveKeyPair
        let endpoint: String
        let refusals: RefusalLog

        init(admitting admitted: [CurveKeyPair]) throws {
            context = try ZmqContext()
            refusals = RefusalLog()
            let log = refusals
            authenticator = try ZapAuthenticator(context: context,
                                                 admitted: try AdmittedKeys(Dictionary(uniqueKeysWithValues: admitted.enumerated().map { ($1.publicKey, "w\($0)") })),
                                                 onRefusal: { log.append($0) })
            serverKeys = try CurveKeyPair.generate()
            server = try ZmqSocket(context, type: .router)
            try server.enableCurveServer(serverKeys, authenticatedBy: authenticator)
            endpoint = try server.bind("tcp://127.0.0.1:*")
        }

        /// A DEALER connected as a CURVE client with `keys` (nil: plain text) on another context.
        func client(_ keys: CurveKeyPair?, context clientContext: ZmqContext) throws -> ZmqSocket {
            let client = try ZmqSocket(clientContext, type: .dealer)
            if let keys { try client.enableCurveClient(keys, serverPublicKey: serverKeys.publicKey) }
            try client.connect(endpoint)
            return client
        }

        func close() {
            server.close()
            #expect(authenticator.stop())
        }
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func listedClientIsAdmittedAndExchangesMessages() throws {
        let clientKeys = try CurveKeyPair.generate()
        let guarded = try GuardedServer(admitting: [clientKeys])
        defer { guarded.close() }
        let clientContext = try ZmqContext()
        let client = try guarded.client(clientKeys, context: clientContext)
        defer { client.close() }
        let deadline = ContinuousClock.now + TestTiming.scaled(10)
        try client.send(Array("hello".utf8), deadline: deadline)
        let request = try guarded.server.receiveParts(deadline: deadline).map(\.bytes)
        #expect(request.count == 2 && request[1] == Array("hello".utf8))
        try guarded.server.send(parts: [request[0], Array("welcome".utf8)], deadline: deadline)
        #expect(try client.receive(deadline: deadline) == Array("welcome".utf8))
        #expect(guarded.authenticator.statistics == ZapStatistics(admitted: 1, refused: 0))
        #expect(guarded.refusals.all.isEmpty)
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func unlistedClientIsRefusedAndTheRefusalIsReportedWithItsAddress() throws {
        let guarded = try GuardedServer(admitting: [try CurveKeyPair.generate()])
        defer { guarded.close() }
        let stranger = try CurveKeyPair.generate()
        let clientContext = try ZmqContext()
        let client = try guarded.client(stranger, context: clientContext)
        defer { client.close() }
        try client.send(Array("let me in".utf8), deadline: .now + TestTiming.scaled(5))
        let refusal = guarded.refusals.waitForFirst(timeout: TestTiming.scaled(10))
        #expect(refusal == ZapRefusal(address: "127.0.0.1", publicKey: stranger.publicKey, mechanism: "CURVE", reason: .keyNotAdmitted))
        #expect(throws: ZmqError.self) { try guarded.server.receiveParts(deadline: .now + TestTiming.scaled(1.5)) }
        #expect(guarded.authenticator.statistics.admitted == 0)
        #expect(guarded.authenticator.statistics.refused >= 1)
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func plainTextClientCannotTalkToACurveServer() throws {
        let admittedKeys = try CurveKeyPair.generate()
        let guarded = try GuardedServer(admitting: [admittedKeys])
        defer { guarded.close() }
        let clientContext = try ZmqContext()
        let plain = try guarded.client(nil, context: clientContext)
        defer { plain.close() }
        try plain.send(Array("plain text".utf8), deadline: .now + TestTiming.scaled(5))
        #expect(throws: ZmqError.self) { try guarded.server.receiveParts(deadline: .now + TestTiming.scaled(1.5)) }
        // The server is still serving: an admitted client gets through afterwards, and only its message arrives.
        let admitted = try guarded.client(admittedKeys, context: clientContext)
        defer { admitted.close() }
        try admitted.send(Array("curve".utf8), deadline: .now + TestTiming.scaled(5))
        #expect(try guarded.server.receiveParts(deadline: .now + TestTiming.scaled(10)).last?.bytes == Array("curve".utf8))
    }

    /// libzmq consults the context's ZAP handler for every CURVE server socket, with or without
    /// a ZAP domain: a CURVE server of the same context not set up through the authenticator is
    /// refused by it (fail closed), not left open.
    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func curveServerWithoutTheAuthenticatorsDomainIsRefusedNotOpen() throws {
        let clientKeys = try CurveKeyPair.generate()
        let guarded = try GuardedServer(admitting: [clientKeys])
        defer { guarded.close() }
        let unguarded = try ZmqSocket(guarded.context, type: .router)
        defer { unguarded.close() }
        let unguardedKeys = try CurveKeyPair.generate()
        try unguarded.enableCurveServer(unguardedKeys)
        let endpoint = try unguarded.bind("tcp://127.0.0.1:*")
        let clientContext = try ZmqContext()
        let client = try ZmqSocket(clientContext, type: .dealer)
        defer { client.close() }
        try client.enableCurveClient(clientKeys, serverPublicKey: unguardedKeys.publicKey)
        try client.connect(endpoint)
        try client.send([1], deadline: .now + TestTiming.scaled(5))
        let refusal = guarded.refusals.waitForFirst(timeout: TestTiming.scaled(10))
        #expect(refusal?.reason == .foreignDomain(""))
        #expect(refusal?.publicKey == clientKeys.publicKey)
        #expect(throws: ZmqError.self) { try unguarded.receiveParts(deadline: .now + TestTiming.scaled(1)) }
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func replacedKeysAdmitANewClient() throws {
        let late = try CurveKeyPair.generate()
        let guarded = try GuardedServer(admitting: [try CurveKeyPair.generate()])
        defer { guarded.close() }
        guarded.authenticator.replaceAdmittedKeys(try AdmittedKeys([late.publicKey: "late"]))
        let clientContext = try ZmqContext()
        let client = try guarded.client(late, context: clientContext)
        defer { client.close() }
        try client.send([42], deadline: .now + TestTiming.scaled(5))
        #expect(try guarded.server.receiveParts(deadline: .now + TestTiming.scaled(10)).last?.bytes == [42])
    }

    @Test(.enabled(if: CurveKeyPair.isCurveAvailable, "libzmq built without CURVE"))
    func guardingRefusesWhatWouldLeaveTheServerOpen() throws {
        let context = try ZmqContext()
        let admitted = try AdmittedKeys([try CurveKeyPair.generate().publicKey: "w0"])
        let authenticator = try ZapAuthenticator(context: context, admitted: admitted)
        #expect(authenticator.isRunning)
        #expect(throws: ZapError.handlerAlreadyBound) { try ZapAuthenticator(context: context, admitted: admitted) }
        #expect(throws: ZapError.invalidDomain("")) { try ZapAuthenticator(context: context, admitted: admitted, domain: "") }

        let otherContext = try ZmqContext()
        let foreign = try ZmqSocket(otherContext, type: .router)
        #expect(throws: ZapError.differentContext) { try foreign.enableCurveServer(try CurveKeyPair.generate(), authenticatedBy: authenticator) }

        let start = ContinuousClock.now
        #expect(authenticator.stop())
        #expect(ContinuousClock.now - start < TestTiming.scaled(5))
        #expect(!authenticator.isRunning)
        let server = try ZmqSocket(context, type: .router)
        #expect(throws: ZapError.stopped) { try server.enableCurveServer(try CurveKeyPair.generate(), authenticatedBy: authenticator) }
        // Stopping unbinds the handler: a new one can take its place in the same context at once,
        // every time (closing alone leaves the name to libzmq's reaper, which may not have run yet).
        for _ in 0..<20 {
            let successor = try ZapAuthenticator(context: context, admitted: admitted)
            #expect(successor.isRunning)
            #expect(successor.stop())
        }
    }
}

/// Refusals reported by an authenticator's thread, waited for by the test.
final class RefusalLog: @unchecked Sendable {
    private let condition = NSCondition()
    private var refusals: [ZapRefusal] = []

    func append(_ refusal: ZapRefusal) {
        condition.lock()
        refusals.append(refusal)
        condition.broadcast()
        condition.unlock()
    }

    var all: [ZapRefusal] {
        condition.lock()
        defer { condition.unlock() }
        return refusals
    }

    func waitForFirst(timeout: Duration) -> ZapRefusal? {
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
        condition.lock()
        defer { condition.unlock() }
        while refusals.isEmpty && condition.wait(until: deadline) {}
        return refusals.first
    }
}
