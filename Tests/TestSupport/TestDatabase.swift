import Foundation
import Postgres

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
        guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
            throw Unavailable(description: "DATABASE_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL")
        }
        return url
    }

    /// Creates an empty database with a unique name and returns its connection string.
    public static func create(prefix: String = "test") throws -> String {
        let base = try baseURL()
        let name = "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
        let admin = try PostgresConnection(base)
        defer { admin.close() }
        try admin.execute("CREATE DATABASE \(name)")
        return url(base, database: name)
    }

    /// Creates a database and applies the project's migrations to it.
    public static func createMigrated(prefix: String = "test") throws -> String {
        let url = try create(prefix: prefix)
        let status = try Shell.run(Shell.executable(named: "audit-ingest"),
                                   ["migrate", "--database-url", url, "--migrations-dir", migrationsDirectory.path])
        guard status.exitCode == 0 else {
            throw Unavailable(description: "audit-ingest migrate failed (\(status.exitCode)): \(status.output)")
        }
        return url
    }

    /// `base` (a `postgresql://` URI) with its database name replaced.
    public static func url(_ base: String, database: String) -> String {
        let query = base.firstIndex(of: "?").map { String(base[$0...]) } ?? ""
        let withoutQuery = base.firstIndex(of: "?").map { String(base[..<$0]) } ?? base
        let authorityStart = withoutQuery.range(of: "://")?.upperBound ?? withoutQuery.startIndex
        let pathStart = withoutQuery[authorityStart...].firstIndex(of: "/") ?? withoutQuery.endIndex
        return String(withoutQuery[..<pathStart]) + "/" + database + query
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
