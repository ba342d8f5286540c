import Foundation
import Testing

/// The Slurm and Kubernetes manifests against the executables' real options and the Kubernetes
/// API schema (`cluster/check_manifests.py`), the Containerfile against scripts/setup.sh and the
/// libraries the executables load (`cluster/check_containerfile.py`), and both checkers against
/// broken files.
@Suite(.serialized) struct ClusterManifestTests {
    /// Options the manifests may use before the executables have them (none: every option
    /// the manifests use exists).
    static let flagsBeingAdded: [String] = []

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The folder of the built executables: the test binary's own folder (`.build/<triple>/<config>`).
    static let binaryFolder: String? = {
        let candidates = [Bundle.main.executablePath, CommandLine.arguments.first, Bundle.main.bundlePath]
            .compactMap { $0 }
            .map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().deletingLastPathComponent().path }
        return candidates.first { folder in
            ["scvae-coordinator", "scvae-worker"].allSatisfy { FileManager.default.isExecutableFile(atPath: folder + "/" + $0) }
        }
    }()

    /// The python3 of the virtual environment scripts/setup.sh makes (PyYAML and
    /// kubernetes-validate), else the one on the PATH.
    static let python: String = {
        let tools = packageRoot + "/.build/python-tools/bin/python3"
        return FileManager.default.isExecutableFile(atPath: tools) ? tools : "python3"
    }()

    static let canCheck: Bool = {
        guard binaryFolder != nil, let result = try? run([python, "-c", "import yaml"]) else { return false }
        return result.status == 0
    }()

    /// kubernetes-validate is there (scripts/setup.sh installs it): the schema check is then required.
    static let canCheckSchema: Bool = canCheck && (try? run([python, "-c", "import kubernetes_validate"]))?.status == 0

    @Test(.enabled(if: canCheck, "needs python3 with PyYAML and the built scvae-coordinator and scvae-worker"))
    func manifestsUseRealOptionsPortsAndSelectors() throws {
        let result = try Self.check(cluster: Self.packageRoot + "/cluster")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("0 problem(s)"), "\(result.output)")
        #expect(result.output.contains("scvae-coordinator options used: "), "\(result.output)")
        if Self.canCheckSchema {
            #expect(result.output.contains("schema: 5 object(s) checked against Kubernetes 1.33"), "\(result.output)")
        }
    }

    /// Jobs that take their settings from the environment, with the settings wrong, and objects
    /// the Kubernetes API would refuse: a misspelled field, a value of the wrong type.
    @Test(.enabled(if: canCheckSchema, "needs python3 with PyYAML and kubernetes-validate (scripts/setup.sh) and the built executables"))
    func brokenJobsAndSchemaErrorsAreReported() throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.path + "/k8s", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder.path + "/slurm", withIntermediateDirectories: true)
        try folder.write(Self.brokenJobs, to: "k8s/jobs.yaml", mode: 0o644)
        try folder.write(Self.brokenSbatch, to: "slurm/train.sbatch", mode: 0o644)
        let result = try Self.check(cluster: folder.path)
        #expect(result.status == 1, "\(result.output)")
        let file = "\(folder.path)/k8s/jobs.yaml"
        for expected in ["\(file): Job scvae-worker is not a valid Kubernetes 1.33 object: spec: Additional properties are not allowed ('completionMod' was unexpected)",
                         "\(file): Job scvae-coordinator is not a valid Kubernetes 1.33 object: spec.backoffLimit: 'six' is not of type 'integer'",
                         "--listen port 6000 is not among its containerPorts [5555]",
                         "livenessProbe checks port 5556, not the --listen port 5555",
                         "startupProbe looks for port(s) [5554] in /proc/net/tcp, not the --listen port 5555 (:15B3)",
                         "--coordinator port 7000 is not a port of Service scvae-coordinator",
                         "--workers 4, but the Job in \(file) has 3 completions"] {
            #expect(result.output.contains(expected), "missing \"\(expected)\" in:\n\(result.output)")
        }
        #expect(!result.output.contains("has 4 parallelism"), "\(result.output)")
    }

    @Test func theContainerfileMatchesSetupAndTheLibrariesTheExecutablesLoad() throws {
        var arguments = [Self.python, Self.packageRoot + "/cluster/check_containerfile.py"]
        if let folder = Self.binaryFolder { arguments += ["--bin", folder] }
        let result = try Self.run(arguments)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("0 problem(s)"), "\(result.output)")
    }

    @Test func aContainerfileThatDriftsFromSetupIsReported() throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.path + "/scripts", withIntermediateDirectories: true)
        let setup = try String(contentsOfFile: Self.packageRoot + "/scripts/setup.sh", encoding: .utf8)
        let containerfile = try String(contentsOfFile: Self.packageRoot + "/Containerfile", encoding: .utf8)
        try folder.write(setup.replacingOccurrences(of: "libpng-dev)", with: "libpng-dev libcurl4-openssl-dev)"),
                         to: "scripts/setup.sh", mode: 0o644)
        try folder.write(containerfile.replacingOccurrences(of: " libpng16-16", with: " curl")
                            .replacingOccurrences(of: "bash scripts/setup.sh", with: "swift build -c release")
                            .replacingOccurrences(of: "USER 1000:1000", with: "USER root")
                            .replacingOccurrences(of: "debian:bookworm-slim", with: "debian:trixie-slim"),
                         to: "Containerfile", mode: 0o644)
        let result = try Self.run([Self.python, Self.packageRoot + "/cluster/check_containerfile.py", "--root", folder.path])
        #expect(result.status == 1, "\(result.output)")
        for expected in ["the builder stage builder does not run scripts/setup.sh",
                         "are not of the same Debian release",
                         "scripts/setup.sh installs libcurl4-openssl-dev, which has no runtime package",
                         "the runtime stage does not install libpng16-16",
                         "the runtime stage installs curl, the runtime package of nothing",
                         "the runtime stage does not end with a non-root USER"] {
            #expect(result.output.contains(expected), "missing \"\(expected)\" in:\n\(result.output)")
        }
    }

    @Test(.enabled(if: canCheck, "needs python3 with PyYAML and the built scvae-coordinator and scvae-worker"))
    func brokenManifestsAreReported() throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.path + "/k8s", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder.path + "/slurm", withIntermediateDirectories: true)
        try folder.write(Self.brokenKubernetes, to: "k8s/broken.yaml", mode: 0o644)
        try folder.write(Self.brokenSbatch, to: "slurm/train.sbatch", mode: 0o644)
        let result = try Self.check(cluster: folder.path)
        #expect(result.status == 1, "\(result.output)")
        for expected in ["--listen port 6000 is not among its containerPorts [5555]",
                         "scvae-worker has no option --no-such-flag",
                         "Service scvae-coordinator selects {'app': 'elsewhere'}, which no pod template carries",
                         "--coordinator port 7000 is not a port of Service scvae-coordinator",
                         "worker_flags: scvae-worker has no option --made-up",
                         "line running scvae-coordinator: scvae-coordinator has no option --bogus",
                         "--workers 2, but the StatefulSet in \(folder.path)/k8s/broken.yaml has 3 replicas"] {
            #expect(result.output.contains(expected), "missing \"\(expected)\" in:\n\(result.output)")
        }
    }

    static let brokenKubernetes = """
        apiVersion: v1
        kind: Service
        metadata: { name: scvae-coordinator }
        spec:
          selector: { app: elsewhere }
          ports: [{ port: 5555, targetPort: 5555 }]
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: { name: coordinator }
        spec:
          template:
            metadata: { labels: { app: coordinator } }
            spec:
              containers:
                - name: coordinator
                  command: [scvae-coordinator]
                  args: [--listen=tcp://0.0.0.0:6000, --workers, "2"]
                  ports: [{ containerPort: 5555 }]
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: { name: worker }
        spec:
          replicas: 3
          template:
            metadata: { labels: { app: worker } }
            spec:
              containers:
                - name: worker
                  command: [/usr/local/bin/scvae-worker, --no-such-flag, --coordinator=tcp://scvae-coordinator:7000]

        """

    static let brokenJobs = """
        apiVersion: v1
        kind: Service
        metadata: { name: scvae-coordinator }
        spec:
          clusterIP: None
          selector: { app: coordinator }
          ports: [{ name: control, port: 5555, targetPort: control }]
        ---
        apiVersion: batch/v1
        kind: Job
        metadata: { name: scvae-coordinator }
        spec:
          backoffLimit: six
          template:
            metadata: { labels: { app: coordinator } }
            spec:
              restartPolicy: OnFailure
              containers:
                - name: coordinator
                  image: scvae:latest
                  command: [scvae-coordinator]
                  env:
                    - { name: WORLD_SIZE, value: "4" }
                    - { name: MASTER_PORT, value: "5555" }
                  ports: [{ name: control, containerPort: 5555 }]
                  startupProbe: { exec: { command: [grep, -qsE, ":15B2 [0-9A-F]+:0000 0A ", /proc/net/tcp] } }
                  livenessProbe: { tcpSocket: { port: 5556 } }
                - name: second
                  image: scvae:latest
                  command: [scvae-coordinator, --listen=tcp://0.0.0.0:6000]
                  env: [{ name: WORLD_SIZE, value: "4" }]
                  ports: [{ containerPort: 5555 }]
        ---
        apiVersion: batch/v1
        kind: Job
        metadata: { name: scvae-worker }
        spec:
          completionMod: Indexed
          completions: 3
          parallelism: 4
          template:
            metadata: { labels: { app: worker } }
            spec:
              restartPolicy: OnFailure
              containers:
                - name: worker
                  image: scvae:latest
                  command: [scvae-worker]
                  env: [{ name: SCVAE_COORDINATOR, value: "tcp://scvae-coordinator:7000" }]

        """

    static let brokenSbatch = """
        #!/bin/bash
        worker_flags=(
          --threads 1
          --made-up "$X"
        )
        "$bin/scvae-coordinator" --workers 2 \\
            --bogus 1 &
        srun bash -c 'exec "$B/scvae-worker" "$@"' task "${worker_flags[@]}"

        """

    struct Outcome {
        var status: Int32
        var output: String
    }

    static func check(cluster: String) throws -> Outcome {
        try run([python, packageRoot + "/cluster/check_manifests.py", "--bin", binaryFolder ?? "",
                 "--cluster", cluster, "--allow-missing=" + flagsBeingAdded.joined(separator: ",")]
                + (canCheckSchema ? ["--require-schema"] : []))
    }

    /// Runs a command with its output captured in a file, ended if it takes more than a minute
    /// (a pipe could fill up or never close; a file cannot block the command).
    static func run(_ arguments: [String]) throws -> Outcome {
        let folder = try TemporaryFolder()
        let outputPath = folder.path + "/output"
        guard FileManager.default.createFile(atPath: outputPath, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date(timeIntervalSinceNow: 60)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try output.close()
        return Outcome(status: process.terminationStatus,
                       output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }
}
