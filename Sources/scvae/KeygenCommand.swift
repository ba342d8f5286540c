import ArgumentParser
import CommandOptions
import Wire

/// `scvae keygen`: a CURVE key pair as ZeroMQ certificate files (docs/decisions.md, "Security: CURVE key files and admission").
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair: DIR/NAME.key (public, give it to peers) and DIR/NAME.key_secret (mode 0600).",
        discussion: """
            The files use ZeroMQ's certificate format (as pyzmq's zmq.auth.create_certificates), so keys \
            made by other ZeroMQ tools work too. The coordinator's --curve-keys DIR holds coordinator.key_secret \
            and the NAME.key of every admitted worker; a worker's holds its own NAME.key_secret and coordinator.key.
            """)

    @Option(help: "Folder to write the two files into (created with mode 0700 if missing).")
    var out: String

    @Option(help: "Name of the key pair: the file names, and the name logged when a peer with this key is admitted.")
    var name: String

    @Flag(help: "Replace existing files of the same name.")
    var force = false

    func validate() throws {
        guard CurveKeyPair.isCurveAvailable else { throw ValidationError("This libzmq was built without CURVE support.") }
    }

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        let keys = try CurveKeyPair.generate()
        let files = try CurveCertificate.write(keys, name: name, to: out, overwrite: force)
        print("public key \(keys.publicKey)")
        print("wrote \(files.publicFile)")
        print("wrote \(files.secretFile) (mode 0600)")
    }
}
