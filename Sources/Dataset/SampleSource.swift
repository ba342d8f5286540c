import Images
import TensorFiles
/// Where a dataset's encoded images come from: files of a folder (`DatasetIndex`) or members of
/// tar shards (`ShardSet`). Samples are numbered 0..<count in the dataset's stable order.
public protocol SampleSource: Sendable {
    /// Number of samples.
    var count: Int { get }
    /// A name for sample `index` in messages: its path, or shard and member.
    func name(of index: Int) -> String
    /// The encoded bytes of sample `index`.
    func readBytes(of index: Int) throws(ImageError) -> [UInt8]
}

extension DatasetIndex: SampleSource {
    public func name(of index: Int) -> String { path(of: index) }

    public func readBytes(of index: Int) throws(ImageError) -> [UInt8] {
        let path = path(of: index)
        do {
            return try BinaryFile.read(path)
        } catch {
            throw .unreadable(file: path, reason: error.description)
        }
    }
}
