import ArgumentParser
import ConfigFile
import Foundation

extension CommandSpec {
    /// Every command of audit-ingest with its options, as swift-argument-parser describes them
    /// (the JSON of `--experimental-dump-help`), so the configuration file knows each option
    /// without a second list of them.
    static func auditIngest() throws -> CommandSpec {
        let tool = try JSONDecoder().decode(DumpedTool.self, from: Data(AuditIngest._dumpHelp().utf8))
        return CommandSpec(tool.command)
    }

    private init(_ command: DumpedCommand) {
        let flags = Set((command.arguments ?? []).filter { $0.kind == "flag" }.compactMap(\.key))
        let options: [OptionSpec] = (command.arguments ?? []).compactMap { argument in
            guard let key = argument.key, let spelling = argument.spelling, key != "help" else { return nil }
            switch argument.kind {
            case "option":
                return OptionSpec(key: key, spelling: spelling, kind: argument.isRepeating ? .repeating : .single)
            case "flag":
                // `--progress` and `--no-progress` are one setting: `progress = true|false`.
                if key.hasPrefix("no-"), flags.contains(String(key.dropFirst(3))) { return nil }
                return OptionSpec(key: key, spelling: spelling, kind: .flag(inverse: flags.contains("no-\(key)") ? "--no-\(key)" : nil))
            default:
                return nil  // positional arguments (backfill's FILE) are given on the command line only
            }
        }
        self.init(name: command.commandName, aliases: command.aliases ?? [], options: options,
                  subcommands: (command.subcommands ?? []).filter { $0.commandName != "help" }.map(CommandSpec.init),
                  defaultSubcommand: command.defaultSubcommand)
    }
}

/// The part of swift-argument-parser's tool description (ToolInfoV0) the configuration file needs.
private struct DumpedTool: Decodable {
    let command: DumpedCommand
}

private struct DumpedCommand: Decodable {
    let commandName: String
    let aliases: [String]?
    let defaultSubcommand: String?
    let subcommands: [DumpedCommand]?
    let arguments: [DumpedArgument]?
}

private struct DumpedArgument: Decodable {
    struct Name: Decodable {
        let kind: String
        let name: String
    }

    /// positional, option or flag.
    let kind: String
    let isRepeating: Bool
    let names: [Name]?

    /// The long name, else the short one (`X` for `-X`).
    var key: String? {
        (names?.first { $0.kind == "long" } ?? names?.first)?.name
    }

    var spelling: String? {
        guard let name = names?.first(where: { $0.kind == "long" }) ?? names?.first else { return nil }
        return name.kind == "long" ? "--\(name.name)" : "-\(name.name)"
    }
}
