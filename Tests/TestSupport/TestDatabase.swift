import Crypto
import Foundation
import Migrations
import Postgres
import Synchronization

/// Databases for integration tests, on the PostgreSQL that `scripts/test` starts
/// (`DATABASE_URL`). Each test gets its own database, so suites can run in parallel.
/// A missing server is a failure, never a skip.
public enum TestDatabase {
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// The server's base URL, `postgresql://user@host:port/db`.
    public static func baseURL() throws -> String {
        TestLogging.bootstrap()
        guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
            throw Unavailable(description: "DATABASE_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL")
        }
        return url
    }

    /// Creates an empty database with a unique name and returns its connection string.
    public static func create(prefix: String = "test") throws -> String {
        let base = try baseURL()
        let name = uniqueName(prefix)
        let admin = try PostgresConnection(base)
        defer { admin.close() }
        try admin.execute("CREATE DATABASE \(name)")
        return url(base, database: name)
    }

    /// Creates a database with the project's migrations applied: a copy of a template database
    /// that the first call migrates (in process, through `Migrator`), so a fixture costs one
    /// `CREATE DATABASE ... TEMPLATE` instead of a migration run.
    public static func createMigrated(prefix: String = "test") throws -> String {
        let base = try baseURL()
        let template = try migratedTemplate(base: base)
        let name = uniqueName(prefix)
        let admin = try PostgresConnection(base)
        defer { admin.close() }
        try admin.execute("CREATE DATABASE \(name) TEMPLATE \(template)")
        return url(base, database: name)
    }

    /// Applies the repository's migrations to the database at `url`, in process.
    public static func migrate(_ url: String) throws {
        let connection = try PostgresConnection(url)
        defer { connection.close() }
        _ = try Migrator(migrations: Migration.load(from: migrationsDirectory)).apply(on: connection)
    }

    /// The name of the migrated template on the server at `base`, made once per test process.
    /// Named after the migrations' checksums, so a server kept from a run with other migrations
    /// gets a template of its own.
    private static func migratedTemplate(base: String) throws -> String {
        try templates.withLock { templates in
            if let name = templates[base] { return name }
            let migrations = try Migration.load(from: migrationsDirectory)
            let name = "audit_template_" + SHA256.hash(data: Array(migrations.map(\.checksum).joined().utf8)).map { String(format: "%02x", $0) }.joined().prefix(16)
            let admin = try PostgresConnection(base)
            defer { admin.close() }
            // Test processes that share a server take turns making it.
            try admin.execute("SELECT pg_advisory_lock(7022629598042026999)")
            defer { _ = try? admin.execute("SELECT pg_advisory_unlock(7022629598042026999)") }
            let exists = try admin.query("SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate", [name]).rows.count == 1
            if !exists {
                try admin.execute("DROP DATABASE IF EXISTS \(name)")
                try admin.execute("CREATE DATABASE \(name)")
                try migrate(url(base, database: name))
                // Marked a template last: a run killed half-way leaves no usable-looking copy.
                try admin.execute("ALTER DATABASE \(name) WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
            }
            templates[base] = name
            return name
        }
    }

    private static let templates = Mutex<[String: String]>([:])

    private static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
    }

    /// `base` (a `postgresql://` URI) with its database name replaced.
    public static func url(_ base: String, database: String) -> String {
        let query = base.firstIndex(of: "?").map { String(base[$0...]) } ?? ""
        let withoutQuery = base.firstIndex(of: "?").map { String(base[..<$0]) } ?? base
        let authorityStart = withoutQuery.range(of: "://")?.upperBound ?? withoutQuery.startIndex
        let pathStart = withoutQuery[authorityStart...].firstIndex(of: "/") ?? withoutQuery.endIndex
        return String(withoutQuery[..<pathStart]) + "/" + database + query
    }

    /// `base` (a `postgresql://` URI) for another login, without a password (the throwaway
    /// cluster trusts its local connections).
    public static func url(_ base: String, user: String) -> String {
        guard let schemeEnd = base.range(of: "://")?.upperBound else { return base }
        let rest = base[schemeEnd...]
        let hostStart = rest.firstIndex(of: "@").map { rest.index(after: $0) } ?? rest.startIndex
        return String(base[..<schemeEnd]) + user + "@" + rest[hostStart...]
    }

    /// The login the tenant read API is served as in tests, as operators are told to: a member
    /// of `audit_api` only (`admin serve` refuses tenant tokens over the superuser). Created once
    /// per cluster; nil while no database of the cluster has been migrated (no `audit_api` yet).
    public static let readAPILogin = "audit_read_api"

    public static func readAPIURL(for url: String) throws -> String? {
        let connection = try PostgresConnection(url)
        guard try connection.execute("SELECT to_regrole('audit_api') IS NOT NULL").scalar == "t" else { return nil }
        // Test processes run side by side on one cluster: a concurrent CREATE or GRANT may fail once.
        for attempt in 1...5 {
            do {
                try connection.execute("""
                    DO $$ BEGIN
                        IF to_regrole('\(readAPILogin)') IS NULL THEN CREATE ROLE \(readAPILogin) LOGIN; END IF;
                        IF NOT pg_has_role('\(readAPILogin)', 'audit_api', 'MEMBER') THEN GRANT audit_api TO \(readAPILogin); END IF;
                    END $$
                    """)
                break
            } catch where attempt < 5 {
                continue
            }
        }
        return Self.url(url, user: readAPILogin)
    }

    /// Version -> SHA-256 of the repository's migration files (what `health` expects).
    public static func migrationVersions() throws -> [Int: String] {
        let sums = try Shell.run("/bin/sh", ["-c", "cd '\(migrationsDirectory.path)' && sha256sum *.sql"])
        var versions: [Int: String] = [:]
        for line in sums.output.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, let version = Int(parts[1].prefix(while: \.isNumber)) else { continue }
            versions[version] = String(parts[0])
        }
        return versions
    }

    /// The repository's `schemas/migrations`.
    public static var migrationsDirectory: URL {
        repositoryRoot.appendingPathComponent("schemas/migrations")
    }

    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath)  // Tests/TestSupport/TestDatabase.swift
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}

