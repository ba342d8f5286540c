import Foundation
import Testing
@testable import Wire

/// Every test that opens sockets lives in this one serialized suite (extensions in several
/// files): sockets on 127.0.0.1 with port 0 or ipc://, every wait bounded.
@Suite(.serialized) struct SocketTests {}

extension SocketTests {
    @Test func bindToPortZeroReportsTheChosenPort() throws {
        let context = try ZmqContext()
        let socket = try ZmqSocket(context, type: .pull)
        let endpoint = try socket.bind("tcp://127.0.0.1:*")
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        #expect((Int(endpoint.split(separator: ":").last ?? "") ?? 0) > 0)
    }

    @Test func receiveTimesOutAtItsDeadlineWithATypedError() throws {
        let context = try ZmqContext()
        let socket = try ZmqSocket(context, type: .pull)
        let endpoint = try socket.bind("tcp://127.0.0.1:*")
        let start = ContinuousClock.now
        #expect(throws: ZmqError.self) { try socket.receive(deadline: .now + .milliseconds(200)) }
        do {
            _ = try socket.receive(deadline: .now + .milliseconds(50))
        } catch {
            guard case let .timedOut(operation, reportedEndpoint, _) = error else { Issue.record("\(error)"); return }
            #expect(operation == "receive" && reportedEndpoint == endpoint)
        }
        #expect(ContinuousClock.now - start < TestTiming.scaled(10))
    }

    @Test func bindErrorsCarryTheEndpointAndErrnoText() throws {
        let context = try ZmqContext()
        let socket = try ZmqSocket(context, type: .pull)
        do {
            try socket.bind("tcp://not-an-address:*")
            Issue.record("bind succeeded")
        } catch {
            guard case let .call(operation, _, text) = error else { Issue.record("\(error)"); return }
            #expect(operation.contains("tcp://not-an-address:*") && !text.isEmpty)
        }
    }

    @Test func multipartAndZeroCopyRoundTrip() throws {
        let context = try ZmqContext()
        let receiver = try ZmqSocket(context, type: .pull)
        let sender = try ZmqSocket(context, type: .push)
        try sender.connect(try receiver.bind("tcp://127.0.0.1:*"))
        let floats = (0..<300_000).map { Float($0) * 0.5 }
        let released = Slots<Bool>(count: 1)
        try sender.send([1, 2, 3], more: true, deadline: .now + TestTiming.scaled(5))
        try floats.withUnsafeBytes { raw in
            try sender.sendZeroCopy(raw, deadline: .now + TestTiming.scaled(5)) { released.set(0, true) }
            let parts = try receiver.receiveParts(deadline: .now + TestTiming.scaled(10))
            #expect(parts.count == 2)
            #expect(parts[0].bytes == [1, 2, 3])
            #expect(parts[1].count == raw.count)
            parts[1].withUnsafeBytes { #expect($0.elementsEqual(raw)) }
            // libzmq lets go of the buffer once it has been written to the connection.
            #expect(released.waitForAll(timeout: TestTiming.scaled(10)) == [true])
        }
    }

    @Test func closingWithQueuedMessagesAndNoPeerDoesNotHang() throws {
        let context = try ZmqContext()
        let sender = try ZmqSocket(context, type: .push, linger: .milliseconds(100))
        try sender.connect("tcp://127.0.0.1:1")   // nobody listens there
        try sender.send(Array(repeating: 7, count: 1000), deadline: .now + .milliseconds(100))
        let start = ContinuousClock.now
        sender.close()
        #expect(ContinuousClock.now - start < TestTiming.scaled(5))
    }

    @Test func sendToAFullQueueTimesOut() throws {
        let context = try ZmqContext()
        let sender = try ZmqSocket(context, type: .push)
        try sender.setHighWaterMarks(send: 1, receive: 1)
        // No peer connected: PUSH has no pipe, so sending would block; it must time out instead.
        #expect(throws: ZmqError.self) {
            for _ in 0..<10 { try sender.send([1], deadline: .now + .milliseconds(100)) }
        }
    }

    /// A message of too many parts is read to its end and discarded: a typed error, and the
    /// next message arrives intact (it does not start in the middle of the bad one).
    @Test func tooManyPartsAreDrainedAndTheNextMessageArrivesIntact() throws {
        let context = try ZmqContext()
        let receiver = try ZmqSocket(context, type: .pull)
        let sender = try ZmqSocket(context, type: .push)
        let endpoint = try receiver.bind("tcp://127.0.0.1:*")
        try sender.connect(endpoint)
        let deadline = ContinuousClock.now + TestTiming.scaled(10)
        try sender.send(parts: [[1], [2], [3]], deadline: deadline)
        try sender.send(parts: [[4, 5], [6]], deadline: deadline)
        try sender.send(parts: [[7], [8], [9], [10]], deadline: deadline)
        try sender.send(parts: [[11]], deadline: deadline)
        #expect(throws: ZmqError.tooManyParts(endpoint: endpoint, parts: 3, limit: 2)) {
            try receiver.receiveParts(deadline: deadline, maxParts: 2)
        }
        #expect(try receiver.receiveParts(deadline: deadline, maxParts: 2).map(\.bytes) == [[4, 5], [6]])
        #expect(throws: ZmqError.tooManyParts(endpoint: endpoint, parts: 4, limit: 2)) {
            try receiver.receiveParts(deadline: deadline, maxParts: 2)
        }
        #expect(try receiver.receiveParts(deadline: deadline, maxParts: 2).map(\.bytes) == [[11]])
    }

    /// With ZMQ_MAXMSGSIZE a larger message is never delivered (libzmq drops its sender), and
    /// the socket keeps serving a well-behaved peer.
    @Test func messagesOverTheSizeLimitAreNotDelivered() throws {
        let context = try ZmqContext()
        let receiver = try ZmqSocket(context, type: .pull)
        #expect(try receiver.maxMessageSize() == -1)
        try receiver.setMaxMessageSize(1000)
        #expect(try receiver.maxMessageSize() == 1000)
        let endpoint = try receiver.bind("tcp://127.0.0.1:*")
        let deadline = ContinuousClock.now + TestTiming.scaled(10)
        let abuser = try ZmqSocket(context, type: .push, linger: TestTiming.scaled(5))
        try abuser.connect(endpoint)
        try abuser.send([UInt8](repeating: 1, count: 1001), deadline: deadline)
        let peer = try ZmqSocket(context, type: .push, linger: TestTiming.scaled(5))
        try peer.connect(endpoint)
        try peer.send([UInt8](repeating: 2, count: 1000), deadline: deadline)
        #expect(try receiver.receive(deadline: deadline) == [UInt8](repeating: 2, count: 1000))
        // Nothing else comes, in particular not the oversized message.
        #expect(throws: ZmqError.self) { try receiver.receive(deadline: .now + TestTiming.scaled(0.5)) }
        try peer.send([3], deadline: deadline)
        #expect(try receiver.receive(deadline: deadline) == [3])

        let control = try ZmqSocket(context, type: .router)
        try control.limitMessageSize(to: DecodeLimits(maxPayloadLength: 1 << 20))
        #expect(try control.maxMessageSize() == Int64((1 << 20) + FrameHeader.size + ZmqSocket.messageSizeMargin))
    }
}
