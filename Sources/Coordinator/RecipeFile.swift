import Foundation
import Wire
import Yams

/// `scvae-coordinator --recipe FILE`: the training options of a run in one YAML (or JSON) file,
/// the way configuration files hold an experiment (docs/launching.md, "Recipe files").
///
/// A recipe is a mapping from option names, spelled as on the command line without the dashes
/// (`global-batch: 64`), to values. It is read before the command line is parsed and turned into
/// the arguments it stands for, placed in front of the command line's own; where an option is
/// given twice the later one counts, so the command line overrides the file. Only the options
/// that decide the trained model are recipe keys (data, model, loss, optimisation, schedule,
/// validation, checkpoints); how and where the run is deployed (workers, addresses, keys, logs)
/// stays on the command line and in the environment.
public enum RecipeFile {
    /// A recipe key: an option of `scvae-coordinator`.
    public struct Key: Sendable, Equatable {
        /// The option's long name without dashes, e.g. `global-batch`.
        public var name: String
        /// A flag takes true or false (written `--name` or `--no-name`); other options a value.
        public var isFlag: Bool

        init(_ name: String, flag: Bool = false) {
            self.name = name
            isFlag = flag
        }
    }

    /// Every key a recipe may hold, in the order `render` writes them.
    public static let keys: [Key] = [
        Key("data"), Key("config"), Key("beta"), Key("latent-weight"),
        Key("global-batch"), Key("micro-batch"), Key("steps"), Key("epochs"), Key("shard-window"),
        Key("lr"), Key("optimizer"), Key("warmup"), Key("schedule"), Key("seed"),
        Key("exact-reduction", flag: true), Key("checksum-every"), Key("bucket-mib"),
        Key("checkpoint-every"), Key("keep"),
        Key("val-data"), Key("val-every"), Key("val-images"), Key("grid-images"), Key("best-metric"),
    ]

    /// Options that say how long to train: given on the command line, any of them replaces all
    /// of them from the file (`--steps` on the command line overrides a recipe's `epochs`).
    static let lengthKeys: Set<String> = ["steps", "epochs"]

    /// Why a recipe file cannot be used; every case names the file.
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case malformed(path: String, reason: String)
        case notAMapping(path: String)
        case unknownKey(path: String, key: String)
        case notAValue(path: String, key: String)
        case notABoolean(path: String, key: String, value: String)

        public var description: String {
            switch self {
            case let .unreadable(path, reason):
                return "--recipe \(path): cannot be read: \(reason)"
            case let .malformed(path, reason):
                return "--recipe \(path): not valid YAML or JSON: \(reason)"
            case let .notAMapping(path):
                return "--recipe \(path): expected a mapping of option names to values, e.g. 'global-batch: 64'"
            case let .unknownKey(path, key):
                let known = RecipeFile.keys.map(\.name).joined(separator: ", ")
                return "--recipe \(path): unknown key '\(key)'. A recipe holds the training options \(known); how the run is deployed (workers, --listen, keys, logs) stays on the command line"
            case let .notAValue(path, key):
                return "--recipe \(path): '\(key)' must be a single value, not a list or a mapping"
            case let .notABoolean(path, key, value):
                return "--recipe \(path): '\(key)' is a flag and takes true or false, not '\(value)'"
            }
        }
    }

    /// The command-line arguments the recipe `text` stands for (`--name=value`, `--flag`,
    /// `--no-flag`), in the file's order; keys with a null value are left out (their default
    /// holds). `path` names the file in problems.
    public static func arguments(yaml text: String, path: String) throws(Problem) -> [String] {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch { throw .malformed(path: path, reason: "\(error)") }
        guard let root else { return [] }  // an empty file: nothing set
        guard let mapping = root.mapping else { throw .notAMapping(path: path) }
        var arguments: [String] = []
        for (keyNode, value) in mapping {
            guard let name = keyNode.string else { throw .notAMapping(path: path) }
            guard let key = keys.first(where: { $0.name == name }) else { throw .unknownKey(path: path, key: name) }
            guard let scalar = value.scalar else { throw .notAValue(path: path, key: name) }
            if value.null != nil && scalar.style == .plain { continue }
            if key.isFlag {
                guard let on = value.bool else { throw .notABoolean(path: path, key: name, value: scalar.string) }
                arguments.append(on ? "--\(name)" : "--no-\(name)")
            } else {
                arguments.append("--\(name)=\(scalar.string)")
            }
        }
        return arguments
    }

    /// `commandLine` (the arguments after the program's name) with the arguments of the recipe
    /// it names (`--recipe FILE` or `--recipe=FILE`; the last one counts) in front, so that the
    /// command line's own options override the file's. Unchanged without `--recipe`. `read` returns
    /// a file's text.
    public static func expand(_ commandLine: [String], read: (String) throws -> String) throws(Problem) -> [String] {
        guard let path = recipePath(in: commandLine) else { return commandLine }
        let text: String
        do { text = try read(path) } catch { throw .unreadable(path: path, reason: "\(error)") }
        var fromFile = try arguments(yaml: text, path: path)
        let given = Set(commandLine.prefix { $0 != "--" }.compactMap(optionName))
        if !given.isDisjoint(with: lengthKeys) {
            fromFile.removeAll { optionName($0).map(lengthKeys.contains) ?? false }
        }
        return fromFile + commandLine
    }

    /// Reads a file as UTF-8 text (`expand`'s reader); the error says why in a few words.
    public static func readFile(_ path: String) throws -> String {
        struct Unreadable: Error, CustomStringConvertible { var description: String }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw Unreadable(description: "no such file") }
        guard !isFolder.boolValue else { throw Unreadable(description: "it is a folder") }
        guard let bytes = FileManager.default.contents(atPath: path) else { throw Unreadable(description: "permission denied") }
        guard let text = String(bytes: bytes, encoding: .utf8) else { throw Unreadable(description: "not UTF-8 text") }
        return text
    }

    /// The value of the last `--recipe` in `commandLine`, before any `--`.
    static func recipePath(in commandLine: [String]) -> String? {
        var path: String?
        var index = 0
        while index < commandLine.count, commandLine[index] != "--" {
            let argument = commandLine[index]
            if argument == "--recipe", index + 1 < commandLine.count {
                path = commandLine[index + 1]
                index += 1
            } else if argument.hasPrefix("--recipe=") {
                path = String(argument.dropFirst("--recipe=".count))
            }
            index += 1
        }
        return path
    }

    /// The long name an argument gives (`--steps=3` and `--steps` give `steps`), or nil.
    private static func optionName(_ argument: String) -> String? {
        guard argument.hasPrefix("--"), argument.count > 2 else { return nil }
        return String(argument.dropFirst(2).prefix { $0 != "=" })
    }

    /// `DIR/recipe.yaml`, written when a run starts.
    public static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("recipe.yaml")
    }

    /// The run's recipe with every key resolved (defaults included), as YAML that `--recipe`
    /// reads back to the same settings. A relative data path is made absolute against
    /// `currentDirectory`.
    public static func render(_ settings: CoordinatorSettings, currentDirectory: String) -> String {
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : (currentDirectory as NSString).appendingPathComponent(path)
        }
        var lines = [
            "# The training recipe of this run, every option resolved (defaults included).",
            "# Train the same model again: scvae-coordinator --recipe recipe.yaml --checkpoint-dir NEW_DIR",
        ]
        func add(_ key: String, _ value: String?) {
            precondition(keys.contains { $0.name == key }, "recipe key \(key) is not in RecipeFile.keys")
            if let value { lines.append("\(key): \(value)") }
        }
        if let data = settings.dataPath { add("data", quoted(absolute(data))) } else { lines.append("# data: the built-in sample data") }
        add("config", settings.config)
        add("beta", number(settings.beta))
        add("latent-weight", latentWeight(settings.latentWeight))
        add("global-batch", "\(settings.globalBatch)")
        add("micro-batch", "\(settings.microBatch)")
        add("steps", settings.steps.map { "\($0)" })
        add("epochs", settings.epochs.map { "\($0)" })
        add("shard-window", "\(settings.shardWindow)")
        add("lr", number(settings.learningRate))
        add("optimizer", settings.optimizer)
        add("warmup", "\(settings.warmupSteps)")
        add("schedule", settings.schedule)
        add("seed", "\(settings.seed)")
        add("exact-reduction", settings.exactReduction ? "true" : "false")
        add("checksum-every", "\(settings.checksumEvery)")
        add("bucket-mib", "\(settings.bucketMiB)")
        add("checkpoint-every", "\(settings.checkpointEvery)")
        add("keep", "\(settings.keep)")
        add("val-data", settings.validationDataPath.map { quoted(absolute($0)) })
        add("val-every", settings.validationEvery.map { "\($0)" })
        add("val-images", settings.validationImages.map { "\($0)" })
        add("grid-images", "\(settings.gridImages)")
        add("best-metric", settings.bestMetric.rawValue)
        return lines.joined(separator: "\n") + "\n"
    }

    /// A number as YAML reads it as a float: `4e-05` is written `4.0e-05`.
    static func number(_ value: Double) -> String {
        let text = "\(value)"
        guard let exponent = text.firstIndex(where: { $0 == "e" || $0 == "E" }), !text[..<exponent].contains(".") else { return text }
        return text[..<exponent] + ".0" + text[exponent...]
    }

    private static func latentWeight(_ weight: LatentWeight) -> String {
        switch weight {
        case .auto: "auto"
        case let .value(value): number(value)
        }
    }

    /// A string as a double-quoted YAML scalar (JSON's escapes are YAML's).
    private static func quoted(_ text: String) -> String {
        let encoded = try? JSONEncoder().encode(text)
        return encoded.flatMap { String(data: $0, encoding: .utf8) }?.replacingOccurrences(of: "\\/", with: "/") ?? "\"\(text)\""
    }
}
