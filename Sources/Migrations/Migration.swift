import Crypto
import Foundation

/// One numbered SQL file, `NNNN_name.sql`, applied once in its own transaction.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String
    /// SHA-256 of the file's bytes, hex (the same as `sha256sum FILE`).
    public let checksum: String
    public let fileName: String
    /// Checksums of this file before edits of its comments only (`schemas/migrations/comment-edits`):
    /// a database that applied one of them is up to date.
    public let formerChecksums: Set<String>

    public init(version: Int, name: String, sql: String, fileName: String, formerChecksums: Set<String> = []) {
        self.version = version
        self.name = name
        self.sql = sql
        self.fileName = fileName
        self.checksum = SHA256.hash(data: Array(sql.utf8)).map { String(format: "%02x", $0) }.joined()
        self.formerChecksums = formerChecksums
    }

    /// The checksums that count as this migration applied.
    public var acceptedChecksums: Set<String> { formerChecksums.union([checksum]) }

    /// Whether a database that recorded `applied` for this version applied this migration.
    func isApplied(as applied: String) -> Bool {
        applied == checksum || formerChecksums.contains(applied)
    }

    /// The file beside the migrations that lists checksums of comment-only edits.
    static let commentEditsFile = "comment-edits"

    /// Reads `commentEditsFile` in `directory` (absent: none): version → former checksums.
    static func commentEdits(in directory: URL) throws -> [Int: Set<String>] {
        let url = directory.appendingPathComponent(commentEditsFile)
        guard let data = FileManager.default.contents(atPath: url.path) else { return [:] }
        var edits: [Int: Set<String>] = [:]
        for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(separator: " ", maxSplits: 2)
            guard !line.hasPrefix("#"), !fields.isEmpty else { continue }
            guard fields.count >= 2, let version = Int(fields[0]), fields[1].count == 64, fields[1].allSatisfy(\.isHexDigit) else {
                throw MigrationError(.invalidFileName, """
                    \(url.path) line \(index + 1) is not VERSION SHA256 NOTE: \(line.prefix(80))
                    """)
            }
            edits[version, default: []].insert(fields[1].lowercased())
        }
        return edits
    }

    /// Reads every `NNNN_name.sql` in `directory`, sorted by version. Throws for a file name that
    /// does not start with a number, and for two files with the same number.
    public static func load(from directory: URL) throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw MigrationError(.directoryUnreadable, "cannot read migrations directory \(directory.path): \(error.localizedDescription)")
        }
        let edits = try commentEdits(in: directory)
        var migrations: [Migration] = []
        for fileName in names.sorted() where fileName.hasSuffix(".sql") {
            let stem = fileName.dropLast(4)
            let digits = stem.prefix(while: \.isNumber)
            guard let version = Int(digits), stem.dropFirst(digits.count).first == "_" else {
                throw MigrationError(.invalidFileName, "migration file \(fileName) must be named NNNN_name.sql")
            }
            let url = directory.appendingPathComponent(fileName)
            guard let data = FileManager.default.contents(atPath: url.path),
                  let sql = String(data: data, encoding: .utf8) else {
                throw MigrationError(.directoryUnreadable, "cannot read \(url.path) as UTF-8")
            }
            if let clash = migrations.first(where: { $0.version == version }) {
                throw MigrationError(.invalidFileName, "migrations \(clash.fileName) and \(fileName) share version \(version)")
            }
            migrations.append(Migration(version: version, name: String(stem.dropFirst(digits.count + 1)),
                                        sql: sql, fileName: fileName, formerChecksums: edits[version] ?? []))
        }
        return migrations.sorted { $0.version < $1.version }
    }

    /// Where the project's `schemas/migrations` is: `$AUDIT_INGEST_MIGRATIONS`, else
    /// `./schemas/migrations`, else the nearest `schemas/migrations` above the executable (a
    /// development build in `.build/`). Nil when none exists.
    public static func defaultDirectory(executablePath: String = CommandLine.arguments[0]) -> URL? {
        let fileManager = FileManager.default
        if let fromEnvironment = ProcessInfo.processInfo.environment["AUDIT_INGEST_MIGRATIONS"], !fromEnvironment.isEmpty {
            return URL(fileURLWithPath: fromEnvironment)
        }
        var candidates = [URL(fileURLWithPath: fileManager.currentDirectoryPath)]
        var directory = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            candidates.append(directory)
            directory.deleteLastPathComponent()
        }
        for base in candidates {
            let migrations = base.appendingPathComponent("schemas/migrations")
            var isDirectory: ObjCBool = false
            if fileManager.fileExists(atPath: migrations.path, isDirectory: &isDirectory), isDirectory.boolValue {
                return migrations
            }
        }
        return nil
    }
}

/// Why `migrate` stopped.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        private let name: String
        private init(name: String) { self.name = name }
        /// The migrations directory is missing or unreadable.
        public static let directoryUnreadable = Code(name: "directoryUnreadable")
        /// A file is not named `NNNN_name.sql`, or two share a number.
        public static let invalidFileName = Code(name: "invalidFileName")
        /// An applied migration's file has changed since it was applied.
        public static let checksumMismatch = Code(name: "checksumMismatch")
        /// A migration's SQL failed; nothing of it was applied.
        public static let migrationFailed = Code(name: "migrationFailed")
    }

    public let code: Code
    public let message: String
    /// The database error behind `.migrationFailed`, when there is one.
    public let underlying: Error?

    init(_ code: Code, _ message: String, underlying: Error? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }
}
