import Testing
@testable import Wire

@Suite struct InFlightSendsTests {
    /// A buffer libzmq still holds after the wait is `.bufferStillInUse`, never a normal return
    /// (the ring's failure path and `close()` use this).
    @Test func aBufferStillHeldIsATypedError() throws {
        let sends = InFlightSends()
        let token = sends.begin(0..<10)
        #expect(throws: RingError.bufferStillInUse(seconds: 0.05)) { try sends.requireReleased(nil, within: .milliseconds(50)) }
        #expect(throws: RingError.bufferStillInUse(seconds: 0.05)) { try sends.requireReleased(5..<6, within: .milliseconds(50)) }
        try sends.requireReleased(10..<20, within: .zero)
        sends.end(token)
        try sends.requireReleased(nil, within: .zero)
    }
}
