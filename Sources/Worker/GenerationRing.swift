import Wire

/// The collectives of one generation, on the transport its assignment names:
/// - TCP: the session's `RingCommunicator`, reformed in place (its receiving socket stays
///   bound across generations, so pieces that arrive early are kept);
/// - shared memory: a `SharedMemoryRing` made for this generation alone on a thread of its
///   own (segment names carry the run id, the generation and the rank, so a new generation
///   never meets an old segment), closed when the generation ends, which unlinks its inbox.
struct GenerationRing {
    let collectives: CollectiveThread
    let transport: RingTransportKind
    /// The shared-memory ring's thread belongs to this generation; the TCP one to the session.
    private let ownsCollectives: Bool

    enum Failure: Error {
        /// The ring could not be formed with the neighbours (one died, the generation ended).
        case ring(RingError)
        /// This worker could not set up the transport (shared memory: /dev/shm full or not
        /// writable, ...): the coordinator should give it TCP rings.
        case transportUnavailable(RingError)
    }

    /// Places this rank in `assignment`'s ring and connects it to the next rank.
    static func form(_ assignment: Assignment, runID: UInt64, sessionRing: CollectiveThread,
                     settings: RingSettings, curveKeyOfNext: String?) throws(Failure) -> GenerationRing {
        let rank = Int(assignment.rank), world = Int(assignment.worldSize)
        let ring: GenerationRing
        switch assignment.ringTransport {
        case .tcp:
            do {
                _ = try sessionRing.wait(sessionRing.reform(rank: rank, worldSize: world, runID: runID))
            } catch {
                throw .ring(error)
            }
            ring = GenerationRing(collectives: sessionRing, transport: .tcp, ownsCollectives: false)
        case .sharedMemory:
            let inbox = assignment.ringEndpoint
            do {
                let collectives = try CollectiveThread { () throws(RingError) -> SharedMemoryRing in
                    try SharedMemoryRing(rank: rank, worldSize: world, runID: runID, bindTo: inbox, settings: settings)
                }
                ring = GenerationRing(collectives: collectives, transport: .sharedMemory, ownsCollectives: true)
            } catch {
                throw .transportUnavailable(error)
            }
        }
        do {
            _ = try ring.collectives.wait(ring.collectives.connect(toNext: assignment.next.endpoint, curvePublicKey: curveKeyOfNext))
        } catch {
            ring.close()
            throw .ring(error)
        }
        return ring
    }

    /// Ends this generation's use of the ring: a shared-memory ring is closed (both neighbours
    /// are told, its segments unmapped and its inbox name removed); the TCP ring stays.
    func close() {
        guard ownsCollectives else { return }
        _ = try? collectives.wait(collectives.stop(), timeout: .seconds(30))
    }
}
