#if canImport(Glibc)
import Glibc

/// A POSIX shared-memory object (`/dev/shm/NAME`) mapped read-write into this process.
///
/// Created with mode 0600 (only this user's processes can map it). The mapping outlives the
/// name: once both ends have mapped a segment its name can be unlinked, and the kernel frees
/// the memory when the last process that maps it unmaps it or dies, even by `kill -9`.
final class SharedMemorySegment {
    let name: String
    let base: UnsafeMutableRawPointer
    let size: Int
    /// Identity of the object this process created, so `unlinkIfOwn` never removes a newer
    /// segment that happens to reuse the name.
    private let identity: (device: UInt64, inode: UInt64)?
    private var isMapped = true

    private init(name: String, base: UnsafeMutableRawPointer, size: Int, identity: (UInt64, UInt64)?) {
        self.name = name
        self.base = base
        self.size = size
        self.identity = identity
    }

    deinit { unmap() }

    /// Creates the object `name` of `size` zeroed bytes; fails with EEXIST if it exists.
    static func create(name: String, size: Int) throws(SystemCallError) -> SharedMemorySegment {
        let descriptor = shm_open("/" + name, O_CREAT | O_EXCL | O_RDWR, 0o600)
        guard descriptor >= 0 else { throw SystemCallError("shm_open /\(name)") }
        defer { close(descriptor) }
        guard ftruncate(descriptor, off_t(size)) == 0 else {
            let error = SystemCallError("ftruncate /\(name) to \(size) bytes")
            shm_unlink("/" + name)
            throw error
        }
        var status = stat()
        fstat(descriptor, &status)
        do throws(SystemCallError) {
            let base = try map(descriptor, size: size, writable: true, name: name)
            return SharedMemorySegment(name: name, base: base, size: size,
                                       identity: (UInt64(status.st_dev), UInt64(status.st_ino)))
        } catch {
            shm_unlink("/" + name)
            throw error
        }
    }

    /// Maps the existing object `name` whole; nil while it does not exist or is shorter than
    /// `minimumSize` (its creator has not sized it yet).
    static func open(name: String, minimumSize: Int, writable: Bool = true) throws(SystemCallError) -> SharedMemorySegment? {
        let descriptor = shm_open("/" + name, writable ? O_RDWR : O_RDONLY, 0)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw SystemCallError("shm_open /\(name)")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw SystemCallError("fstat /\(name)") }
        let size = Int(status.st_size)
        guard size >= minimumSize else { return nil }
        let base = try map(descriptor, size: size, writable: writable, name: name)
        return SharedMemorySegment(name: name, base: base, size: size, identity: nil)
    }

    /// Removes the name (the mapping stays valid). Missing already is fine.
    static func unlink(name: String) {
        shm_unlink("/" + name)
    }

    /// Removes the name if it still refers to the object this process created.
    func unlinkIfOwn() {
        guard let identity else { return }
        var status = stat()
        guard stat("/dev/shm/" + name, &status) == 0,
              UInt64(status.st_dev) == identity.device, UInt64(status.st_ino) == identity.inode else { return }
        SharedMemorySegment.unlink(name: name)
    }

    func unmap() {
        guard isMapped else { return }
        isMapped = false
        munmap(base, size)
    }

    private static func map(_ descriptor: Int32, size: Int, writable: Bool, name: String) throws(SystemCallError) -> UnsafeMutableRawPointer {
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        guard let base = mmap(nil, size, protection, MAP_SHARED, descriptor, 0), base != MAP_FAILED else {
            throw SystemCallError("mmap /\(name) (\(size) bytes)")
        }
        return base
    }
}

/// A failed system call: what was called and `errno`.
struct SystemCallError: Error, Equatable {
    var operation: String
    var number: Int32

    /// Captures the current `errno`.
    init(_ operation: String) {
        self.operation = operation
        self.number = errno
    }

    init(_ operation: String, errno number: Int32) {
        self.operation = operation
        self.number = number
    }

    /// As the ring reports transport failures (RingError.transport carries a `ZmqError`; the
    /// `.call` case is the generic "this call failed, errno, text" shape).
    var transportError: ZmqError {
        .call(operation: operation, errno: number, text: String(cString: strerror(number)))
    }
}
#endif
