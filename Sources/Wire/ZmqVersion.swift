import CZmq

/// The libzmq version this process is linked against, as "major.minor.patch".
public func zmqLibraryVersion() -> String {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    zmq_version(&major, &minor, &patch)
    return "\(major).\(minor).\(patch)"
}
