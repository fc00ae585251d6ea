import ArgumentParser
import ConfigFile

/// `--config FILE` (or $AUDIT_INGEST_CONFIG), applied before the argument parser sees the command
/// line: the file's settings for the command being run become arguments placed before the
/// command line's own. So a flag given on the command line replaces the file's value (the last
/// value of an option wins), and a repeatable option (-X, --admin-allowed-host) gets the file's
/// values and then the command line's.
enum ConfigFileArguments {
    static let environmentVariable = "AUDIT_INGEST_CONFIG"

    /// `arguments` (without the program name) with the file's settings inserted after the
    /// subcommand names; unchanged when no file is given. The whole file is checked first.
    /// Throws `ConfigFileError`, or `ValidationError` for `--config` without a file.
    static func expand(_ arguments: [String], environment: [String: String]) throws -> [String] {
        var arguments = arguments
        let given = try removeConfigOption(from: &arguments)
        guard let path = given ?? fromEnvironment(environment) else { return arguments }
        let commands = try CommandSpec.auditIngest()
        let file = try ConfigFile(path: path)
        try file.check(against: commands)
        let (typed, resolved) = commandPath(in: arguments, commands: commands)
        let settings = try file.arguments(for: resolved, in: commands, environment: environment).flatMap(\.tokens)
        return Array(arguments[..<typed]) + settings + arguments[typed...]
    }

    /// The file `expand` uses for this command line (`config check` reads it again itself).
    static func file(in arguments: [String], environment: [String: String]) throws -> String? {
        var arguments = arguments
        return try removeConfigOption(from: &arguments) ?? fromEnvironment(environment)
    }

    private static func fromEnvironment(_ environment: [String: String]) -> String? {
        environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Removes every `--config FILE` and `--config=FILE` before a `--`; returns the last FILE.
    private static func removeConfigOption(from arguments: inout [String]) throws -> String? {
        var path: String?
        var index = 0
        while index < arguments.count, arguments[index] != "--" {
            if arguments[index] == "--config" {
                guard index + 1 < arguments.count else { throw ValidationError("--config needs a FILE") }
                path = arguments[index + 1]
                arguments.removeSubrange(index...(index + 1))
            } else if arguments[index].hasPrefix("--config=") {
                path = String(arguments[index].dropFirst("--config=".count))
                arguments.remove(at: index)
            } else {
                index += 1
            }
        }
        return path
    }

    /// How many leading arguments name subcommands (`admin serve`: 2), and the path of the
    /// command that runs, default subcommands followed (`migrate`: migrate apply).
    static func commandPath(in arguments: [String], commands: CommandSpec) -> (typed: Int, path: [String]) {
        var command = commands
        var path: [String] = []
        while path.count < arguments.count, let next = command.subcommand(arguments[path.count]) {
            path.append(next.name)
            command = next
        }
        let typed = path.count
        while let name = command.defaultSubcommand, let next = command.subcommand(name) {
            path.append(next.name)
            command = next
        }
        return (typed, path)
    }
}
