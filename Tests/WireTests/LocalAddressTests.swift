import Testing
import Wire

/// The address a worker advertises for its ring when none is given.
@Suite struct LocalAddressTests {
    @Test func theRouteToACoordinatorOnThisMachineIsLoopback() {
        #expect(LocalAddress.toward(endpoint: "tcp://127.0.0.1:5555") == "127.0.0.1")
        #expect(LocalAddress.toward(endpoint: "tcp://localhost:5555") == "127.0.0.1")
        #expect(LocalAddress.toward(endpoint: "ipc:///tmp/coordinator") == "127.0.0.1")
        #expect(LocalAddress.toward(endpoint: "tcp://no-such-host.invalid:5555") == nil, "a name that does not resolve")
        #expect(LocalAddress.toward(endpoint: "udp://10.0.0.1:5555") == nil)
    }

    @Test func anInterfaceIsFoundByName() {
        #expect(LocalAddress.ofInterface("lo") == "127.0.0.1")
        #expect(LocalAddress.ofInterface("no-such-interface0") == nil)
        #expect(LocalAddress.interfaceNames().contains("lo"))
    }
}
