import Foundation

/// SIGINT and SIGTERM as a flag a loop reads at each turn. The coordinator's: the first asks for
/// a stop at the next step boundary (weights are saved), the second for an immediate end. The
/// node supervisor's: stop every rank.
public final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var last: Int32?
    private var sources: [DispatchSourceSignal] = []

    public init() {}

    /// How many times a stop was asked for (0: keep going).
    public var requests: Int { lock.withLock { count } }

    /// The signal of the latest request (nil before any, or for `request()`).
    public var lastSignal: Int32? { lock.withLock { last } }

    public func request(signal: Int32? = nil) {
        lock.withLock {
            count += 1
            last = signal
        }
    }

    /// Catches SIGINT and SIGTERM from now on.
    public func install() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.request(signal: number) }
            source.resume()
            sources.append(source)
        }
    }
}
