import Testing
@testable import Wire

/// What a coordinator keeps of an admitted worker comes from its hello: the hello's strings are
/// bounded when it is decoded, so no peer can make the coordinator hold megabytes per worker.
@Suite struct HelloLimitsTests {
    static func decode(_ hello: Hello) throws(DecodeError) -> Hello {
        try Hello.decodePayload(hello.encodedPayload())
    }

    @Test func oversizedFieldsAreRefusedNamingTheField() {
        let long = String(repeating: "h", count: Hello.maximumFieldBytes + 1)
        let cases: [(Hello, String)] = [
            (Hello(workerID: "w", host: long, dataPlaneEndpoint: "tcp://10.0.0.1:1", datasetFingerprint: "f"), "hello.host"),
            (Hello(workerID: "w", host: "h", dataPlaneEndpoint: long, datasetFingerprint: "f"), "hello.dataPlaneEndpoint"),
            (Hello(workerID: "w", host: "h", dataPlaneEndpoint: "e", datasetFingerprint: long), "hello.datasetFingerprint"),
            (Hello(workerID: "w", host: "h", dataPlaneEndpoint: "e", datasetFingerprint: "f", sharedMemoryHost: long), "hello.sharedMemoryHost"),
            (Hello(workerID: "w", host: "h", dataPlaneEndpoint: "e", capabilities: Array(repeating: "c", count: 33), datasetFingerprint: "f"),
             "hello.capabilities"),
            (Hello(workerID: String(repeating: "w", count: Hello.maximumWorkerIDBytes + 1), host: "h", dataPlaneEndpoint: "e",
                   datasetFingerprint: "f"), "hello.workerID"),
        ]
        for (hello, field) in cases {
            do {
                _ = try Self.decode(hello)
                Issue.record("\(field) of \(hello.encodedPayload().count) bytes decoded")
            } catch {
                guard case let .invalidValue(found, _) = error else { Issue.record("\(error)"); continue }
                #expect(found == field)
            }
        }
        let fine = Hello(workerID: "w", host: String(repeating: "h", count: Hello.maximumFieldBytes), dataPlaneEndpoint: "e",
                         datasetFingerprint: "f")
        #expect((try? Self.decode(fine)) == fine, "the limits themselves are allowed")
    }
}
