import Foundation
import Testing
@testable import Wire

/// `--curve-keys DIR`: the own secret key and the `*.key` files of admitted peers.
@Suite struct CurveKeyFolderTests {
    @Test func admittedKeysAreEveryPublicCertificateButTheOwn() throws {
        let folder = try TemporaryFolder()
        let own = try CurveKeyPair.generate()
        let workers = try (0..<3).map { _ in try CurveKeyPair.generate() }
        try CurveCertificate.write(own, name: "coordinator", to: folder.path)
        for (index, keys) in workers.enumerated() {
            // Only the public half of a worker's certificate is handed to the coordinator.
            try folder.write(CurveCertificate.publicText(keys, name: "w\(index)"), to: "w\(index).key", mode: 0o644)
        }
        try folder.write("not a certificate", to: "README.txt", mode: 0o644)
        let admitted = try AdmittedKeys.load(folder: folder.path, excluding: own.publicKey)
        #expect(admitted.names == Dictionary(uniqueKeysWithValues: workers.enumerated().map { ($1.publicKey, "w\($0)") }))
        #expect(admitted.name(of: own.publicKey) == nil)
        // Without the exclusion the coordinator's own public certificate counts too.
        #expect(try AdmittedKeys.load(folder: folder.path).count == 4)
    }

    @Test func aMalformedPublicCertificateInTheFolderIsAnErrorNamingIt() throws {
        let folder = try TemporaryFolder()
        try CurveCertificate.write(try CurveKeyPair.generate(), name: "good", to: folder.path)
        try folder.write("curve\n    public-key = \"typo\"\n", to: "bad.key", mode: 0o644)
        #expect(throws: CertificateError.invalidKey(path: folder.path + "/bad.key", line: 2, name: "curve/public-key",
                                                    reason: "4 characters, Z85 keys have 40")) {
            try AdmittedKeys.load(folder: folder.path)
        }
    }

    @Test func aFolderWithoutPublicCertificatesAdmitsNobodyAndSaysSo() throws {
        let folder = try TemporaryFolder()
        let own = try CurveKeyPair.generate()
        try CurveCertificate.write(own, name: "coordinator", to: folder.path)
        #expect(throws: CertificateError.noAdmittedKeys(folder: folder.path)) {
            try AdmittedKeys.load(folder: folder.path, excluding: own.publicKey)
        }
        #expect(throws: CertificateError.self) { try AdmittedKeys.load(folder: folder.path + "/missing") }
    }

    @Test func theOwnKeyPairIsTheOnlySecretOrTheNamedOne() throws {
        let folder = try TemporaryFolder()
        #expect(throws: CertificateError.ownKeyNotFound(folder: folder.path, found: [])) {
            try CurveKeyFolder.ownKeyPair(in: folder.path)
        }
        let worker = try CurveKeyPair.generate()
        let coordinator = try CurveKeyPair.generate()
        try CurveCertificate.write(worker, name: "w7", to: folder.path)
        try folder.write(CurveCertificate.publicText(coordinator, name: "coordinator"), to: "coordinator.key", mode: 0o644)
        #expect(try CurveKeyFolder.ownKeyPair(in: folder.path) == worker)
        #expect(try CurveKeyFolder.peerPublicKey(in: folder.path, name: "coordinator") == coordinator.publicKey)

        try CurveCertificate.write(try CurveKeyPair.generate(), name: "w8", to: folder.path)
        #expect(throws: CertificateError.ownKeyNotFound(folder: folder.path, found: ["w7.key_secret", "w8.key_secret"])) {
            try CurveKeyFolder.ownKeyPair(in: folder.path)
        }
        #expect(try CurveKeyFolder.ownKeyPair(in: folder.path, name: "w7") == worker)
    }

    @Test func keysGivenDirectlyMustBeZ85() throws {
        let keys = try CurveKeyPair.generate()
        #expect(try AdmittedKeys([keys.publicKey: "next"]).name(of: keys.publicKey) == "next")
        #expect(throws: CertificateError.self) { try AdmittedKeys(["too short": "next"]) }
    }
}
