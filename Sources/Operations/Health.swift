import Foundation
import Postgres

/// `health`: is the database usable by audit-ingest right now.
public struct HealthReport: Codable, Sendable {
    public var healthy: Bool
    public var reachable: Bool
    public var latencyMilliseconds: Double?
    public var serverVersion: String?
    /// Applied migrations versus the ones this binary knows.
    public var migrationsApplied: Int?
    public var migrationsExpected: Int
    public var migrationsUpToDate: Bool
    public var pool: ConnectionPoolStatistics?
    public var problems: [String]

    /// How long after a pool checkout timeout health reports it. Default: 60 s.
    public static let defaultPoolTimeoutWindow: Duration = .seconds(60)

    /// Checks `database`. `expectedMigrations` maps version to checksum (from the migration files).
    /// Pool checkout timeouts make it unhealthy for `poolTimeoutWindow` after the latest one.
    public static func check(_ database: PostgresConfiguration, expectedMigrations: [Int: String],
                             pool: ConnectionPoolStatistics? = nil,
                             poolTimeoutWindow: Duration = defaultPoolTimeoutWindow) -> HealthReport {
        check(database, acceptedMigrations: expectedMigrations.mapValues { [$0] }, pool: pool, poolTimeoutWindow: poolTimeoutWindow)
    }

    /// Checks `database`; `acceptedMigrations` maps version to the checksums that count as that
    /// migration applied (the file's, and its own before edits of comments only).
    public static func check(_ database: PostgresConfiguration, acceptedMigrations expectedMigrations: [Int: Set<String>],
                             pool: ConnectionPoolStatistics? = nil,
                             poolTimeoutWindow: Duration = defaultPoolTimeoutWindow) -> HealthReport {
        var report = HealthReport(healthy: false, reachable: false, migrationsExpected: expectedMigrations.count,
                                  migrationsUpToDate: false, pool: pool, problems: [])
        let connection: PostgresConnection
        do {
            connection = try PostgresConnection(configuration: database)
        } catch {
            report.problems.append("database unreachable: \(error)")
            return report
        }
        defer { connection.close() }
        report.reachable = true
        do {
            let started = ContinuousClock.now
            try connection.ping()
            report.latencyMilliseconds = (started.duration(to: .now).secondsDouble * 1000 * 100).rounded() / 100
            report.serverVersion = try connection.execute("SHOW server_version").scalar
            let hasTable = try connection.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").scalar == "t"
            let applied = hasTable
                ? try connection.execute("SELECT version, checksum FROM schema_migrations").rows.reduce(into: [Int: String]()) {
                    if let version = $1[0].flatMap({ Int($0) }) { $0[version] = $1[1] ?? "" }
                }
                : [:]
            report.migrationsApplied = applied.count
            let missing = expectedMigrations.keys.filter { applied[$0] == nil }.sorted()
            let changed = expectedMigrations.filter { version, accepted in
                applied[version].map { !accepted.contains($0) } ?? false
            }.keys.sorted()
            report.migrationsUpToDate = missing.isEmpty && changed.isEmpty
            if !missing.isEmpty { report.problems.append("migrations not applied: \(missing); run audit-ingest migrate") }
            if !changed.isEmpty { report.problems.append("applied migrations differ from this binary's files: \(changed)") }
        } catch {
            report.problems.append("query failed: \(error)")
        }
        if let pool, let since = pool.secondsSinceLastTimeout, since < poolTimeoutWindow.secondsDouble {
            report.problems.append("""
                connection pool checkouts timed out \(pool.timeouts) time(s), the latest \(Int(since)) s ago \
                (healthy again \(poolTimeoutWindow.components.seconds) s after the last one)
                """)
        }
        report.healthy = report.reachable && report.migrationsUpToDate && report.problems.isEmpty
        return report
    }
}
