/// Whether `host` (a name or an address, IPv6 with or without brackets) reaches only this machine.
public func isLoopbackHost(_ host: String) -> Bool {
    host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
}

/// Whether a ZeroMQ endpoint is reachable only from this machine: ipc, inproc, or TCP on a
/// loopback address.
public func isLoopbackEndpoint(_ endpoint: String) -> Bool {
    if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
    guard endpoint.hasPrefix("tcp://") else { return false }
    var host = endpoint.dropFirst("tcp://".count)
    if let colon = host.lastIndex(of: ":") { host = host[..<colon] }
    return isLoopbackHost(String(host))
}
