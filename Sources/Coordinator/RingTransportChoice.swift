import Wire

/// --ring-transport: what carries the workers' ring all-reduce.
public enum RingTransportMode: String, CaseIterable, Sendable {
    /// Shared memory when every rank of a generation can share it, else TCP.
    case auto
    /// Always ZeroMQ over TCP.
    case tcp
    /// Always shared memory; a generation whose ranks cannot share it is an error.
    case shm
}

/// Decides, per generation, whether the ring runs over shared memory or TCP (the Instance:
/// no I/O; `CoordinatorServer` carries the choice out). Shared memory needs every rank to
/// name the same `SharedMemoryHost` identity, which a worker names only when it has the
/// capability and has not failed to set up a shared-memory ring before.
public enum RingTransportChoice {
    /// One rank as the decision sees it.
    public struct Rank: Equatable, Sendable {
        public var workerID: String
        /// The worker's shared-memory identity; nil when it cannot (or may no longer) use it.
        public var sharedMemoryHost: String?

        public init(workerID: String, sharedMemoryHost: String?) {
            self.workerID = workerID
            self.sharedMemoryHost = sharedMemoryHost
        }
    }

    public enum Decision: Equatable, Sendable {
        case sharedMemory
        /// `reason` says why not shared memory, for the log.
        case tcp(reason: String)

        public var kind: RingTransportKind {
            if case .sharedMemory = self { return .sharedMemory }
            return .tcp
        }
    }

    /// --ring-transport shm with ranks that cannot share memory.
    public struct NotColocated: Error, Equatable, CustomStringConvertible {
        public var detail: String
        public var description: String { "--ring-transport shm: \(detail); use --ring-transport auto or tcp" }
    }

    /// The transport of a generation of `ranks` (in rank order).
    public static func decide(mode: RingTransportMode, ranks: [Rank]) throws(NotColocated) -> Decision {
        if mode == .tcp { return .tcp(reason: "--ring-transport tcp") }
        guard let blocker = whyNotShared(ranks) else { return .sharedMemory }
        if mode == .shm { throw NotColocated(detail: blocker) }
        return .tcp(reason: blocker)
    }

    /// Why `ranks` cannot share memory; nil when they can.
    static func whyNotShared(_ ranks: [Rank]) -> String? {
        let unable = ranks.filter { $0.sharedMemoryHost == nil }.map(\.workerID)
        if !unable.isEmpty {
            return "worker \(unable.joined(separator: ", ")) cannot use shared memory (no support, or it failed before)"
        }
        var groups: [String: [String]] = [:]
        for rank in ranks { groups[rank.sharedMemoryHost ?? "", default: []].append(rank.workerID) }
        guard groups.count > 1 else { return nil }
        let described = groups.values.map { "{\($0.joined(separator: ", "))}" }.sorted()
        return "the ranks are on \(groups.count) different hosts: \(described.joined(separator: " "))"
    }
}
