import Foundation

/// The public keys a CURVE server admits, each with the name of the certificate it came from
/// (`worker-3` for `worker-3.key`), for log lines.
public struct AdmittedKeys: Sendable, Equatable {
    /// Z85 public key -> certificate name.
    public private(set) var names: [String: String]

    /// Keys given directly (e.g. a ring neighbour's key from the assignment). Keys that are
    /// not 40 characters of Z85 can never match a peer and are refused here.
    public init(_ names: [String: String]) throws(CertificateError) {
        for (key, name) in names {
            if let problem = Z85Key.problem(key) { throw .invalidKey(path: "(given)", line: 0, name: name, reason: problem) }
        }
        self.names = names
    }

    public var isEmpty: Bool { names.isEmpty }
    public var count: Int { names.count }

    /// The certificate name of an admitted key, nil when the key is not admitted.
    public func name(of publicKey: String) -> String? { names[publicKey] }

    /// Every `*.key` file of `folder` (not `*.key_secret`, not hidden files), read in name
    /// order; `excluding` leaves out a key (the server's own `NAME.key`, if it sits beside its
    /// secret). A malformed file is an error naming it, not skipped: a typo must not lock a
    /// worker out silently. A folder without any admitted key is an error too.
    public static func load(folder: String, excluding ownPublicKey: String? = nil) throws(CertificateError) -> AdmittedKeys {
        var names: [String: String] = [:]
        for file in try CurveKeyFolder.files(in: folder, suffix: CurveCertificate.publicSuffix) {
            let key = try CurveCertificate.loadPublicKey(file: folder + "/" + file)
            if key == ownPublicKey { continue }
            if names[key] == nil { names[key] = String(file.dropLast(CurveCertificate.publicSuffix.count)) }
        }
        guard !names.isEmpty else { throw .noAdmittedKeys(folder: folder) }
        return AdmittedKeys(validated: names)
    }

    private init(validated names: [String: String]) { self.names = names }
}

/// The `--curve-keys DIR` layout (docs/decisions.md): the own `NAME.key_secret` and the `*.key`
/// of peers (`coordinator.key` for a worker; the admitted workers for the coordinator).
public enum CurveKeyFolder {
    /// The own key pair: `NAME.key_secret` when `name` is given, otherwise the only
    /// `*.key_secret` in `folder` (an error if there is none or there are several).
    public static func ownKeyPair(in folder: String, name: String? = nil) throws(CertificateError) -> CurveKeyPair {
        if let name {
            try CurveCertificate.validate(name: name)
            return try CurveCertificate.loadKeyPair(secretFile: folder + "/" + name + CurveCertificate.secretSuffix)
        }
        let secrets = try files(in: folder, suffix: CurveCertificate.secretSuffix)
        guard secrets.count == 1 else { throw .ownKeyNotFound(folder: folder, found: secrets) }
        return try CurveCertificate.loadKeyPair(secretFile: folder + "/" + secrets[0])
    }

    /// The public key of peer `name` (`NAME.key` in `folder`), e.g. `coordinator`.
    public static func peerPublicKey(in folder: String, name: String) throws(CertificateError) -> String {
        try CurveCertificate.validate(name: name)
        return try CurveCertificate.loadPublicKey(file: folder + "/" + name + CurveCertificate.publicSuffix)
    }

    /// Names of the files in `folder` ending in `suffix`, sorted, hidden files left out.
    static func files(in folder: String, suffix: String) throws(CertificateError) -> [String] {
        let all: [String]
        do {
            all = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw .unreadable(path: folder, reason: CurveCertificate.reason(of: error))
        }
        return all.filter { $0.hasSuffix(suffix) && !$0.hasPrefix(".") && $0.count > suffix.count }.sorted()
    }
}
