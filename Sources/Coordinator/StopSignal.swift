import Foundation

/// SIGINT and SIGTERM as a flag the coordinator's loop reads at each turn: the first asks for a
/// stop at the next step boundary (weights are saved), the second for an immediate end.
public final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var sources: [DispatchSourceSignal] = []

    public init() {}

    /// How many times a stop was asked for (0: keep going).
    public var requests: Int { lock.withLock { count } }

    public func request() { lock.withLock { count += 1 } }

    /// Catches SIGINT and SIGTERM from now on.
    public func install() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.request() }
            source.resume()
            sources.append(source)
        }
    }
}
