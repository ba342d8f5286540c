#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Images
import TensorFiles

/// The open shard files of a `ShardSet`, shared by every thread that reads the set.
///
/// pread(2) takes its offset as an argument and keeps no file position, so one descriptor serves
/// all threads at once, and a sample costs one system call instead of a folder's open, fstat,
/// read and close. At most `limit` descriptors stay cached (half the process's soft limit on open
/// files, at most 4096, so sockets and checkpoint files keep room); beyond that the one opened
/// first leaves the cache and is closed when its last reader is done with it.
final class ShardFiles: @unchecked Sendable {
    /// One open shard: closed when the cache and every reader have let go of it.
    private final class OpenFile: @unchecked Sendable {
        let descriptor: Int32
        /// Bytes of the file when it was opened.
        let size: Int

        init(descriptor: Int32, size: Int) {
            self.descriptor = descriptor
            self.size = size
        }

        deinit { close(descriptor) }
    }

    let directory: String
    let limit: Int
    private let lock = ConditionLock()
    private var cached: [String: OpenFile] = [:]
    private var openingOrder: [String] = []

    init(directory: String, limit: Int = ShardFiles.defaultLimit()) {
        precondition(limit > 0, "ShardFiles: the limit must be positive")
        self.directory = directory
        self.limit = limit
    }

    /// Half the soft limit on open files, between 16 and 4096.
    static func defaultLimit() -> Int {
        var files = rlimit()
        #if canImport(Glibc)
        let status = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files)
        #else
        let status = getrlimit(RLIMIT_NOFILE, &files)
        #endif
        guard status == 0 else { return 256 }
        return min(max(Int(clamping: files.rlim_cur) / 2, 16), 4096)  // unlimited clamps to 4096
    }

    /// Descriptors cached now.
    var openCount: Int { lock.withLock { cached.count } }

    /// `count` bytes at `offset` of `shard`. A shard that ends before them is `.truncated`
    /// (checked before any memory is allocated, so a damaged index cannot exhaust memory); errors
    /// name the sample as `name`.
    func read(shard: String, offset: Int, count: Int, name: String) throws(ImageError) -> [UInt8] {
        let file = try self.file(shard, name: name)
        guard offset >= 0, count >= 0, offset <= file.size, count <= file.size - offset else {
            throw .truncated(file: name, reason: "the shard has \(file.size) bytes; the member needs bytes \(offset) to \(offset &+ count)")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = bytes.withUnsafeMutableBytes { buffer in
                pread(file.descriptor, buffer.baseAddress! + filled, count - filled, off_t(offset + filled))
            }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw .unreadable(file: name, reason: String(cString: strerror(errno))) }
            guard got > 0 else { throw .truncated(file: name, reason: "the shard ends inside the member (it shrank after it was opened)") }
            filled += got
        }
        return bytes
    }

    private func file(_ shard: String, name: String) throws(ImageError) -> OpenFile {
        if let file = lock.withLock({ cached[shard] }) { return file }
        // Opened outside the lock; when two threads race, the second keeps the first's descriptor.
        let path = directory + "/" + shard
        let descriptor = openForReading(path)
        guard descriptor >= 0 else { throw .unreadable(file: name, reason: String(cString: strerror(errno))) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw .unreadable(file: name, reason: "\(path) is not a regular file")
        }
        let opened = OpenFile(descriptor: descriptor, size: Int(status.st_size))
        return lock.withLock {
            if let winner = cached[shard] { return winner }
            if cached.count >= limit, !openingOrder.isEmpty {
                cached[openingOrder.removeFirst()] = nil
            }
            cached[shard] = opened
            openingOrder.append(shard)
            return opened
        }
    }
}

/// POSIX open(2) for reading, named apart from the `open` methods of the types here.
func openForReading(_ path: String) -> Int32 {
    open(path, O_RDONLY | O_CLOEXEC)
}
