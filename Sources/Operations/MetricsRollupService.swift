import Foundation
import Logging
import Pipeline
import Postgres

/// Runs the tenant_metrics rollup for today (UTC) on a thread of its own every `interval`, while
/// the pipeline runs (`rollup_tenant_metrics`, schemas/migrations/0005), then checks two alerts:
/// `tenant_storage_quota` (a tenant's estimated storage above its max_storage_gb) and
/// `slow_queries` (pg_stat_statements statements slower on average than `slowQueryThreshold`).
/// Stops with `stop`.
public final class MetricsRollupService: Sendable {
    private let database: PostgresConfiguration
    private let interval: Duration
    private let stop: StopSignal
    private let alerts: PipelineStatusBox?
    private let slowQueryThreshold: Duration
    private let clock: ThreadClock
    private let logger: Logger

    package init(database: PostgresConfiguration, interval: Duration, stop: StopSignal, alerts: PipelineStatusBox? = nil,
                slowQueryThreshold: Duration = .seconds(1), clock: ThreadClock = .system,
                logger: Logger = Logger(label: "audit-ingest.rollup")) {
        self.database = database
        self.interval = interval
        self.stop = stop
        self.alerts = alerts
        self.slowQueryThreshold = slowQueryThreshold
        self.clock = clock
        self.logger = logger
    }

    /// Tenants per rollup transaction. Default: 1000.
    public static let batchSize = 1000

    /// One rollup and alert check (what each interval does). The rollup (`MetricsRollup.run`)
    /// folds the ingest's counts, then runs `rollup_tenant_metrics_batch` (schemas/migrations/0007)
    /// in transactions of `batchSize` tenants, so 100k tenants finish within the statement
    /// timeout; all are SECURITY DEFINER functions the ingest role may run.
    public func runOnce() throws {
        let connection = try PostgresConnection(configuration: database)
        defer { connection.close() }
        let day = try connection.execute("SELECT (now() AT TIME ZONE 'UTC')::date::text").scalar ?? ""
        let rows = try MetricsRollup.run(day: day, batchSize: Self.batchSize, on: connection)
        logger.debug("metrics rollup", metadata: [LogKey.tenants: "\(rows)"])
        let overQuota = try connection.query("SELECT code FROM tenants_over_storage_quota($1::date) AS t(code)", [day])
            .rows.compactMap { $0[0] }
        if !overQuota.isEmpty { logger.warning("tenants over their storage quota", metadata: [LogKey.tenants: "\(overQuota)"]) }
        alerts?.setAlert("tenant_storage_quota", firing: !overQuota.isEmpty)
        if try connection.execute("SELECT to_regclass('pg_stat_statements') IS NOT NULL").scalar == "t" {
            let slow = Int(try connection.query("SELECT count(*) FROM pg_stat_statements WHERE mean_exec_time > $1 AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                                                [String(slowQueryThreshold.milliseconds)]).scalar ?? "0") ?? 0
            if slow > 0 { logger.warning("slow queries", metadata: [LogKey.statements: "\(slow)", LogKey.thresholdMs: "\(slowQueryThreshold.milliseconds)"]) }
            alerts?.setAlert("slow_queries", firing: slow > 0)
        }
    }

    /// Rolls up every `interval` until `stop` (or the service's own stop) is raised; a failed
    /// rollup is logged and retried at the next interval. Blocks: run it on a thread of its own
    /// (`ThreadService`).
    package func loop(until stop: StopSignal) {
        var next = clock.now() + interval
        while !stop.isRaised && !self.stop.isRaised {
            guard clock.now() >= next else {
                clock.sleep(.milliseconds(200))  // a stop is noticed within 200 ms
                continue
            }
            next = clock.now() + interval
            do {
                try runOnce()
            } catch {
                logger.warning("metrics rollup failed; will retry", metadata: [LogKey.error: "\(error)"])
            }
        }
    }
}
