/// A command of the command line as a configuration file sees it: the options a section may set
/// and the subcommands whose sections it may hold. Built from the argument parser's own
/// description of the commands, so no option is listed twice.
public struct CommandSpec: Sendable {
    /// The name typed on the command line (`consume`, `serve`).
    public var name: String
    public var aliases: [String]
    /// In the order the command declares them; settings are passed in this order.
    public var options: [OptionSpec]
    public var subcommands: [CommandSpec]
    /// The subcommand run when none is named (`migrate` runs `migrate apply`).
    public var defaultSubcommand: String?

    public init(name: String, aliases: [String] = [], options: [OptionSpec], subcommands: [CommandSpec],
                defaultSubcommand: String? = nil) {
        self.name = name
        self.aliases = aliases
        self.options = options
        self.subcommands = subcommands
        self.defaultSubcommand = defaultSubcommand
    }

    public func option(_ key: String) -> OptionSpec? {
        options.first { $0.key == key }
    }

    public func subcommand(_ name: String) -> CommandSpec? {
        subcommands.first { $0.name == name || $0.aliases.contains(name) }
    }

    /// This command's options and those of every command below it, by key: what a section of
    /// this command may set (a key is taken by each command that has it).
    func optionsBelow() -> [String: [OptionSpec]] {
        var all: [String: [OptionSpec]] = [:]
        for option in options { all[option.key, default: []].append(option) }
        for subcommand in subcommands {
            all.merge(subcommand.optionsBelow()) { $0 + $1 }
        }
        return all
    }

    /// The commands reached from here by following `path`, this one first; nil when a name in
    /// `path` is no subcommand.
    public func commands(along path: [String]) -> [CommandSpec]? {
        var chain = [self]
        for name in path {
            guard let next = chain.last!.subcommand(name) else { return nil }
            chain.append(next)
        }
        return chain
    }

    /// The paths of every command below this one that has no subcommands (the ones that run).
    public func runnablePaths(prefix: [String] = []) -> [[String]] {
        let own = subcommands.isEmpty ? [prefix] : []
        return own + subcommands.flatMap { $0.runnablePaths(prefix: prefix + [$0.name]) }
    }
}

/// An option or flag of a command, named in a configuration file by its long name without dashes.
public struct OptionSpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Takes one value; given again, the last value wins.
        case single
        /// May be given many times (`-X key=value`); each value adds.
        case repeating
        /// A flag: `true` gives it; `false` gives `inverse` (`--no-progress`) when there is one.
        case flag(inverse: String?)
    }

    /// `batch-size` for `--batch-size`; the letter for an option with only a short name.
    public var key: String
    /// What is typed: `--batch-size`, `-X`.
    public var spelling: String
    public var kind: Kind

    public init(key: String, spelling: String, kind: Kind) {
        self.key = key
        self.spelling = spelling
        self.kind = kind
    }
}
