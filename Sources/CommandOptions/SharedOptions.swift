import ArgumentParser

/// The options the executables share, declared once so that their names,
/// help and defaults cannot drift apart (`@OptionGroup var security: SecurityOptions`).

/// CURVE: who may talk to this process, and whether plain text is allowed off the host.
public struct SecurityOptions: ParsableArguments {
    @Option(name: .customLong("curve-keys"), help: """
        CURVE key folder (scvae keygen). The coordinator's holds coordinator.key_secret and the NAME.key of \
        every admitted worker; a worker's holds its own NAME.key_secret and coordinator.key. Control and ring \
        traffic are then authenticated and encrypted; other peers are refused and logged.
        """)
    public var curveKeys: String?

    @Flag(help: "Allow an address reachable from other machines (--listen, --host) without --curve-keys: plain text that anyone on the network can join.")
    public var insecure = false

    public init() {}
}

/// Where the data and its index cache are.
public struct DataOptions: ParsableArguments {
    @Option(help: """
        Dataset folder as this process sees it: ImageNet layout ROOT/<wnid>/<file>, any folder of images \
        (recursive), or a shard directory written by `scvae pack` (default: the built-in sample data). The \
        coordinator and every worker must see the same files (the index fingerprint is compared).
        """)
    public var data: String?

    @Option(name: .customLong("cache-dir"), help: "Index and sample-data cache (default: $XDG_CACHE_HOME/scvae, else ~/.cache/scvae).")
    public var cacheDir: String?

    public init() {}
}
