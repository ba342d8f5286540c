import Foundation

/// Where the rank processes of a benchmark run: all on this host at 127.0.0.1 (the default), or
/// each started under a launcher command and bound on an address of its own, e.g. one network
/// namespace per rank: launcher `ip netns exec scvae-w{rank}`, hosts 10.77.0.10, 10.77.0.11, ...
/// Ranks still exchange endpoints through files, so the launcher must keep the file system.
public struct RankPlacement: Sendable, Equatable {
    /// What `launcher` writes for the rank number.
    public static let rankToken = "{rank}"

    /// Words put before the rank's own command line, `{rank}` replaced; empty: started directly.
    public let launcher: [String]
    /// Address rank K binds on (tcp); empty: 127.0.0.1 for every rank.
    public let hosts: [String]

    /// Failures of a placement that cannot serve a run.
    public enum Problem: Error, Equatable, CustomStringConvertible {
        /// Fewer host addresses than ranks.
        case tooFewHosts(given: Int, worldSize: Int)
        /// An address that is empty or contains a character an endpoint cannot hold.
        case badHost(String)

        public var description: String {
            switch self {
            case let .tooFewHosts(given, worldSize):
                return "\(given) host address(es) given for \(worldSize) ranks: give one per rank"
            case let .badHost(host):
                return "'\(host)' is not a host address (a name or IP without spaces, ':' or '/')"
            }
        }
    }

    /// `launcher`: a command prefix split at spaces (nil or blank: none). `hosts`: comma-separated
    /// addresses (nil or blank: 127.0.0.1 for all).
    public init(launcher: String? = nil, hosts: String? = nil) throws(Problem) {
        self.launcher = (launcher ?? "").split(separator: " ").map(String.init)
        let list = (hosts ?? "").trimmingCharacters(in: .whitespaces)
        let addresses = list.isEmpty ? [] : list.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        for host in addresses where host.isEmpty || host.contains(where: { $0 == " " || $0 == ":" || $0 == "/" }) {
            throw .badHost(host)
        }
        self.hosts = addresses
    }

    /// Every rank on this host's loopback, started directly.
    public static let local = RankPlacement(launcherWords: [], hostList: [])

    private init(launcherWords: [String], hostList: [String]) {
        launcher = launcherWords
        hosts = hostList
    }

    /// True when ranks run on this host's loopback, started directly.
    public var isLocal: Bool { launcher.isEmpty && hosts.isEmpty }

    /// Throws unless every one of `worldSize` ranks has an address.
    public func check(worldSize: Int) throws(Problem) {
        guard hosts.isEmpty || hosts.count >= worldSize else { throw .tooFewHosts(given: hosts.count, worldSize: worldSize) }
    }

    /// The launcher's words for `rank` (to run before the rank's executable and arguments).
    public func launcherWords(rank: Int) -> [String] {
        launcher.map { $0.replacingOccurrences(of: Self.rankToken, with: "\(rank)") }
    }

    /// The address `rank` binds its sockets on.
    public func host(rank: Int) -> String { hosts.isEmpty ? "127.0.0.1" : hosts[rank] }
}
