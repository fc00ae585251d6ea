import ArgumentParser
import ConfigFile
import Foundation
import Kafka
import Postgres

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "The configuration file (--config FILE): check it.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a configuration file and show the arguments it gives each command (secrets masked).",
            discussion: """
                Usage: audit-ingest --config FILE config check [COMMAND...] (or with $\(ConfigFileArguments.environmentVariable)). \
                Every key of every section is checked against the commands' options; ${NAME} is expanded \
                from this environment for the commands shown. Exit status 0 when the file is usable, 64 \
                with the file, section and key named when not.
                """
        )

        @Argument(help: ArgumentHelp("Only this command, e.g. consume or admin serve (default: every command the file sets something for).",
                                     valueName: "command"))
        var command: [String] = []

        func run() throws {
            let environment = ProcessInfo.processInfo.environment
            guard let path = try ConfigFileArguments.file(in: Array(CommandLine.arguments.dropFirst()), environment: environment) else {
                throw ValidationError("no file given: pass --config FILE or set \(ConfigFileArguments.environmentVariable)")
            }
            do {
                try show(path: path, environment: environment)
            } catch let error as ConfigFileError {
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
                throw ExitCode.validationFailure
            }
        }

        private func show(path: String, environment: [String: String]) throws {
            let commands = try CommandSpec.auditIngest()
            let file = try ConfigFile(path: path)
            try file.check(against: commands)
            let (typed, resolved) = ConfigFileArguments.commandPath(in: command, commands: commands)
            guard typed == command.count else { throw ValidationError("no command \(command.joined(separator: " ")) in audit-ingest") }
            let paths = command.isEmpty ? commands.runnablePaths() : [resolved]
            for path in paths where path != ["config", "check"] {
                let settings = try file.arguments(for: path, in: commands, environment: environment)
                guard !settings.isEmpty else { continue }
                print("\(path.joined(separator: " ")): \(settings.flatMap(Self.shown).joined(separator: " "))")
            }
        }

        /// The argument's tokens with secrets masked as everywhere else: passwords in connection
        /// strings, secret librdkafka properties, anything named like a password, secret or token.
        static func shown(_ argument: ConfigArgument) -> [String] {
            let key = argument.option.key
            let masked = ConfigArgument(option: argument.option, values: argument.values.map { value in
                if key.hasSuffix("database-url") { return ConnectionString.mask(value) }
                if key == "kafka-property", let equals = value.firstIndex(of: "="),
                   KafkaConfiguration.isSecret(String(value[..<equals])) {
                    return value[...equals] + "***"
                }
                return ["password", "secret", "token"].contains(where: key.contains) ? "***" : value
            }, flagSpelling: argument.flagSpelling)
            return masked.tokens.map(shellQuoted)
        }

        private static func shellQuoted(_ token: String) -> String {
            let plain = token.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_=.,:/@%+*".contains($0)) }
            return plain && !token.isEmpty ? token : "'\(token.replacingOccurrences(of: "'", with: "'\\''"))'"
        }
    }
}
