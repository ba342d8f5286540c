#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which of this machine's addresses its peers can reach: the one whose route leads to a given
/// host (what a worker advertises for its ring when no `--host` is given, like torchrun and
/// Gloo), or the one of a named interface (`--ring-interface`, like `GLOO_SOCKET_IFNAME`).
public enum LocalAddress {
    /// The IPv4 address this machine sends from to reach `endpoint`'s host (a ZeroMQ endpoint
    /// such as `tcp://10.0.0.1:5555`): found by connecting a UDP socket, which sends nothing,
    /// and asking the kernel for its local address. `ipc://` and `inproc://` endpoints are this
    /// machine: 127.0.0.1. Nil when the host does not resolve or no route leads there.
    public static func toward(endpoint: String) -> String? {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return "127.0.0.1" }
        guard endpoint.hasPrefix("tcp://") else { return nil }
        var rest = endpoint.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        let port = String(rest[rest.index(after: colon)...])
        rest = rest[..<colon]
        var host = String(rest)
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "*" || host == "0.0.0.0" { return "127.0.0.1" }

        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port.isEmpty ? "9" : port, &hints, &found) == 0, let first = found else { return nil }
        defer { freeaddrinfo(found) }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return nil }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        return text(of: local.sin_addr)
    }

    /// The IPv4 address of the interface `name` (e.g. "eth0", "ib0"), nil when there is none.
    public static func ofInterface(_ name: String) -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var entry = list
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  String(cString: current.pointee.ifa_name) == name else { continue }
            let ipv4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            return text(of: ipv4)
        }
        return nil
    }

    /// The interface names that have an IPv4 address (for a message naming the choices).
    public static func interfaceNames() -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var names: [String] = []
        var entry = list
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            if let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) {
                let name = String(cString: current.pointee.ifa_name)
                if !names.contains(name) { names.append(name) }
            }
        }
        return names
    }

    private static func text(of address: in_addr) -> String? {
        var copy = address
        var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &copy, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
