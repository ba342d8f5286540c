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

    /// An address from the environment (MASTER_PORT) is named with its source, not as a flag
    /// the person did not type.
    @Test func aReachableAddressFromTheEnvironmentNamesItsSource() {
        var settings = CoordinatorSettings()
        settings.listen = "tcp://0.0.0.0:29500"
        settings.listenSource = "MASTER_PORT"
        #expect(settings.problems() == ["The listen address tcp://0.0.0.0:29500 (from MASTER_PORT) is reachable from other machines: give --curve-keys DIR (authenticated, encrypted traffic) or --insecure to accept plain text that anyone on the network can join."])
        settings.insecure = true
        #expect(settings.problems().isEmpty)
    }
}
