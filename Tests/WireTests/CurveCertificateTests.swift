import Foundation
import Testing
@testable import Wire

/// Certificate files: what keygen writes, what pyzmq and czmq write, and what must be refused.
@Suite struct CurveCertificateTests {
    /// The client key pair of ZeroMQ's CURVE test vectors (zmq_curve(7)).
    static let vectorPublic = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
    static let vectorSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
    /// The server public key of the same vectors.
    static let vectorServerPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"

    @Test func writtenCertificatesLoadBackWithPrivateSecretFile() throws {
        let folder = try TemporaryFolder()
        let keys = try CurveKeyPair.generate()
        let files = try CurveCertificate.write(keys, name: "worker-0", to: folder.path)
        #expect(files.publicFile == folder.path + "/worker-0.key")
        #expect(files.secretFile == folder.path + "/worker-0.key_secret")
        #expect(try CurveCertificate.permissionBits(files.secretFile) == 0o600)
        #expect(try CurveCertificate.permissionBits(files.publicFile) == 0o644)
        #expect(try CurveCertificate.loadKeyPair(secretFile: files.secretFile) == keys)
        #expect(try CurveCertificate.loadPublicKey(file: files.publicFile) == keys.publicKey)
        let publicText = try String(contentsOfFile: files.publicFile, encoding: .utf8)
        #expect(!publicText.contains(keys.secretKey))
        #expect(publicText.contains("curve\n    public-key = \"\(keys.publicKey)\"\n"))
    }

    @Test func existingCertificatesAreNotOverwrittenUnlessAsked() throws {
        let folder = try TemporaryFolder()
        let first = try CurveKeyPair.generate()
        let second = try CurveKeyPair.generate()
        let files = try CurveCertificate.write(first, name: "node", to: folder.path)
        #expect(throws: CertificateError.alreadyExists(path: files.publicFile)) {
            try CurveCertificate.write(second, name: "node", to: folder.path)
        }
        #expect(try CurveCertificate.loadKeyPair(secretFile: files.secretFile) == first)
        try CurveCertificate.write(second, name: "node", to: folder.path, overwrite: true)
        #expect(try CurveCertificate.loadKeyPair(secretFile: files.secretFile) == second)
    }

    @Test(arguments: ["", "../escape", "a/b", ".hidden", "sp ace"])
    func namesThatCannotBeFileNamesAreRefused(name: String) throws {
        let folder = try TemporaryFolder()
        #expect(throws: CertificateError.self) { try CurveCertificate.write(try CurveKeyPair.generate(), name: name, to: folder.path) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test(arguments: [0o644 as UInt32, 0o640, 0o604, 0o660])
    func secretFileAccessibleToOthersIsRefusedWithItsNameAndMode(mode: UInt32) throws {
        let folder = try TemporaryFolder()
        let files = try CurveCertificate.write(try CurveKeyPair.generate(), name: "leaky", to: folder.path)
        #expect(chmod(files.secretFile, mode_t(mode)) == 0)
        #expect(throws: CertificateError.secretKeyExposed(path: files.secretFile, mode: mode)) {
            try CurveCertificate.loadKeyPair(secretFile: files.secretFile)
        }
        let message = CertificateError.secretKeyExposed(path: files.secretFile, mode: mode).description
        #expect(message.contains(files.secretFile) && message.contains(octal(mode)))
        #expect(chmod(files.secretFile, 0o400) == 0)
        #expect(throws: Never.self) { try CurveCertificate.loadKeyPair(secretFile: files.secretFile) }
    }

    /// The text pyzmq's `zmq.auth.create_certificates` writes (here with `metadata={"role": "worker"}`),
    /// by hand. pyzmq leaves the secret file at the umask's mode (often 0644): chmod 600 it first.
    @Test func pyzmqCertificatesLoad() throws {
        let secret = """
            #   ****  Generated on 2024-05-01 10:00:00.000000 by pyzmq  ****
            #   ZeroMQ CURVE **Secret** Certificate
            #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

            metadata
                role = worker
            curve
                public-key = "\(Self.vectorPublic)"
                secret-key = "\(Self.vectorSecret)"

            """
        let folder = try TemporaryFolder()
        let path = folder.path + "/client.key_secret"
        try folder.write(secret, to: "client.key_secret", mode: 0o600)
        #expect(try CurveCertificate.loadKeyPair(secretFile: path)
            == CurveKeyPair(publicKey: Self.vectorPublic, secretKey: Self.vectorSecret))
        #expect(try CurveCertificate.loadPublicKey(file: path) == Self.vectorPublic)
    }

    /// czmq's `zcert_save` writes metadata entries and CRLF survives editors on other systems.
    @Test func czmqCertificateWithMetadataAndCRLFLoads() throws {
        let text = "#   ZeroMQ CURVE Public Certificate\r\n\r\nmetadata\r\n    name = \"server\"\r\n    email = admin@example.org   # unquoted\r\n" +
            "curve\r\n    public-key = '\(Self.vectorServerPublic)'\r\n"
        #expect(try CurveCertificate.publicKey(parsing: text, path: "server.key") == Self.vectorServerPublic)
    }

    @Test func malformedCertificatesNameTheFileAndLine() {
        let good = "    public-key = \"\(Self.vectorPublic)\""
        let cases: [(String, CertificateError)] = [
            ("curve\n\t" + good.trimmingCharacters(in: .whitespaces), .malformed(path: "c.key", line: 2, reason: "tab in the indentation (ZPL indents with four spaces)")),
            ("curve\n  public-key = \"x\"", .malformed(path: "c.key", line: 2, reason: "indentation of 2 spaces is not a multiple of four")),
            ("metadata\ncurve\n    public-key = \"\(Self.vectorPublic)", .malformed(path: "c.key", line: 3, reason: "the quoted value of public-key is not closed")),
            ("curve\n        public-key = \"x\"", .malformed(path: "c.key", line: 2, reason: "indented 2 levels below a section 1 deep")),
            ("metadata\ncurve\n" + good + "\n" + good, .malformed(path: "c.key", line: 4, reason: "curve/public-key is given twice")),
            ("metadata\n", .missingKey(path: "c.key", name: "curve/public-key")),
            ("# comment\ncurve\n    public-key = \"short\"", .invalidKey(path: "c.key", line: 3, name: "curve/public-key",
                                                                     reason: "5 characters, Z85 keys have 40")),
            ("curve\n    public-key = \"\(String(repeating: "~", count: 40))\"",
             .invalidKey(path: "c.key", line: 2, name: "curve/public-key", reason: "characters outside the Z85 alphabet")),
        ]
        for (text, expected) in cases {
            #expect(throws: expected, "\(text)") { try CurveCertificate.publicKey(parsing: text, path: "c.key") }
        }
    }

    @Test func secretKeyOfAnotherPublicKeyIsRefused() {
        let text = "curve\n    public-key = \"\(Self.vectorServerPublic)\"\n    secret-key = \"\(Self.vectorSecret)\"\n"
        #expect(throws: CertificateError.keyPairMismatch(path: "x.key_secret")) {
            try CurveCertificate.keyPair(parsing: text, path: "x.key_secret")
        }
        #expect(throws: CertificateError.missingKey(path: "y.key_secret", name: "curve/secret-key")) {
            try CurveCertificate.keyPair(parsing: "curve\n    public-key = \"\(Self.vectorPublic)\"\n", path: "y.key_secret")
        }
    }

    @Test func missingFileIsUnreadableWithItsPath() {
        #expect {
            try CurveCertificate.loadPublicKey(file: "/nonexistent/scvae/x.key")
        } throws: { error in
            guard case let .unreadable(path, reason)? = error as? CertificateError else { return false }
            return path == "/nonexistent/scvae/x.key" && !reason.isEmpty
        }
    }
}

/// A folder under the temporary directory, removed when the value goes away.
final class TemporaryFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("scvae-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ text: String, to name: String, mode: Int) throws {
        let file = path + "/" + name
        try text.write(toFile: file, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file)
    }
}
