import ArgumentParser
import Foundation
import Migrations
import Operations
import Postgres

/// Prints a report as pretty JSON with stable (sorted) keys.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

struct Health: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the database: reachable, round-trip latency, version, migrations up to date.",
        discussion: "Prints a JSON report. Exit status 1 when unhealthy (unreachable, or migrations missing or changed).")
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var location: Migrate.Location

    func run() throws {
        let expected = (try? location.load())?.reduce(into: [Int: Set<String>]()) { $0[$1.version] = $1.acceptedChecksums } ?? [:]
        let report = HealthReport.check(try database.configuration(), acceptedMigrations: expected)
        try printJSON(report)
        if !report.healthy { throw ExitCode(1) }
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Table and partition sizes and row estimates, index usage, slow queries (pg_stat_statements).")
    @OptionGroup var database: DatabaseOptions
    @Option(help: ArgumentHelp("Slow query threshold (mean execution time).", valueName: "ms")) var slowQueryMs: Double = 100

    func run() throws {
        try printJSON(try DatabaseStatistics.collect(on: try database.connect(), slowQueryThresholdMilliseconds: slowQueryMs))
    }
}

struct Optimize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make partitions ahead, ANALYZE every table, refresh the metrics rollup for yesterday and today.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Months of partitions to make ahead of the current one (0-\(Partitions.maxMonthsAhead)).") var premake: Int = 3

    func validate() throws {
        do { try Partitions.checkMonthsAhead(premake) } catch let error as OperationsError { throw ValidationError(error.message) }
    }

    func run() throws {
        try printJSON(try OptimizeReport.run(monthsAhead: premake, on: try database.connect()))
    }
}

struct Vacuum: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "VACUUM one of audit-ingest's tables (or a partition), or all of them.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Table or partition (default: every table of the schema).") var table: String?
    @Flag(help: "Also ANALYZE.") var analyze = false

    func run() throws {
        do { try printJSON(try Maintenance.vacuum(table: table, analyze: analyze, on: try database.connect())) }
        catch let error as OperationsError { throw ValidationError(error.message) }
    }
}

struct Reindex: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "REINDEX ... CONCURRENTLY one of audit-ingest's tables (or a partition), or all of them.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Table or partition (default: every table of the schema).") var table: String?

    func run() throws {
        do { try printJSON(try Maintenance.reindex(table: table, on: try database.connect())) }
        catch let error as OperationsError { throw ValidationError(error.message) }
    }
}

struct Tenant: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Tenant reports, read API tokens, retention, legal holds and redaction.",
                                                    subcommands: [Report.self, Token.self, Retention.self, Hold.self, Redaction.self])

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Users, items, audit events (total, last 24 h, by severity), partitions, storage against quota, top actions.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The tenant's id (UUID).") var tenantID: String

        func run() throws {
            do {
                try printJSON(try TenantReport.build(tenantID: tenantID, on: try database.connect()))
            } catch TenantReport.Lookup.malformedID {
                throw ValidationError("\(tenantID) is not a tenant id (expected a UUID)")
            } catch TenantReport.Lookup.notFound {
                FileHandle.standardError.write(Data("Error: no tenant \(tenantID)\n".utf8))
                throw ExitCode(2)
            }
        }
    }
}

struct PartitionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partitions", abstract: "Month partitions of audit_log and tenant_metrics: list, make ahead, retention.",
        subcommands: [List.self, Ensure.self, Prune.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List partitions with bounds, row estimates and sizes.")
        @OptionGroup var database: DatabaseOptions
        func run() throws { try printJSON(try Partitions.list(on: try database.connect())) }
    }

    struct Ensure: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make the current month's partitions and --premake months ahead.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Months ahead (0-\(Partitions.maxMonthsAhead)).") var premake: Int = 3
        func validate() throws {
            do { try Partitions.checkMonthsAhead(premake) } catch let error as OperationsError { throw ValidationError(error.message) }
        }
        func run() throws {
            let created = try Partitions.ensure(monthsAhead: premake, on: try database.connect())
            print("created \(created) partition(s)")
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retention: detach and drop audit_log months older than --older-than, optionally archiving each first.",
            discussion: """
                A month is pruned when it ended more than N months before the current month. With \
                --archive DIR each is first written to DIR/audit_log_YYYY_MM.csv.gz (COPY ... TO, CSV with \
                a header), or audit_log_YYYY_MM.2.csv.gz, ... when that exists: an archive is never \
                overwritten. Beside it FILE.sha256 (sha256sum -c) and FILE.manifest.json (rows, bytes, \
                SHA-256); file and directory are fsynced before the month is dropped. A month is first \
                detached and renamed audit_log_YYYY_MM_detached; if archiving fails it stays so and the \
                next prune finishes it. Each drop is recorded, in its transaction, with the archive's name, SHA-256 \
                and the sealed groups the month held; the next checkpoint signs that record into the log, and \
                `verify --archive-dir DIR` checks the archive against it. Once checkpoints have begun, a month \
                holding batches not yet in the log is refused: run `checkpoint` first. Restore with: gunzip -c FILE | psql -c "COPY audit_log FROM STDIN \
                (FORMAT csv, HEADER)" after SELECT ensure_month_partitions('YYYY-MM-01'). tenant_metrics is kept.

                Each tenant's own retention (`tenant retention`) is applied first; its report is under \
                "tenantRetention". A month holding events a legal hold covers (`tenant hold`) is kept, and \
                listed under "kept" with the holds.
                """)
        @OptionGroup var database: DatabaseOptions
        @Option(help: ArgumentHelp("Age, in months: 12mo or 12.", valueName: "age")) var olderThan: String
        @Option(help: "Directory for archive files.") var archive: String?
        @Flag(help: "Only list what would be dropped.") var dryRun = false

        func run() throws {
            let digits = olderThan.hasSuffix("mo") ? String(olderThan.dropLast(2)) : olderThan
            guard let months = Int(digits), months >= 1 else {
                throw ValidationError("--older-than must be a number of months, like 12mo")
            }
            do {
                try printJSON(try Partitions.prune(olderThanMonths: months, archiveDirectory: archive, dryRun: dryRun,
                                                   on: try database.connect()))
            } catch let error as OperationsError {
                throw ValidationError(error.message)
            }
        }
    }
}

struct Metrics: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "tenant_metrics maintenance.", subcommands: [Rollup.self])

    struct Rollup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fill user_count, item_count, active_users and storage_used_mb of tenant_metrics for a day.",
            discussion: """
                First folds the counts the ingest appended to tenant_metrics_delta into audit_log_count (exact at \
                any moment in the view tenant_metrics_current); otherwise audit_log_count is not changed here. \
                Running it twice gives the same rows.
                """)
        @OptionGroup var database: DatabaseOptions
        @Option(help: ArgumentHelp("The UTC day, YYYY-MM-DD (default: today).", valueName: "date")) var date: String?

        func run() throws {
            let connection = try database.connect()
            let day = try date ?? connection.execute("SELECT (now() AT TIME ZONE 'UTC')::date::text").scalar!
            guard day.count == 10, day.split(separator: "-").count == 3 else { throw ValidationError("--date must look like 2026-11-26") }
            print("rolled up \(try MetricsRollup.run(day: day, on: connection)) tenant(s) for \(day)")
        }
    }
}
