import Testing
@testable import Wire

/// The ZAP decision without sockets: request frames in, reply frames and reports out.
@Suite struct ZAPGatekeeperTests {
    static let admittedKey = CurveCertificateTests.vectorPublic
    static let strangerKey = CurveCertificateTests.vectorServerPublic

    let gatekeeper = ZapGatekeeper(domain: "scvae", admitted: try! AdmittedKeys([admittedKey: "w0"]))

    func request(domain: String = "scvae", mechanism: String = "CURVE", key: String? = admittedKey,
                 version: String = "1.0") -> [[UInt8]] {
        var frames: [[UInt8]] = [Array(version.utf8), Array("7".utf8), Array(domain.utf8), Array("10.1.2.3".utf8), [], Array(mechanism.utf8)]
        if let key { frames.append(Z85Key.decode(key)!) }
        return frames
    }

    @Test func anAdmittedKeyGets200WithItsNameAsUserID() {
        let decision = gatekeeper.decide(request())
        #expect(decision.refusal == nil)
        #expect(decision.reply.frames == [Array("1.0".utf8), Array("7".utf8), Array("200".utf8), Array("OK".utf8), Array("w0".utf8), []])
    }

    @Test func anUnknownKeyGets400AndIsReportedWithAddressAndKey() {
        let decision = gatekeeper.decide(request(key: Self.strangerKey))
        #expect(decision.reply.statusCode == "400")
        #expect(decision.reply.requestID == Array("7".utf8))
        #expect(decision.refusal == ZapRefusal(address: "10.1.2.3", publicKey: Self.strangerKey, mechanism: "CURVE", reason: .keyNotAdmitted))
        #expect(decision.refusal!.description.contains("10.1.2.3"))
    }

    @Test func otherDomainsAndMechanismsAreRefused() {
        let foreign = gatekeeper.decide(request(domain: ""))
        #expect(foreign.reply.statusCode == "400" && foreign.refusal?.reason == .foreignDomain(""))
        let plain = gatekeeper.decide(request(mechanism: "PLAIN", key: nil) + [Array("user".utf8), Array("pass".utf8)])
        #expect(plain.reply.statusCode == "400" && plain.refusal?.reason == .notCurve)
        let null = gatekeeper.decide(request(mechanism: "NULL", key: nil))
        #expect(null.reply.statusCode == "400" && null.refusal?.reason == .notCurve)
    }

    @Test func malformedRequestsGet500AndAreReported() {
        let short = gatekeeper.decide([Array("1.0".utf8), Array("9".utf8), []])
        #expect(short.reply.statusCode == "500" && short.reply.requestID == Array("9".utf8))
        #expect(short.refusal?.reason == .malformedRequest("3 frames, a ZAP request has at least 6"))
        let version = gatekeeper.decide(request(version: "2.0"))
        #expect(version.reply.statusCode == "500" && version.refusal?.address == "10.1.2.3")
        let badKey = gatekeeper.decide(Array(request(key: nil)) + [[1, 2, 3]])
        #expect(badKey.reply.statusCode == "500")
        #expect(gatekeeper.decide([]).reply.frames.count == 6)   // a REP socket must still answer
    }

    @Test func replacingTheAdmittedKeysChangesTheDecision() throws {
        var keeper = gatekeeper
        keeper.admitted = try AdmittedKeys([Self.strangerKey: "w1"])
        #expect(keeper.decide(request()).reply.statusCode == "400")
        #expect(keeper.decide(request(key: Self.strangerKey)).reply.userID == "w1")
    }
}
