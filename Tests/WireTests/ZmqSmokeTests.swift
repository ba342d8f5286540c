import CZmq
import Testing
@testable import Wire

@Suite struct ZmqSmokeTests {
    @Test func linkedLibraryIsZeroMQ4() {
        #expect(zmqLibraryVersion().hasPrefix("4."))
    }

    @Test func pairSocketsRoundTripOverInproc() throws {
        let context = zmq_ctx_new()!
        defer { zmq_ctx_term(context) }
        let server = zmq_socket(context, ZMQ_PAIR)!
        let client = zmq_socket(context, ZMQ_PAIR)!
        var linger: Int32 = 0
        zmq_setsockopt(server, ZMQ_LINGER, &linger, 4)
        zmq_setsockopt(client, ZMQ_LINGER, &linger, 4)
        defer { zmq_close(client); zmq_close(server) }
        #expect(zmq_bind(server, "inproc://smoke") == 0)
        #expect(zmq_connect(client, "inproc://smoke") == 0)
        let message: [UInt8] = Array("hello, ring".utf8)
        #expect(message.withUnsafeBytes { zmq_send(client, $0.baseAddress, $0.count, 0) } == Int32(message.count))
        var received = [UInt8](repeating: 0, count: 64)
        var timeout: Int32 = 5000
        zmq_setsockopt(server, ZMQ_RCVTIMEO, &timeout, 4)
        let count = received.withUnsafeMutableBytes { zmq_recv(server, $0.baseAddress, $0.count, 0) }
        #expect(count == Int32(message.count))
        #expect(Array(received.prefix(Int(max(count, 0)))) == message)
    }
}
