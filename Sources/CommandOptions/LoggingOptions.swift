import ArgumentParser
import Foundation
import LogOutput
import Logging

/// `--log-level` and `--log-format`, with `SCVAE_LOG_LEVEL` and `SCVAE_LOG_FORMAT` as defaults
/// (a flag wins over its variable). Every executable calls `bootstrap()` first thing in `run()`.
public struct LoggingOptions: ParsableArguments {
    public static let levelVariable = "SCVAE_LOG_LEVEL"
    public static let formatVariable = "SCVAE_LOG_FORMAT"

    @Option(name: .customLong("log-level"), help: "Lowest level logged (default: $SCVAE_LOG_LEVEL, else info).")
    public var level: LogLevelArgument?

    @Option(name: .customLong("log-format"), help: "text: one readable line per record; json: one JSON object per line (time, level, label, message, metadata, source). Default: $SCVAE_LOG_FORMAT, else text.")
    public var format: LogFormat?

    public init() {}

    public func validate() throws {
        _ = try resolved(environment: ProcessInfo.processInfo.environment)
    }

    /// The level and format this process logs with: each flag, else its variable, else info and text.
    public func resolved(environment: [String: String]) throws -> (level: Logger.Level, format: LogFormat) {
        let level = try Self.choice(level, option: "--log-level", variable: Self.levelVariable, environment: environment)
        let format = try Self.choice(format, option: "--log-format", variable: Self.formatVariable, environment: environment)
        return (level?.level ?? .info, format ?? .text)
    }

    /// Sets the process's log handler (once; see `LogOutput.bootstrap`).
    public func bootstrap() {
        // validate() has already refused a bad variable, so this cannot fall back in practice.
        let chosen = (try? resolved(environment: ProcessInfo.processInfo.environment)) ?? (.info, .text)
        LogOutput.bootstrap(level: chosen.level, format: chosen.format)
    }

    /// The flag when given, else the environment variable's value (empty counts as unset).
    static func choice<Value: ExpressibleByArgument>(_ flag: Value?, option: String, variable: String,
                                                     environment: [String: String]) throws -> Value? {
        if let flag { return flag }
        guard let text = environment[variable], !text.isEmpty else { return nil }
        guard let value = Value(argument: text) else {
            throw ValidationError("\(variable)='\(text)' is not a value of \(option): set it to one of \(Value.allValueStrings.joined(separator: ", ")), or unset it.")
        }
        return value
    }
}

/// A swift-log level as a command-line value; the list is swift-log's own (`Logger.Level.allCases`).
public struct LogLevelArgument: ExpressibleByArgument, CaseIterable, Equatable, Sendable {
    public var level: Logger.Level

    public init(_ level: Logger.Level) { self.level = level }

    public init?(argument: String) {
        guard let level = Logger.Level(rawValue: argument) else { return nil }
        self.level = level
    }

    public static var allCases: [LogLevelArgument] { Logger.Level.allCases.map(LogLevelArgument.init) }
    public static var allValueStrings: [String] { Logger.Level.allCases.map(\.rawValue) }
    public static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
    public var defaultValueDescription: String { level.rawValue }
}

extension LogFormat: ExpressibleByArgument {}
