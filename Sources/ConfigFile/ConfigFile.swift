import Foundation
import TOMLKit

/// `--config FILE`: a TOML file whose top level and command sections (`[consume]`,
/// `[admin.serve]`) set the options of the commands as if they were given on the command line,
/// before the command line's own arguments (which therefore win).
///
/// Keys are the long option names without dashes (`batch-size = 5000`). A section applies to its
/// command and every command below it; the top level applies to every command that has the
/// option; the deeper section wins. String values may use `${NAME}` (see
/// `EnvironmentInterpolation`).
public struct ConfigFile: Sendable {
    public let path: String
    let root: Section

    /// Reads and parses the file; its keys are checked by `check(against:)`.
    /// Throws `ConfigFileError` (`.unreadable`, `.syntax`).
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigFileError(.unreadable, file: path, "cannot read it (missing, or not readable by this user)")
        }
        try self.init(path: path, text: String(decoding: data, as: UTF8.self))
    }

    public init(path: String, text: String) throws {
        self.path = path
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let position = error.source.begin
            throw ConfigFileError(.syntax, file: "\(path):\(position.line):\(position.column)", "not valid TOML: \(error.description)")
        }
        root = Section(path: [], table: table)
    }
}

/// A table of the file: its settings, in the file's order, and the tables inside it.
struct Section: Sendable {
    /// `[]` for the top level, `["admin", "serve"]` for `[admin.serve]`.
    let path: [String]
    let settings: [(key: String, value: Setting)]
    let sections: [(name: String, section: Section)]

    init(path: [String], table: TOMLTable) {
        self.path = path
        var settings: [(String, Setting)] = []
        var sections: [(String, Section)] = []
        for (key, value) in table {
            if let inner = value.table {
                sections.append((key, Section(path: path + [key], table: inner)))
            } else {
                settings.append((key, Setting(value)))
            }
        }
        self.settings = settings
        self.sections = sections
    }

    /// How messages name it: `top level`, `[admin.serve]`.
    var title: String { path.isEmpty ? "top level" : "[\(path.joined(separator: "."))]" }

    func section(_ name: String) -> Section? {
        sections.first { $0.name == name }?.section
    }
}

/// A value of the file, as the command line will receive it.
enum Setting: Sendable {
    /// A string: `${NAME}` is expanded when it is used.
    case text(String)
    /// An integer or floating-point number, written out as the command line would give it.
    case number(String)
    case bool(Bool)
    case list([Setting])
    /// A value no option takes: a date or time, an array of arrays or of tables. Holds its type.
    case unsupported(String)

    init(_ value: any TOMLValueConvertible) {
        switch value.type {
        case .string: self = .text(value.string ?? "")
        case .int: self = .number(String(value.int ?? 0))
        case .double: self = .number(String(value.double ?? 0))
        case .bool: self = .bool(value.bool ?? false)
        case .array:
            let elements = (value.array.map(Array.init) ?? []).map(Setting.init)
            self = elements.allSatisfy(\.isScalar) ? .list(elements) : .unsupported("an array of arrays, tables or dates")
        case .table: self = .unsupported("a table")
        default: self = .unsupported("a \(value.type.description)")
        }
    }

    var isScalar: Bool {
        switch self {
        case .text, .number, .bool: true
        case .list, .unsupported: false
        }
    }

    /// What the value is, for messages (never the value itself: it may be a secret).
    var kind: String {
        switch self {
        case .text: "a string"
        case .number: "a number"
        case .bool: "true or false"
        case .list: "an array"
        case .unsupported(let kind): kind
        }
    }
}
