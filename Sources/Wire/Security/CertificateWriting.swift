import Foundation

extension CurveCertificate {
    /// The two files of one certificate.
    public struct Files: Sendable, Equatable {
        public var publicFile: String
        public var secretFile: String
    }

    /// Writes `NAME.key` (mode 0644) and `NAME.key_secret` (mode 0600) into `folder`, creating
    /// the folder (mode 0700) if needed. Each file is written under a temporary name and renamed,
    /// so a reader never sees half a key. Existing files are kept unless `overwrite`.
    @discardableResult
    public static func write(_ keys: CurveKeyPair, name: String, to folder: String,
                             overwrite: Bool = false) throws(CertificateError) -> Files {
        try validate(name: name)
        let files = Files(publicFile: folder + "/" + name + publicSuffix, secretFile: folder + "/" + name + secretSuffix)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .unwritable(path: folder, reason: reason(of: error))
        }
        if !overwrite {
            for path in [files.publicFile, files.secretFile] where FileManager.default.fileExists(atPath: path) {
                throw .alreadyExists(path: path)
            }
        }
        try writeFile(files.secretFile, secretText(keys, name: name), mode: 0o600)
        try writeFile(files.publicFile, publicText(keys, name: name), mode: 0o644)
        return files
    }

    /// Names become file names: no path separators, no leading dot, printable ASCII.
    static func validate(name: String) throws(CertificateError) {
        guard !name.isEmpty else { throw .invalidName(name: name, reason: "empty") }
        guard !name.hasPrefix(".") else { throw .invalidName(name: name, reason: "starts with a dot") }
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "-_.@+".unicodeScalars.contains(scalar))
        }
        guard allowed else { throw .invalidName(name: name, reason: "use letters, digits and -_.@+ only") }
    }

    /// Creates `path` with exactly `mode` (not widened by the umask, never readable by others
    /// in between), fsyncs it and renames it into place.
    private static func writeFile(_ path: String, _ text: String, mode: mode_t) throws(CertificateError) {
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(0o600))
        guard descriptor >= 0 else { throw .unwritable(path: temporary, reason: String(cString: strerror(errno))) }
        var failure: String?
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { writeAll(descriptor, $0) }
        if written != bytes.count { failure = written < 0 ? String(cString: strerror(errno)) : "short write" }
        if failure == nil && fchmod(descriptor, mode) != 0 { failure = String(cString: strerror(errno)) }
        if failure == nil && fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
        close(descriptor)
        if failure == nil && rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(temporary)
            throw .unwritable(path: path, reason: failure)
        }
    }
}

/// `write(2)` at file scope, where `CurveCertificate.write` does not hide it.
private func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
    var offset = 0
    while offset < bytes.count {
        let count = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { return count < 0 ? -1 : offset }
        offset += count
    }
    return offset
}
