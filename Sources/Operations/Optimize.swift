import Foundation
import Pipeline
import Postgres

/// `optimize` (the seed's optimize_database): partitions ahead, ANALYZE, metrics rollup.
public struct OptimizeReport: Codable, Sendable {
    public var partitionsCreated: Int
    public var monthsAhead: Int
    public var analyzed: [String]
    public var rolledUpDays: [String]
    public var rollupRows: Int
    public var seconds: Double

    public static func run(monthsAhead: Int, on connection: PostgresConnection) throws -> OptimizeReport {
        try Partitions.checkMonthsAhead(monthsAhead)
        let started = ContinuousClock.now
        let created = try Partitions.ensure(monthsAhead: monthsAhead, on: connection)
        let analyzed = try Maintenance.analyze(on: connection).tables
        var days: [String] = []
        var rows = 0
        for back in [1, 0] {
            let day = try connection.query("SELECT ((now() AT TIME ZONE 'UTC')::date - $1::int)::text", ["\(back)"]).scalar!
            rows += try MetricsRollup.run(day: day, on: connection)
            days.append(day)
        }
        return OptimizeReport(partitionsCreated: created, monthsAhead: monthsAhead, analyzed: analyzed,
                              rolledUpDays: days, rollupRows: rows, seconds: started.duration(to: .now).secondsDouble)
    }
}

/// The metrics rollup: completes tenant_metrics for a day (see `rollup_tenant_metrics` in
/// schemas/migrations/0005 for what each figure means). Adds only the counts the ingest
/// appended to audit_log_count.
///
/// Runs `rollup_tenant_metrics_batch` (0007) for `batchSize` tenants per transaction, so a day of
/// 100k tenants finishes within the statement timeout and holds its row locks on tenant_metrics
/// only briefly.
public enum MetricsRollup {
    /// Tenants per transaction. Default: 1000.
    public static let defaultBatchSize = 1000

    /// Rolls up `day` (YYYY-MM-DD, UTC); returns the tenant rows written. First folds the
    /// ingest's pending counts (tenant_metrics_delta, migration 0010) into audit_log_count, which
    /// apportions storage. A fold that fails does not stop the rollup: it runs, then the fold's
    /// error is thrown (the counts stay exact in tenant_metrics_current meanwhile).
    public static func run(day: String, batchSize: Int = defaultBatchSize, on connection: PostgresConnection) throws -> Int {
        var foldFailure: Error?
        do { try TenantCountFold.fold(on: connection) } catch { foldFailure = error }
        let written = try rollUp(day: day, batchSize: batchSize, on: connection)
        try TenantCountFold.compactFeedMonths(on: connection)
        if let foldFailure {
            throw PostgresError(code: .unexpectedResult, message: """
                the rollup of \(day) is done, but the ingest's counts could not be folded into tenant_metrics \
                (they stay exact in tenant_metrics_current): \(foldFailure)
                """)
        }
        return written
    }

    private static func rollUp(day: String, batchSize: Int, on connection: PostgresConnection) throws -> Int {
        var written = 0
        var after: String?
        repeat {
            let row = try connection.transaction { connection in
                try connection.query("SELECT last_tenant, written FROM rollup_tenant_metrics_batch($1::date, $2::uuid, $3)",
                                     [day, after, String(batchSize)]).rows.first
            }
            let next = row?[0] ?? nil
            if let next, next == after { throw PostgresError(code: .unexpectedResult, message: "the rollup of \(day) stopped advancing at tenant \(next)") }
            after = next
            written += Int(row?[1] ?? "0") ?? 0
        } while after != nil
        return written
    }
}
