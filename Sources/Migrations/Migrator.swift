import Foundation
import Logging
import Postgres

/// Applies migrations in order, each in its own transaction, recording them in
/// `schema_migrations`. Concurrent runs against one database serialise on an advisory lock, so
/// each migration is applied exactly once.
public struct Migrator {
    /// The advisory lock key `migrate` holds while it works ("auditmig" in ASCII).
    public static let advisoryLockKey: Int64 = 0x6175_6469_746D_6967

    public let migrations: [Migration]
    private let logger: Logger

    public init(migrations: [Migration], logger: Logger = Logger(label: "audit-ingest.migrate")) {
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies every pending migration and returns those applied now (empty when up to date).
    /// Throws `.checksumMismatch` naming the file when an applied migration was edited, and
    /// `.migrationFailed` (nothing of that migration applied) when its SQL fails.
    @discardableResult
    public func apply(on connection: PostgresConnection) throws -> [Migration] {
        try connection.execute("SELECT pg_advisory_lock(\(Self.advisoryLockKey))")
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))") }

        try connection.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer PRIMARY KEY,
                name        text        NOT NULL,
                checksum    text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                duration_ms integer     NOT NULL
            )
            """)
        let applied = try appliedMigrations(on: connection)
        try verifyUnchanged(applied)
        try recordCommentEdits(applied, on: connection)

        var appliedNow: [Migration] = []
        for migration in migrations where applied[migration.version] == nil {
            let started = ContinuousClock.now
            do {
                try connection.transaction { connection in
                    try connection.execute(migration.sql)
                    let elapsed = started.duration(to: .now).milliseconds
                    try connection.query(
                        "INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
                        [String(migration.version), migration.name, migration.checksum, String(elapsed)])
                }
            } catch {
                throw MigrationError(.migrationFailed, "migration \(migration.fileName) failed and was rolled back: \(error)",
                                     underlying: error)
            }
            logger.info("applied migration", metadata: [
                LogKey.migration: "\(migration.fileName)",
                LogKey.durationMs: "\(started.duration(to: .now).milliseconds)",
            ])
            appliedNow.append(migration)
        }
        return appliedNow
    }

    /// Every migration known on disk or in the database, with its state. Takes no lock.
    public func status(on connection: PostgresConnection) throws -> [MigrationStatus] {
        let exists = try connection.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").scalar == "t"
        let applied = exists ? try appliedMigrations(on: connection) : [:]
        var statuses: [MigrationStatus] = migrations.map { migration in
            guard let record = applied[migration.version] else {
                return MigrationStatus(version: migration.version, name: migration.name, state: .pending, appliedAt: nil)
            }
            return MigrationStatus(version: migration.version, name: migration.name,
                                   state: migration.isApplied(as: record.checksum) ? .applied : .changed,
                                   appliedAt: record.appliedAt)
        }
        for (version, record) in applied where !migrations.contains(where: { $0.version == version }) {
            statuses.append(MigrationStatus(version: version, name: record.name, state: .unknownFile, appliedAt: record.appliedAt))
        }
        return statuses.sorted { $0.version < $1.version }
    }

    // MARK: Private

    private struct AppliedRecord {
        var name: String
        var checksum: String
        var appliedAt: String
    }

    private func appliedMigrations(on connection: PostgresConnection) throws -> [Int: AppliedRecord] {
        let result = try connection.execute(
            "SELECT version, name, checksum, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS TZ') AS applied_at FROM schema_migrations")
        var records: [Int: AppliedRecord] = [:]
        for row in result.rows {
            guard let version = row[0].flatMap({ Int($0) }) else { continue }
            records[version] = AppliedRecord(name: row[1] ?? "", checksum: row[2] ?? "", appliedAt: row[3] ?? "")
        }
        return records
    }

    /// Records the current checksum of each applied migration whose comments were edited since.
    private func recordCommentEdits(_ applied: [Int: AppliedRecord], on connection: PostgresConnection) throws {
        for migration in migrations {
            guard let record = applied[migration.version], record.checksum != migration.checksum else { continue }
            try connection.query("UPDATE schema_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3",
                                 [migration.checksum, String(migration.version), record.checksum])
            logger.info("applied migration's comments were edited since; recorded its checksum as it is now",
                        metadata: [LogKey.migration: "\(migration.fileName)"])
        }
    }

    private func verifyUnchanged(_ applied: [Int: AppliedRecord]) throws {
        for migration in migrations {
            guard let record = applied[migration.version], !migration.isApplied(as: record.checksum) else { continue }
            throw MigrationError(.checksumMismatch, """
                migration \(migration.fileName) was applied on \(record.appliedAt) and its file has changed since \
                (checksum \(record.checksum.prefix(12)) applied, \(migration.checksum.prefix(12)) on disk). \
                Restore the file, and put schema changes in a new migration.
                """)
        }
        for (version, record) in applied where !migrations.contains(where: { $0.version == version }) {
            logger.warning("applied migration has no file here (a newer audit-ingest applied it?)",
                           metadata: [LogKey.version: "\(version)", LogKey.name: "\(record.name)"])
        }
    }
}

/// One line of `migrate status`.
public struct MigrationStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        case applied
        case pending
        /// Applied, but the file differs from what was applied.
        case changed
        /// Applied, but no file with its number exists here.
        case unknownFile = "unknown file"
    }

    public var version: Int
    public var name: String
    public var state: State
    public var appliedAt: String?
}
