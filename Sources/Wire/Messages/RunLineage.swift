/// What makes two replicas states of the same training: the model configuration, the data, the
/// global batch, the seed and the optimizer. A coordinator restarted with the same settings
/// continues the same lineage, so a replica a live worker kept through the restart is worth as
/// much as a checkpoint of its step (more, when it is newer). Coordinator and workers compute
/// the same `id` from the same fields; it travels in `Hello.replica`.
public struct RunLineage: Equatable, Sendable, CustomStringConvertible {
    public var config: String
    public var datasetFingerprint: String
    public var globalBatch: Int
    public var seed: UInt64
    public var optimizer: String

    public init(config: String, datasetFingerprint: String, globalBatch: Int, seed: UInt64, optimizer: String) {
        self.config = config
        self.datasetFingerprint = datasetFingerprint
        self.globalBatch = globalBatch
        self.seed = seed
        self.optimizer = optimizer
    }

    /// FNV-1a (64 bit) of the fields, separated by zero bytes: stable across processes and builds.
    public var id: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let fields = [config, datasetFingerprint, String(globalBatch), String(seed), optimizer]
        for (index, field) in fields.enumerated() {
            if index > 0 { hash = (hash ^ 0) &* 0x0000_0100_0000_01b3 }
            for byte in field.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        }
        return hash
    }

    public var description: String {
        "\(config), global batch \(globalBatch), seed \(seed), \(optimizer), data \(datasetFingerprint.prefix(16))"
    }
}
