import Wire

/// Who is in the run, which rank each worker has, and when a new generation starts.
///
/// A value with no I/O: `RunController` feeds it hellos, reports and the time, and carries out
/// the directives it returns. Every membership change starts a new generation, which resumes
/// from the most advanced replica (docs/architecture.md, "Generations").
public struct Membership: Sendable {
    /// Fixed rules of admission and liveness.
    public struct Rules: Sendable, Equatable {
        /// Workers the run wants (--workers).
        public var targetWorkers: Int
        /// Below this many live workers training pauses (--min-workers).
        public var minimumWorkers: Int
        /// The protocol version this coordinator speaks.
        public var protocolVersion: UInt16
        /// Fingerprint of the coordinator's dataset index; workers must see the same data.
        public var datasetFingerprint: String
        /// A worker not heard from for this long is declared down.
        public var livenessDeadline: Double

        public init(targetWorkers: Int, minimumWorkers: Int? = nil, protocolVersion: UInt16,
                    datasetFingerprint: String, livenessDeadline: Double = 3) {
            self.targetWorkers = targetWorkers
            self.minimumWorkers = minimumWorkers ?? targetWorkers
            self.protocolVersion = protocolVersion
            self.datasetFingerprint = datasetFingerprint
            self.livenessDeadline = livenessDeadline
        }
    }

    /// Statuses, ordered so that `<= .up` means live. Transitions: joining -> up when a
    /// generation starts; up -> joining when training pauses below the minimum, or when the
    /// worker says hello again (it left its generation); joining or up -> down when the worker is
    /// lost or silent. A down worker that says hello again is a new member.
    /// `joining` workers have been welcomed but are not in a generation yet.
    public enum Status: Int, Comparable, Sendable {
        case joining, up, down
        public static func < (a: Status, b: Status) -> Bool { a.rawValue < b.rawValue }
    }

    public struct Member: Sendable, Equatable {
        public var id: String
        public var host: String
        public var dataPlaneEndpoint: String
        public var status: Status
        public var lastHeard: Double
        /// Rank in the current generation (nil while joining).
        public var rank: Int?
        /// The steps this worker's replica has applied (from its hello, its step reports and its
        /// generations' starts); -1 when it holds no replica of this run's lineage.
        public var appliedStep: Int
        /// Order of admission: ranks follow it, so survivors keep their relative order.
        public var admission: Int
        /// The worker process (`Hello.instance`) and how many times it has said hello anew.
        public var instance: UInt64
        public var joins: UInt32
    }

    /// What a hello carries that admission looks at.
    public struct Hello: Sendable, Equatable {
        public var workerID: String
        public var protocolVersion: UInt16
        public var host: String
        public var dataPlaneEndpoint: String
        public var datasetFingerprint: String
        /// The process (`Hello.instance`) and its join count (`Hello.joins`).
        public var instance: UInt64
        public var joins: UInt32
        /// The step of the replica the worker holds of this run's lineage; -1 for none.
        public var replicaStep: Int
        /// The IP address the hello came from (its control connection), when the transport says.
        public var connectedFrom: String?

        public init(workerID: String, protocolVersion: UInt16, host: String,
                    dataPlaneEndpoint: String, datasetFingerprint: String, instance: UInt64 = 0,
                    joins: UInt32 = 1, replicaStep: Int = -1, connectedFrom: String? = nil) {
            self.connectedFrom = connectedFrom
            self.instance = instance
            self.joins = joins
            self.replicaStep = replicaStep
            self.workerID = workerID
            self.protocolVersion = protocolVersion
            self.host = host
            self.dataPlaneEndpoint = dataPlaneEndpoint
            self.datasetFingerprint = datasetFingerprint
        }
    }

    /// Why a worker was turned away.
    public enum Refusal: Sendable, Equatable {
        /// It speaks another protocol version.
        case protocolVersionMismatch(worker: UInt16, coordinator: UInt16)
        /// It sees a different dataset index.
        case datasetMismatch(worker: String, coordinator: String)
        /// A live worker process (another instance) already has this id.
        case duplicateWorkerID
        /// The run already has --workers live workers.
        case runFull(workers: Int)
        /// It advertises a loopback ring address but connects from another machine: its
        /// neighbours would dial their own loopback.
        case unreachableRingAddress(advertised: String, connectedFrom: String)
        /// Its previous rank could not connect to its ring address (`exclude(_:unreachableFrom:)`);
        /// this process is not admitted again (a restarted one is).
        case ringAddressNotReached(advertised: String, reportedBy: String)
    }

    /// One rank's place in a new generation.
    public struct Placement: Sendable, Equatable {
        public var workerID: String
        public var rank: Int
        public var previousWorkerID: String
        public var nextWorkerID: String
    }

    /// What the shell must do.
    public enum Directive: Sendable, Equatable {
        /// Tell this worker it is admitted.
        case welcome(workerID: String)
        /// Tell this worker why it is refused; the run goes on.
        case refuse(workerID: String, Refusal)
        /// Start generation `generation` with these ranks, resuming after `resumeStep` (-1: from
        /// the start) with parameters held by `stateSourceRank`.
        case startGeneration(generation: UInt64, placements: [Placement], resumeStep: Int, stateSourceRank: Int)
        /// These workers were declared down (not heard from within the deadline).
        case declaredDown(workerIDs: [String], generation: UInt64)
        /// Too few live workers: training waits for more to join.
        case pause(liveWorkers: Int, minimumWorkers: Int)
    }

    public let rules: Rules
    public private(set) var generation: UInt64 = 0
    /// The first generation forms at --min-workers rather than --workers (a resumed run: the
    /// workers that are here hold the state, and waiting for the rest would only delay them).
    public private(set) var startsAtMinimum = false
    /// A stop was asked for: whoever is live forms a generation, to save the state.
    public private(set) var minimumWaived = false
    public private(set) var members: [String: Member] = [:]
    private var admissions = 0
    /// Processes (by instance) left out of the run for good, and why.
    private var excludedInstances: [UInt64: Refusal] = [:]

    public init(rules: Rules) {
        self.rules = rules
    }

    /// Live workers (joining or up), by admission order.
    public var liveMembers: [Member] {
        members.values.filter { $0.status <= .up }.sorted { $0.admission < $1.admission }
    }

    /// Workers in the current generation, by rank.
    public var ranked: [Member] {
        members.values.filter { $0.status == .up }.sorted { ($0.rank ?? 0) < ($1.rank ?? 0) }
    }

    /// A worker says hello: admit it (and maybe start a generation) or refuse it. Checks come
    /// before anything changes: a refused hello never disturbs a member. A hello from a live
    /// member's own process with a newer join count means that worker left its generation (it
    /// lost the coordinator, or was told it is not a member): it is welcomed again, and a
    /// generation it was in is formed anew.
    public mutating func receive(hello: Hello, now: Double) -> [Directive] {
        if hello.protocolVersion != rules.protocolVersion {
            return [.refuse(workerID: hello.workerID, .protocolVersionMismatch(
                worker: hello.protocolVersion, coordinator: rules.protocolVersion))]
        }
        if hello.datasetFingerprint != rules.datasetFingerprint {
            return [.refuse(workerID: hello.workerID, .datasetMismatch(
                worker: hello.datasetFingerprint, coordinator: rules.datasetFingerprint))]
        }
        if let from = hello.connectedFrom, !isLoopbackHost(from), isLoopbackEndpoint(hello.dataPlaneEndpoint),
           hello.dataPlaneEndpoint.hasPrefix("tcp://") {
            return [.refuse(workerID: hello.workerID, .unreachableRingAddress(advertised: hello.dataPlaneEndpoint, connectedFrom: from))]
        }
        if let refusal = excludedInstances[hello.instance] {
            return [.refuse(workerID: hello.workerID, refusal)]
        }
        if var existing = members[hello.workerID], existing.status <= .up {
            guard existing.instance == hello.instance else {
                return [.refuse(workerID: hello.workerID, .duplicateWorkerID)]
            }
            // A repeated hello of the same join (sent before the welcome arrived), or an old one.
            guard hello.joins > existing.joins else { return [.welcome(workerID: hello.workerID)] }
            let wasInGeneration = existing.status == .up
            existing.joins = hello.joins
            existing.host = hello.host
            existing.dataPlaneEndpoint = hello.dataPlaneEndpoint
            existing.lastHeard = max(existing.lastHeard, now)
            existing.appliedStep = hello.replicaStep
            existing.status = .joining
            existing.rank = nil
            members[hello.workerID] = existing
            return [.welcome(workerID: hello.workerID)] + (wasInGeneration ? formGeneration() : formGenerationIfReady())
        }
        if liveMembers.count >= rules.targetWorkers {
            return [.refuse(workerID: hello.workerID, .runFull(workers: rules.targetWorkers))]
        }
        admissions += 1
        members[hello.workerID] = Member(
            id: hello.workerID, host: hello.host, dataPlaneEndpoint: hello.dataPlaneEndpoint,
            status: .joining, lastHeard: now, rank: nil, appliedStep: hello.replicaStep, admission: admissions,
            instance: hello.instance, joins: hello.joins)
        return [.welcome(workerID: hello.workerID)] + formGenerationIfReady()
    }

    /// From now on the first generation forms as soon as --min-workers are live.
    public mutating func startAtMinimum() { startsAtMinimum = true }

    /// From now on a generation forms with any live worker (a stop was asked for).
    public mutating func waiveMinimum() { minimumWaived = true }

    /// The fewest live workers a generation needs now.
    public var minimumNow: Int { minimumWaived ? 1 : rules.minimumWorkers }

    /// Any message from a worker proves it alive.
    public mutating func heard(from workerID: String, now: Double) {
        guard var member = members[workerID], member.status <= .up else { return }
        member.lastHeard = max(member.lastHeard, now)
        members[workerID] = member
    }

    /// A worker reports the last step it applied (in the current generation).
    public mutating func applied(step: Int, by workerID: String, generation reported: UInt64, now: Double) {
        heard(from: workerID, now: now)
        guard reported == generation, var member = members[workerID], member.status == .up else { return }
        member.appliedStep = max(member.appliedStep, step)
        members[workerID] = member
    }

    /// Every rank of the current generation holds the state of `step` (their start was confirmed).
    public mutating func synchronised(step: Int) {
        for member in ranked { members[member.id]?.appliedStep = step }
    }

    /// These workers turned out to hold no usable replica (a state agreement found none).
    public mutating func forgetReplicas(of ids: [String]) {
        for id in ids { members[id]?.appliedStep = -1 }
    }

    /// The coordinator itself did not run for a while (stopped, starved): nobody's silence in that
    /// time counts against them.
    public mutating func excuseSilence(until now: Double) {
        for member in liveMembers { members[member.id]?.lastHeard = max(member.lastHeard, now) }
    }

    /// A generation of whoever is live, even below the minimum (to save the state of a run that
    /// was asked to stop while paused); nothing when no worker is live.
    public mutating func formGenerationOfTheLive() -> [Directive] {
        guard !liveMembers.isEmpty else { return [] }
        return formGeneration(minimum: 1)
    }

    /// A worker said goodbye or its connection is known to be gone.
    public mutating func lost(_ workerID: String, now: Double) -> [Directive] {
        guard let member = members[workerID], member.status <= .up else { return [] }
        return declareDown([workerID])
    }

    /// `workerID`'s ring address cannot be reached by `reporter`, its previous rank: it is told
    /// why and left out of the run (this process for good; a restarted one may join), and the
    /// others form a generation without it, or pause below the minimum.
    public mutating func exclude(_ workerID: String, unreachableFrom reporter: String) -> [Directive] {
        guard let member = members[workerID], member.status <= .up else { return [] }
        let refusal = Refusal.ringAddressNotReached(advertised: member.dataPlaneEndpoint, reportedBy: reporter)
        excludedInstances[member.instance] = refusal
        let wasInGeneration = member.status == .up
        members[workerID]?.status = .down
        members[workerID]?.rank = nil
        return [.refuse(workerID: workerID, refusal)] + (wasInGeneration ? formGeneration() : [])
    }

    /// A new generation of the same live workers (after a ring failure the workers reported):
    /// a fresh ring and state agreement, nobody removed.
    public mutating func reform() -> [Directive] {
        guard generation > 0, !ranked.isEmpty else { return [] }
        return formGeneration()
    }

    /// Periodic liveness check: workers silent past the deadline are down. Workers down for
    /// longer than `forgetAfter` seconds are forgotten (a stream of short-lived ids must not grow
    /// the table); their ids returned by `forgotten()`.
    public mutating func tick(now: Double) -> [Directive] {
        let silent = liveMembers.filter { now - $0.lastHeard > rules.livenessDeadline }.map(\.id)
        return silent.isEmpty ? [] : declareDown(silent)
    }

    /// Seconds a down worker is remembered (so that its late messages get a "not a member").
    public static let forgetAfter = 600.0

    /// Removes workers down for longer than `forgetAfter`; returns their ids.
    public mutating func forgetLongGone(now: Double) -> [String] {
        let gone = members.values.filter { $0.status == .down && now - $0.lastHeard > Self.forgetAfter }.map(\.id)
        for id in gone { members[id] = nil }
        return gone
    }

    private mutating func declareDown(_ ids: [String]) -> [Directive] {
        let wasInGeneration = ids.contains { members[$0]?.status == .up }
        for id in ids { members[id]?.status = .down; members[id]?.rank = nil }
        var directives: [Directive] = [.declaredDown(workerIDs: ids.sorted(), generation: generation)]
        if wasInGeneration { directives += formGeneration() }
        return directives
    }

    private mutating func formGenerationIfReady() -> [Directive] {
        let live = liveMembers
        let anyJoining = live.contains { $0.status == .joining }
        guard anyJoining else { return [] }
        // At the start wait for the full world (or the minimum, resuming); once training, a joiner
        // fills a gap at once.
        if generation == 0 && live.count < (startsAtMinimum || minimumWaived ? minimumNow : rules.targetWorkers) { return [] }
        return formGeneration()
    }

    /// Ranks follow admission order; the most advanced replica provides the state.
    private mutating func formGeneration(minimum: Int? = nil) -> [Directive] {
        let live = liveMembers
        guard live.count >= (minimum ?? minimumNow) else {
            for member in live where member.status == .up {
                members[member.id]?.status = .joining
                members[member.id]?.rank = nil
            }
            return [.pause(liveWorkers: live.count, minimumWorkers: rules.minimumWorkers)]
        }
        generation += 1
        let source = live.max { a, b in
            a.appliedStep != b.appliedStep ? a.appliedStep < b.appliedStep : a.admission > b.admission
        }!
        var placements: [Placement] = []
        for (rank, member) in live.enumerated() {
            members[member.id]?.status = .up
            members[member.id]?.rank = rank
            placements.append(Placement(
                workerID: member.id, rank: rank,
                previousWorkerID: live[(rank + live.count - 1) % live.count].id,
                nextWorkerID: live[(rank + 1) % live.count].id))
        }
        let sourceRank = placements.first { $0.workerID == source.id }!.rank
        return [.startGeneration(generation: generation, placements: placements,
                                 resumeStep: source.appliedStep, stateSourceRank: sourceRank)]
    }
}
