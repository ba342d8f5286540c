import Testing
@testable import Coordinator

/// --listen is checked before anything is bound: a port out of range is a usage error that
/// names the flag and the range.
@Suite struct ListenAddressTests {
    func problems(listen: String) -> [String] {
        var settings = CoordinatorSettings()
        settings.listen = listen
        return settings.problems()
    }

    @Test func usableEndpointsHaveNoProblem() {
        for listen in ["tcp://127.0.0.1:0", "tcp://127.0.0.1:5555", "tcp://127.0.0.1:65535", "tcp://127.0.0.1:*", "tcp://[::1]:5555",
                       "ipc:///tmp/scvae.sock"] {
            #expect(problems(listen: listen).isEmpty, "\(listen): \(problems(listen: listen))")
        }
    }

    @Test func aPortOutOfRangeOrMissingIsNamed() {
        #expect(problems(listen: "tcp://127.0.0.1:70000")
                == ["--listen tcp://127.0.0.1:70000: the port must be a number from 0 to 65535 (0 picks a free one); got '70000'."])
        #expect(problems(listen: "tcp://127.0.0.1:http").first?.contains("got 'http'") == true)
        #expect(problems(listen: "tcp://127.0.0.1").first?.contains("needs a host and a port") == true)
        #expect(problems(listen: "tcp://:5555").first?.contains("needs a host and a port") == true)
        #expect(problems(listen: "ipc://") == ["--listen ipc:// needs a path, as in ipc:///tmp/scvae.sock."])
    }
}
