/// One option the file sets for the command being run, as the command line receives it.
public struct ConfigArgument: Sendable, Equatable {
    public let option: OptionSpec
    /// The expanded values: one for a single option, one per occurrence for a repeating one,
    /// none for a flag.
    public let values: [String]
    /// For a flag, the spelling to give (`--json`, `--no-progress`).
    public let flagSpelling: String?

    public init(option: OptionSpec, values: [String], flagSpelling: String?) {
        self.option = option
        self.values = values
        self.flagSpelling = flagSpelling
    }

    /// `--batch-size=5000` (joined, so a value starting with `-` stays a value), `-X a=b`, `--no-progress`.
    public var tokens: [String] {
        if let flagSpelling { return [flagSpelling] }
        // An empty value stays a separate argument: the parser reads `--name=` as a missing value.
        return values.flatMap { option.spelling.hasPrefix("--") && !$0.isEmpty ? ["\(option.spelling)=\($0)"] : [option.spelling, $0] }
    }
}

extension ConfigFile {
    /// Checks the whole file against the commands before anything runs: each key must be an option
    /// of its section's command or of a command below it, each table a subcommand, each value of a
    /// type such an option takes. `${NAME}` is not expanded here (see `arguments(for:in:environment:)`).
    /// Throws `ConfigFileError` (`.unknownKey`, `.unknownSection`, `.wrongType`).
    public func check(against commands: CommandSpec) throws {
        try check(root, command: commands)
    }

    /// The options the file sets for the command at `path` (`["migrate", "apply"]`, default
    /// subcommands included), in the command's order. Top-level settings first, each section
    /// along the path replacing what the one above it set. Throws `ConfigFileError`
    /// (`.unsetVariable`, `.badInterpolation`, `.wrongType`).
    public func arguments(for path: [String], in commands: CommandSpec, environment: [String: String]) throws -> [ConfigArgument] {
        guard let command = commands.commands(along: path)?.last else { return [] }
        var sections = [root]
        for name in path {
            guard let next = sections.last!.section(name) else { break }
            sections.append(next)
        }
        var chosen: [String: (value: Setting, section: Section)] = [:]
        for section in sections {
            for (key, value) in section.settings where command.option(key) != nil {
                chosen[key] = (value, section)
            }
        }
        let interpolation = EnvironmentInterpolation(environment: environment)
        return try command.options.compactMap { option in
            guard let (value, section) = chosen[option.key] else { return nil }
            return try argument(option, value, section: section, interpolation: interpolation)
        }
    }

    private func check(_ section: Section, command: CommandSpec) throws {
        let options = command.optionsBelow()
        let scope = section.path.isEmpty ? "any command"
            : section.path.joined(separator: " ") + (command.subcommands.isEmpty ? "" : " or its subcommands")
        for (key, value) in section.settings {
            guard let candidates = options[key] else {
                let hint = closest(to: key, among: options.keys).map { "; did you mean \($0)?" } ?? ""
                throw ConfigFileError(.unknownKey, file: path, section: section.title, key: key,
                                      "unknown key: no option of \(scope) is called --\(key)\(hint)")
            }
            if !candidates.contains(where: { Self.mismatch(value, $0) == nil }), let wrong = Self.mismatch(value, candidates[0]) {
                throw ConfigFileError(.wrongType, file: path, section: section.title, key: key, wrong)
            }
        }
        for (name, inner) in section.sections {
            if let subcommand = command.subcommand(name) {
                try check(inner, command: subcommand)
            } else if options[name] != nil {
                throw ConfigFileError(.wrongType, file: path, section: section.title, key: name,
                                      "expected a value, found a table")
            } else {
                let hint = closest(to: name, among: command.subcommands.map(\.name)).map { "; did you mean [\((section.path + [$0]).joined(separator: "."))]?" } ?? ""
                throw ConfigFileError(.unknownSection, file: path, section: inner.title, key: nil,
                                      "unknown section: \(name) is no subcommand of \(section.path.isEmpty ? "audit-ingest" : section.path.joined(separator: " "))\(hint)")
            }
        }
    }

    private func argument(_ option: OptionSpec, _ value: Setting, section: Section,
                          interpolation: EnvironmentInterpolation) throws -> ConfigArgument? {
        if let wrong = Self.mismatch(value, option) {
            throw ConfigFileError(.wrongType, file: path, section: section.title, key: option.key, wrong)
        }
        if case .flag(let inverse) = option.kind, case .bool(let given) = value {
            guard let spelling = given ? option.spelling : inverse else { return nil }
            return ConfigArgument(option: option, values: [], flagSpelling: spelling)
        }
        let scalars: [Setting] = if case .list(let elements) = value { elements } else { [value] }
        let values = try scalars.map { scalar throws in
            do throws(EnvironmentInterpolation.Failure) {
                return try Self.text(of: scalar, interpolation: interpolation)
            } catch {
                switch error {
                case .unset(let name):
                    throw ConfigFileError(.unsetVariable, file: path, section: section.title, key: option.key,
                                          "environment variable \(name) is not set (a default: ${\(name):-value})")
                case .malformed(let problem):
                    throw ConfigFileError(.badInterpolation, file: path, section: section.title, key: option.key, problem)
                }
            }
        }
        return ConfigArgument(option: option, values: values, flagSpelling: nil)
    }

    private static func text(of scalar: Setting, interpolation: EnvironmentInterpolation) throws(EnvironmentInterpolation.Failure) -> String {
        switch scalar {
        case .text(let text): try interpolation.expand(text)
        case .number(let number): number
        case .bool(let bool): String(bool)
        case .list, .unsupported: ""  // excluded by mismatch(_:_:)
        }
    }

    /// Why `value` cannot set `option`, or nil when it can.
    private static func mismatch(_ value: Setting, _ option: OptionSpec) -> String? {
        switch (option.kind, value) {
        case (_, .unsupported), (.flag, .text), (.flag, .number), (.flag, .list), (.single, .list):
            let expected = switch option.kind {
            case .flag: "true or false (\(option.spelling) is a flag)"
            case .single: "a single value (string, number or true/false)"
            case .repeating: "a value or an array of values"
            }
            return "expected \(expected), found \(value.kind)"
        default:
            return nil
        }
    }
}
