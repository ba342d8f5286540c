import Testing
@testable import Wire

extension SocketTests {
    /// Coordinator (ROUTER) and worker (DEALER) exchange framed messages; a garbage frame is
    /// a decode failure value and the conversation goes on.
    @Test func routerAndDealerExchangeEnvelopes() throws {
        let context = try ZmqContext()
        let coordinator = try ZmqSocket(context, type: .router)
        let worker = try ZmqSocket(context, type: .dealer)
        try worker.connect(try coordinator.bind("tcp://127.0.0.1:*"))
        let deadline = ContinuousClock.now + TestTiming.scaled(10)
        let hello = Hello(workerID: "w1", host: "localhost", dataPlaneEndpoint: "tcp://127.0.0.1:9", datasetFingerprint: "ab")
        try worker.send([0xFF, 0x00, 0x13], deadline: deadline)   // garbage first
        try worker.send(Envelope(generation: 0, runID: 42, message: .hello(hello)), deadline: deadline)

        let garbage = try coordinator.receiveEnvelope(deadline: deadline, expectedRunID: 42)
        guard case let .failure(error) = garbage.envelope else { Issue.record("garbage decoded"); return }
        #expect(error == .truncated(field: "header.magic", needed: 4, available: 3))
        let received = try coordinator.receiveEnvelope(deadline: deadline, expectedRunID: 42)
        #expect(try received.envelope.get().message == .hello(hello))
        guard let identity = received.identity else { Issue.record("no identity"); return }

        let welcome = Welcome(workerID: "w1", heartbeatIntervalMilliseconds: 500, livenessDeadlineMilliseconds: 5000)
        try coordinator.send(Envelope(generation: 0, runID: 42, message: .welcome(welcome)), to: identity, deadline: deadline)
        let reply = try worker.receiveEnvelope(deadline: deadline, expectedRunID: 42)
        #expect(reply.identity == nil)
        #expect(try reply.envelope.get().message == .welcome(welcome))

        // Another job's frame is refused by run id.
        try worker.send(Envelope(generation: 0, runID: 7, message: .heartbeat(Heartbeat(sequence: 1, lastAppliedStep: 0))), deadline: deadline)
        let foreign = try coordinator.receiveEnvelope(deadline: deadline, expectedRunID: 42)
        guard case .failure(.foreignRun(found: 7, expected: 42)) = foreign.envelope else { Issue.record("\(foreign.envelope)"); return }

        // Too many parts (identity + 3): a counted decode failure, not a transport error; the
        // next message decodes.
        try worker.send(parts: [[1], [2], [3]], deadline: deadline)
        try worker.send(Envelope(generation: 0, runID: 42, message: .hello(hello)), deadline: deadline)
        let tooMany = try coordinator.receiveEnvelope(deadline: deadline, expectedRunID: 42)
        #expect(tooMany.identity == nil)
        guard case .failure(.invalidValue(field: "message parts", _)) = tooMany.envelope else { Issue.record("\(tooMany.envelope)"); return }
        let after = try coordinator.receiveEnvelope(deadline: deadline, expectedRunID: 42)
        #expect(after.identity == identity)
        #expect(try after.envelope.get().message == .hello(hello))
    }
}
