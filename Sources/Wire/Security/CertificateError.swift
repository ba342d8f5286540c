/// Why a CURVE certificate (or a folder of them) could not be read or written. Every case
/// names the file or folder, and the line when there is one, so a person can fix it.
public enum CertificateError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file or folder could not be read: missing, not a regular file, no permission.
    case unreadable(path: String, reason: String)
    /// A line is not valid ZPL (ZeroMQ's certificate text format).
    case malformed(path: String, line: Int, reason: String)
    /// A value the certificate must have (`curve/public-key`, `curve/secret-key`) is absent.
    case missingKey(path: String, name: String)
    /// A key is not 40 characters of Z85.
    case invalidKey(path: String, line: Int, name: String, reason: String)
    /// The secret key does not belong to the public key written beside it.
    case keyPairMismatch(path: String)
    /// A secret key file that group or others may access (`mode` is its permission bits).
    /// Refused, as ssh refuses such private keys: fix it with `chmod 600`.
    case secretKeyExposed(path: String, mode: UInt32)
    /// A folder meant to list admitted peers holds no `*.key` file.
    case noAdmittedKeys(folder: String)
    /// A folder holds no `*.key_secret` file, or several when one was expected.
    case ownKeyNotFound(folder: String, found: [String])
    /// `name` cannot name a certificate file.
    case invalidName(name: String, reason: String)
    /// Writing would replace an existing file.
    case alreadyExists(path: String)
    /// Writing failed.
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "cannot read \(path): \(reason)"
        case let .malformed(path, line, reason): "\(path), line \(line): \(reason)"
        case let .missingKey(path, name): "\(path): no \(name) in this certificate"
        case let .invalidKey(path, line, name, reason): "\(path), line \(line): \(name) is not a CURVE key: \(reason)"
        case let .keyPairMismatch(path): "\(path): the secret key does not belong to the public key beside it"
        case let .secretKeyExposed(path, mode):
            "\(path) has mode \(octal(mode)): a secret key must not be accessible to group or others (chmod 600 \(path))"
        case let .noAdmittedKeys(folder): "\(folder) holds no *.key file: no peer could be admitted"
        case let .ownKeyNotFound(folder, found):
            found.isEmpty ? "\(folder) holds no *.key_secret file (make one with scvae keygen)"
                : "\(folder) holds several secret keys (\(found.joined(separator: ", "))): say which one to use"
        case let .invalidName(name, reason): "\"\(name)\" cannot name a certificate: \(reason)"
        case let .alreadyExists(path): "\(path) already exists (not overwritten)"
        case let .unwritable(path, reason): "cannot write \(path): \(reason)"
        }
    }
}

/// Permission bits as `ls` users read them, e.g. 0644.
func octal(_ mode: UInt32) -> String {
    let digits = String(mode & 0o7777, radix: 8)
    return "0" + String(repeating: "0", count: max(0, 3 - digits.count)) + digits
}
