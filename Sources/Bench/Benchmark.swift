import AuditCore
import Foundation
import Kafka
import Logging
import Migrations
import Pipeline
import Postgres

/// What `audit-ingest bench` runs.
public struct BenchOptions: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        case backfill
        case consumeStatic = "consume-static"
        case consumeGroup = "consume-group"
    }

    public var events = 200_000
    public var tenants = 50
    public var months = 7
    public var invalidRatio = 0.0
    /// Pad each event's metadata to about this many bytes (0: as generated, ~400 bytes).
    public var eventBytes = 0
    public var mode = Mode.backfill
    /// nil: a throwaway server on this machine, tuned as production would be.
    public var databaseURL: String?
    /// nil: the embedded Kafka cluster.
    public var brokers: String?
    package var engine = IngestConfiguration()
    public var migrations: [Migration] = []

    public init() {}
}

/// One path's measurement.
public struct PathResult: Sendable, Codable {
    public var wallSeconds: Double
    public var eventsPerSecond: Double
    /// CPU seconds of this process while the path ran (nil for the baseline: psql-like work is the server's).
    public var ingestCPUSeconds: Double?
    /// CPU seconds of the server's backends (nil when the server is not local).
    public var serverCPUSeconds: Double?
    /// Write-ahead log the server wrote during the path (cluster-wide), MiB.
    public var walMiB: Double?
    /// Checkpoints the server started during the path.
    public var checkpoints: Int?
    /// `audit_log` after the path: heap with TOAST, and its indexes, MiB.
    public var tableMiB: Double?
    public var indexMiB: Double?
    /// Sampled every 250 ms: (seconds since the start, server cores busy, audit-ingest cores busy).
    public var cpu: [[Double]] = []
}

/// What `bench` reports.
public struct BenchReport: Sendable, Codable {
    public var mode: String
    public var events: Int
    public var stored: Int
    public var deadLettered: Int
    public var auditIngest: PathResult
    /// `COPY audit_log FROM STDIN (FORMAT csv)` of the same valid rows on one connection.
    public var copyBaseline: PathResult
    /// audit-ingest's rate over the baseline's.
    public var ratio: Double
    public var flushP50Milliseconds: Double?
    public var flushP99Milliseconds: Double?
    /// Peak resident memory of the bench process. With the embedded Kafka cluster it includes the
    /// broker's log of the topic, which a real broker keeps elsewhere.
    public var maxResidentMiB: Double
    /// Seconds spent generating the events (and, for consume modes, producing them), not measured.
    public var preparationSeconds: Double
    /// Events stored per second, sampled during each run: (seconds since its start, events/s).
    public var auditIngestRate: [[Double]]
    public var copyBaselineRate: [[Double]]
}

/// Runs the same events through audit-ingest and through a plain CSV COPY, in the same run,
/// each into a freshly migrated database of its own, then drops them.
public final class Benchmark {
    let options: BenchOptions
    let logger: Logger
    /// Called with a one-line status while it runs.
    let progress: (String) -> Void

    public init(_ options: BenchOptions, logger: Logger = Logger(label: "audit-ingest.bench"), progress: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.logger = logger
        self.progress = progress
    }

    public func run() throws -> BenchReport {
        let server = options.databaseURL == nil ? try LocalPostgres() : nil
        defer { server?.stop() }
        let base = options.databaseURL ?? server!.url
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("audit-ingest-bench-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        progress("generating \(options.events) events")
        let data = try BenchData(options, directory: scratch) { written in self.progress("generated \(written) events") }
        let admin = try PostgresConnection(base)
        defer { admin.close() }
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let databases = (ingest: "audit_bench_\(suffix)", copy: "audit_bench_copy_\(suffix)")
        defer {
            for name in [databases.ingest, databases.copy] { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        }
        let postmaster = ResourceUsage.postmasterPID(on: admin)
        progress("COPY baseline")
        let copyURL = try prepareDatabase(databases.copy, base: base, data: data, withPartitions: true)
        let activityBeforeCopy = ServerActivity(admin)
        var (baseline, baselineRate) = try copyBaseline(url: copyURL, data: data, postmaster: postmaster) {
            ResourceUsage.waitForSessionsToEnd(of: databases.copy, on: admin)
        }
        baseline.record(ServerActivity(admin) - activityBeforeCopy, StoredSize(url: copyURL))
        // Its fresh rows would draw autovacuum (insert-driven since PostgreSQL 13) into
        // audit-ingest's measurement, on the same cores, counted in the server's CPU.
        do {
            try admin.execute("DROP DATABASE \(databases.copy) WITH (FORCE)")
        } catch {
            logger.warning("could not drop the baseline's database before audit-ingest's run: its autovacuum may be counted in the server's CPU",
                           metadata: [LogKey.database: "\(databases.copy)", LogKey.error: "\(error)"])
        }
        progress("audit-ingest \(options.mode.rawValue)")
        let ingestURL = try prepareDatabase(databases.ingest, base: base, data: data, withPartitions: false)
        let latencies = FlushLatencies()
        var activityBeforeIngest = ServerActivity(admin)
        var run = try IngestRun(options: options, url: ingestURL, data: data, latencies: latencies, postmaster: postmaster,
                                logger: logger, progress: progress).measure {
            activityBeforeIngest = ServerActivity(admin)
        } settled: {
            ResourceUsage.waitForSessionsToEnd(of: databases.ingest, on: admin)
        }
        run.result.record(ServerActivity(admin) - activityBeforeIngest, StoredSize(url: ingestURL))
        let validRows = Double(data.validRows)
        guard run.summary.stored + run.summary.deadLetteredTotal == options.events else {
            throw BenchError("""
                audit-ingest handled \(run.summary.stored + run.summary.deadLetteredTotal) of \(options.events) events: \
                the broker no longer had the others (retention) or the run stopped early; nothing to compare
                """)
        }
        return BenchReport(
            mode: options.mode.rawValue, events: options.events, stored: run.summary.stored,
            deadLettered: run.summary.deadLetteredTotal, auditIngest: run.result, copyBaseline: baseline,
            ratio: baseline.wallSeconds / max(run.result.wallSeconds, 1e-9) * Double(run.summary.stored) / max(validRows, 1),
            flushP50Milliseconds: latencies.percentile(0.5), flushP99Milliseconds: latencies.percentile(0.99),
            maxResidentMiB: ResourceUsage.maxResidentMiB(), preparationSeconds: data.generationSeconds + run.producingSeconds,
            auditIngestRate: run.rate, copyBaselineRate: baselineRate)
    }

    /// Creates and migrates a database with the benchmark's tenants (and, for the baseline, every
    /// month partition it needs, since COPY cannot create them). Returns its URL.
    private func prepareDatabase(_ name: String, base: String, data: BenchData, withPartitions: Bool) throws -> String {
        let admin = try PostgresConnection(base)
        defer { admin.close() }
        try admin.execute("CREATE DATABASE \(name)")
        let url = Self.url(base, database: name)
        let connection = try PostgresConnection(url)
        defer { connection.close() }
        _ = try Migrator(migrations: options.migrations, logger: logger).apply(on: connection)
        for (index, id) in data.tenantIDs.enumerated() {
            try connection.query("INSERT INTO tenant (id, name, code) VALUES ($1, $2, $3)", [id, "Tenant \(index)", "bench-\(index)"])
        }
        if withPartitions, let first = data.months.first, let last = data.months.last {
            var month = first.previous
            while month <= last.next {
                try connection.query("SELECT ensure_month_partitions($1::date)", [month.firstDayISO])
                month = month.next
            }
        }
        try connection.execute("CHECKPOINT")
        return url
    }

    /// `base` (a `postgresql://` URI) with its database name replaced.
    static func url(_ base: String, database: String) -> String {
        let query = base.firstIndex(of: "?").map { String(base[$0...]) } ?? ""
        let withoutQuery = base.firstIndex(of: "?").map { String(base[..<$0]) } ?? base
        let authorityStart = withoutQuery.range(of: "://")?.upperBound ?? withoutQuery.startIndex
        let pathStart = withoutQuery[authorityStart...].firstIndex(of: "/") ?? withoutQuery.endIndex
        return String(withoutQuery[..<pathStart]) + "/" + database + query
    }
}

extension PathResult {
    mutating func record(_ activity: ServerActivity, _ size: StoredSize) {
        walMiB = activity.walBytes / 1_048_576
        checkpoints = Int(activity.checkpoints)
        tableMiB = size.tableMiB
        indexMiB = size.indexMiB
    }
}
