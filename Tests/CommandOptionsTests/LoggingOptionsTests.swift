import ArgumentParser
import CommandOptions
import LogOutput
import Logging
import Testing

@Suite struct LoggingOptionsTests {
    static func resolve(_ arguments: [String], _ environment: [String: String] = [:]) throws -> (Logger.Level, LogFormat) {
        let chosen = try LoggingOptions.parse(arguments).resolved(environment: environment)
        return (chosen.level, chosen.format)
    }

    @Test func withNothingGivenItIsInfoAsText() throws {
        #expect(try Self.resolve([]) == (.info, .text))
        #expect(try Self.resolve([], ["SCVAE_LOG_LEVEL": "", "SCVAE_LOG_FORMAT": ""]) == (.info, .text), "empty is unset")
    }

    @Test func theEnvironmentSetsTheDefaults() throws {
        #expect(try Self.resolve([], ["SCVAE_LOG_LEVEL": "debug", "SCVAE_LOG_FORMAT": "json"]) == (.debug, .json))
    }

    @Test func aFlagWinsOverItsVariable() throws {
        let environment = ["SCVAE_LOG_LEVEL": "debug", "SCVAE_LOG_FORMAT": "json"]
        #expect(try Self.resolve(["--log-level", "error", "--log-format", "text"], environment) == (.error, .text))
        // A bad variable does not matter when its flag is given.
        #expect(try Self.resolve(["--log-level", "trace"], ["SCVAE_LOG_LEVEL": "loud"]) == (.trace, .text))
    }

    @Test func everySwiftLogLevelIsAcceptedByName() throws {
        for level in Logger.Level.allCases {
            #expect(try Self.resolve(["--log-level", level.rawValue]).0 == level)
        }
        #expect(LogLevelArgument.allValueStrings == ["trace", "debug", "info", "notice", "warning", "error", "critical"])
    }

    @Test func aBadVariableIsAnErrorNamingItAndTheValues() throws {
        let options = try LoggingOptions.parse([])
        let error = try #require(throws: ValidationError.self) {
            try options.resolved(environment: ["SCVAE_LOG_LEVEL": "loud"])
        }
        #expect(error.message.contains("SCVAE_LOG_LEVEL='loud'") && error.message.contains("--log-level"))
        #expect(error.message.contains("trace, debug, info, notice, warning, error, critical"))
        let format = try #require(throws: ValidationError.self) {
            try options.resolved(environment: ["SCVAE_LOG_FORMAT": "xml"])
        }
        #expect(format.message.contains("SCVAE_LOG_FORMAT='xml'") && format.message.contains("text, json"))
    }

    @Test func aBadFlagIsAnErrorListingTheValues() {
        #expect(throws: (any Error).self) { try LoggingOptions.parse(["--log-level", "loud"]) }
        do {
            _ = try LoggingOptions.parse(["--log-format", "xml"])
        } catch {
            let message = LoggingOptions.message(for: error)
            #expect(message.contains("'text'") && message.contains("'json'"), "\(message)")
        }
    }

    @Test func theHandlersAreAtTheChosenLevel() {
        for format in LogFormat.allCases {
            let handler = LogOutput.makeHandler(label: "x", level: .warning, format: format)
            #expect(handler.logLevel == .warning, "\(format)")
        }
        #expect(LogOutput.makeHandler(label: "x", level: .info, format: .json) is JSONLogHandler)
        #expect(LogOutput.makeHandler(label: "x", level: .info, format: .text) is StreamLogHandler)
    }
}
