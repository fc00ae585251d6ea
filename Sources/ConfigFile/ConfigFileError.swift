/// A configuration file that cannot be used, found before anything runs. The message names the
/// file, the section and the key, never a value (values may be secrets).
public struct ConfigFileError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String { case unreadable, syntax, unknownKey, unknownSection, wrongType, unsetVariable, badInterpolation }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The file is missing or not readable.
        public static let unreadable = Code(.unreadable)
        /// Not valid TOML.
        public static let syntax = Code(.syntax)
        /// A key that is no option of the section's commands (a misspelling, say).
        public static let unknownKey = Code(.unknownKey)
        /// A table that is no subcommand.
        public static let unknownSection = Code(.unknownSection)
        /// A value of a type the option cannot take (a table, an array for a single value, ...).
        public static let wrongType = Code(.wrongType)
        /// `${NAME}` with NAME not set in the environment.
        public static let unsetVariable = Code(.unsetVariable)
        /// `${` without its `}`, or a name that is not one.
        public static let badInterpolation = Code(.badInterpolation)

        public var description: String { value.rawValue }
    }

    public let code: Code
    /// The file, with `:line:column` for a syntax error.
    public let file: String
    /// `top level`, `[consume]`; nil when the whole file is meant.
    public let section: String?
    public let key: String?
    public let message: String

    init(_ code: Code, file: String, section: String? = nil, key: String? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.section = section
        self.key = key
        self.message = message
    }

    /// `/etc/audit-ingest.toml, [consume]: batch-sise: unknown key; did you mean batch-size?`
    public var description: String {
        var place = file
        if let section { place += ", \(section)" }
        if let key { place += ": \(key)" }
        return "\(place): \(message)"
    }
}

/// The candidate closest to a misspelled `word`, when one is close enough to be what was meant
/// (at most a third of its letters differ; `batch_size` and `batchsize` find `batch-size`).
func closest(to word: String, among candidates: some Sequence<String>) -> String? {
    let normalized = normalize(word)
    let scored = candidates.map { ($0, editDistance(normalized, normalize($0))) }
    guard let best = scored.min(by: { ($0.1, $0.0) < ($1.1, $1.0) }) else { return nil }
    return best.1 <= max(1, normalized.count / 3) ? best.0 : nil
}

private func normalize(_ key: String) -> [Character] {
    Array(key.lowercased().filter { $0 != "-" && $0 != "_" })
}

/// Levenshtein distance: insertions, deletions and substitutions.
private func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    guard !a.isEmpty else { return b.count }
    var previous = Array(0...b.count)
    for (i, left) in a.enumerated() {
        var current = [i + 1]
        for (j, right) in b.enumerated() {
            current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (left == right ? 0 : 1)))
        }
        previous = current
    }
    return previous[b.count]
}
