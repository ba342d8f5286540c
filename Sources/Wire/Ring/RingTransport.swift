/// One rank's end of a ring collective, whatever carries the pieces: ZeroMQ sockets
/// (`RingCommunicator`, any hosts) or shared memory (`SharedMemoryRing`, same host).
/// Both run their collectives through the same `RingDriver` (a `RingPlan` walked by a
/// `RingMachine`), so the sums, their order, the identity rules, the drops and the errors are
/// the same; `CollectiveThread` drives either.
///
/// **Thread:** create, use and close a transport on one dedicated thread.
public protocol RingTransport: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// What the previous rank passes to `connect(toNext:curvePublicKey:)`.
    var endpoint: String { get }
    var statistics: RingStatistics { get }

    /// Connects to the next rank's `endpoint`.
    func connect(toNext endpoint: String, curvePublicKey: String?) throws(RingError)
    /// Sums `buffer` over all ranks in place; every rank ends with the same bytes.
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64) throws(RingError)
    /// Copies `root`'s buffer into every rank's `buffer`.
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int, generation: UInt64) throws(RingError)
    /// The all-reduce schedule without adding (benchmarks: the transport's ceiling).
    func allReduceSendsOnly(_ buffer: UnsafeMutableBufferPointer<Float>, generation: UInt64) throws(RingError)
    /// Releases the transport; false if a buffer may still be read by it (see `RingCommunicator.close`).
    @discardableResult
    func close() -> Bool
}

extension RingTransport {
    /// Connects without CURVE.
    public func connect(toNext endpoint: String) throws(RingError) {
        try connect(toNext: endpoint, curvePublicKey: nil)
    }
}

extension RingCommunicator: RingTransport {}
