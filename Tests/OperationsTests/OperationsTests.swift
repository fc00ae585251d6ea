import Foundation
import Operations
import Postgres
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(3))) struct OperationsTests {
    static let acme = "00000000-0000-4000-8000-00000000000a"
    static let globex = "00000000-0000-4000-8000-00000000000b"
    static let users = ["10000000-0000-4000-8000-000000000001", "10000000-0000-4000-8000-000000000002",
                        "10000000-0000-4000-8000-000000000003"]

    /// Two tenants; Acme has three users (one created after 2026-03-10), two items, and audit
    /// events on 2026-03-10 by two distinct users (plus one with no user) and one on 2026-03-11.
    func seeded() throws -> PostgresConnection {
        let connection = try PostgresConnection(try TestDatabase.createMigrated(prefix: "ops"))
        try connection.execute("""
            INSERT INTO tenant (id, name, code, max_storage_gb) VALUES
                ('\(Self.acme)', 'Acme', 'acme', 1), ('\(Self.globex)', 'Globex', 'globex', 10);
            INSERT INTO "user" (id, tenant_id, email, created_at) VALUES
                ('\(Self.users[0])', '\(Self.acme)', 'a@acme.test', '2026-01-01'),
                ('\(Self.users[1])', '\(Self.acme)', 'b@acme.test', '2026-03-10 23:00+00'),
                ('\(Self.users[2])', '\(Self.acme)', 'c@acme.test', '2026-03-11 00:00+00');
            INSERT INTO item (tenant_id, owner_id, title, created_at) VALUES
                ('\(Self.acme)', '\(Self.users[0])', 'one', '2026-02-01'), ('\(Self.acme)', NULL, 'two', '2026-03-01');
            SELECT ensure_month_partitions('2026-03-01');
            INSERT INTO audit_log (id, tenant_id, user_id, action, severity, "timestamp") VALUES
                (gen_random_uuid(), '\(Self.acme)', '\(Self.users[0])', 'user.login', 'INFO', '2026-03-10 08:00+00'),
                (gen_random_uuid(), '\(Self.acme)', '\(Self.users[0])', 'item.create', 'INFO', '2026-03-10 09:00+00'),
                (gen_random_uuid(), '\(Self.acme)', '\(Self.users[1])', 'user.login', 'ERROR', '2026-03-10 23:59:59+00'),
                (gen_random_uuid(), '\(Self.acme)', NULL, 'system.tick', 'DEBUG', '2026-03-10 12:00+00'),
                (gen_random_uuid(), '\(Self.acme)', '\(Self.users[2])', 'user.login', 'INFO', '2026-03-11 00:00:00+00');
            -- What the ingest transaction would have counted.
            INSERT INTO tenant_metrics (tenant_id, "date", audit_log_count) VALUES
                ('\(Self.acme)', '2026-03-10', 4), ('\(Self.acme)', '2026-03-11', 1);
            ANALYZE;
            """)
        return connection
    }

    @Test func rollupMatchesHandComputedFiguresAndIsIdempotent() throws {
        let connection = try seeded()
        #expect(try MetricsRollup.run(day: "2026-03-10", on: connection) == 2)
        let query = """
            SELECT tenant_id, user_count, item_count, active_users, audit_log_count, storage_used_mb > 0
            FROM tenant_metrics WHERE "date" = '2026-03-10' ORDER BY tenant_id
            """
        let first = try connection.execute(query).rows
        #expect(first == [
            [Self.acme, "2", "2", "2", "4", "t"],     // users a, b (c came later); both items; a and b active
            [Self.globex, "0", "0", "0", "0", "f"],
        ])
        let storageBefore = try connection.execute("SELECT storage_used_mb FROM tenant_metrics WHERE \"date\" = '2026-03-10' ORDER BY tenant_id").rows
        #expect(try MetricsRollup.run(day: "2026-03-10", on: connection) == 2)
        #expect(try connection.execute(query).rows == first)
        #expect(try connection.execute("SELECT storage_used_mb FROM tenant_metrics WHERE \"date\" = '2026-03-10' ORDER BY tenant_id").rows
                == storageBefore)
        // The next day: c joined and was the only active user; the count stays the ingest's.
        try MetricsRollup.run(day: "2026-03-11", on: connection)
        #expect(try connection.execute("""
            SELECT user_count, active_users, audit_log_count FROM tenant_metrics WHERE tenant_id = '\(Self.acme)' AND "date" = '2026-03-11'
            """).rows == [["3", "1", "1"]])
    }

    @Test func tenantReportForAKnownTenant() throws {
        let connection = try seeded()
        try MetricsRollup.run(day: "2026-03-11", on: connection)
        let report = try TenantReport.build(tenantID: Self.acme.uppercased(), on: connection)
        #expect(report.code == "acme")
        #expect(report.userCount == 3)
        #expect(report.itemCount == 2)
        #expect(report.auditEventsTotal == 5)
        #expect(report.auditEventsBySeverity == ["INFO": 3, "ERROR": 1, "DEBUG": 1])
        #expect(report.partitionsTouched == ["audit_log_2026_03"])
        #expect(report.topActions.first?.action == "user.login" && report.topActions.first?.count == 3)
        #expect(report.estimatedStorageMB > 0)
        #expect(report.maxStorageGB == 1)
        #expect(throws: TenantReport.Lookup.malformedID) { try TenantReport.build(tenantID: "acme", on: connection) }
        #expect(throws: TenantReport.Lookup.notFound) {
            try TenantReport.build(tenantID: "99999999-0000-4000-8000-000000000000", on: connection)
        }
    }

    @Test func retentionDropsExactlyTheMonthsAskedAndTheArchiveRestores() throws {
        let url = try TestDatabase.createMigrated(prefix: "ops")
        let connection = try PostgresConnection(url)
        try connection.execute("""
            SELECT ensure_month_partitions(d::date) FROM generate_series(
                date_trunc('month', now()) - interval '14 months', date_trunc('month', now()), interval '1 month') d;
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp", ip_address, custom_metadata, user_agent)
            SELECT gen_random_uuid(), '\(Self.acme)', 'old.event ' || n, 'INFO',
                   date_trunc('month', now()) - interval '14 months' + n * interval '1 hour', '10.0.0.1',
                   jsonb_build_object('n', n, 'text', 'comma, "quote"'), E'line\\nbreak'
            FROM generate_series(1, 50) n;
            """)
        let oldMonth = try connection.execute("SELECT to_char(now() - interval '14 months', 'YYYY_MM')").scalar!
        let snapshot = "SELECT string_agg(t::text, '|' ORDER BY id) FROM audit_log t"
        let before = try connection.execute(snapshot).scalar
        let partitionsBefore = try Partitions.list(on: connection).filter { $0.parent == "audit_log" }.map(\.name)
        #expect(partitionsBefore.count == 15)

        let dryRun = try Partitions.prune(olderThanMonths: 12, archiveDirectory: nil, dryRun: true, on: connection)
        #expect(dryRun.dropped.count == 2)  // the months ending more than 12 months back: -14 and -13
        #expect(try Partitions.list(on: connection).filter { $0.parent == "audit_log" }.count == 15)

        let archive = FileManager.default.temporaryDirectory.appendingPathComponent("archive-\(UUID())").path
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: true)
        let result = try Partitions.prune(olderThanMonths: 12, archiveDirectory: archive, dryRun: false, on: connection)
        #expect(result.dropped == dryRun.dropped)
        #expect(result.dropped.contains("audit_log_\(oldMonth)"))
        let after = try Partitions.list(on: connection).filter { $0.parent == "audit_log" }.map(\.name)
        #expect(after == partitionsBefore.filter { !result.dropped.contains($0) })
        #expect(try connection.execute("SELECT count(*) FROM audit_log").scalar == "0")
        #expect(try connection.execute("SELECT count(*) FROM tenant_metrics").scalar == "0")

        // Restore the archive with COPY FROM: the same rows come back.
        try connection.execute("SELECT ensure_month_partitions((now() - interval '14 months')::date)")
        let restore = try Shell.run("/bin/sh", ["-c",
            "gunzip -c '\(archive)/audit_log_\(oldMonth).csv.gz' | psql -q '\(url)' -c 'COPY audit_log FROM STDIN (FORMAT csv, HEADER)'"])
        #expect(restore.exitCode == 0, "\(restore.output)")
        #expect(try connection.execute(snapshot).scalar == before)
    }

    @Test func maintenanceRefusesUnknownTablesAndWorksOnPartitions() throws {
        let connection = try seeded()
        let error = try #require(throws: OperationsError.self) {
            try Maintenance.vacuum(table: "pg_class", analyze: false, on: connection)
        }
        #expect(error.message.contains("unknown table pg_class"))
        #expect(try Maintenance.vacuum(table: "audit_log_2026_03", analyze: true, on: connection).tables == ["audit_log_2026_03"])
        #expect(try Maintenance.reindex(table: "audit_log_2026_03", on: connection).tables == ["audit_log_2026_03"])
        #expect(try Maintenance.vacuum(table: nil, analyze: false, on: connection).tables.contains("audit_log"))
    }

    @Test func healthReportsMigrationsAndReachability() throws {
        let migrations = try TestDatabase.migrationVersions()
        let migrated = HealthReport.check(PostgresConfiguration(connectionString: ConnectionString(try TestDatabase.createMigrated())),
                                          expectedMigrations: migrations)
        #expect(migrated.healthy, "\(migrated.problems)")
        #expect(migrated.latencyMilliseconds != nil)
        #expect(migrated.serverVersion?.hasPrefix("15") == true)

        let empty = HealthReport.check(PostgresConfiguration(connectionString: ConnectionString(try TestDatabase.create())),
                                       expectedMigrations: migrations)
        #expect(!empty.healthy && empty.reachable && !empty.migrationsUpToDate)
        #expect(empty.problems.first?.contains("run audit-ingest migrate") == true)

        let down = HealthReport.check(PostgresConfiguration(connectionString: ConnectionString(
            "postgresql://u:pw@127.0.0.1:1/x?connect_timeout=2")), expectedMigrations: migrations)
        #expect(!down.healthy && !down.reachable)
        #expect(!down.problems.joined().contains(":pw@"))
    }

    @Test func aMigrationAppliedBeforeACommentEditCountsAsApplied() throws {
        let migrations = try TestDatabase.migrationVersions()
        let url = try TestDatabase.createMigrated()
        let before = String(repeating: "ab", count: 32)  // the file's checksum before its comments changed
        try PostgresConnection(url).execute("UPDATE schema_migrations SET checksum = '\(before)' WHERE version = 10")
        let database = PostgresConfiguration(connectionString: ConnectionString(url))
        let strict = HealthReport.check(database, expectedMigrations: migrations)
        #expect(!strict.migrationsUpToDate)
        #expect(strict.problems.contains { $0.contains("differ from this binary's files: [10]") }, "\(strict.problems)")
        var accepted = migrations.mapValues { Set([$0]) }
        accepted[10]?.insert(before)
        let report = HealthReport.check(database, acceptedMigrations: accepted)
        #expect(report.healthy, "\(report.problems)")
    }

    @Test func statsCoverTablesPartitionsAndIndexes() throws {
        let connection = try seeded()
        let statistics = try DatabaseStatistics.collect(on: connection)
        #expect(statistics.tables.contains { $0.name == "audit_log_2026_03" && $0.parent == "audit_log" && $0.rowEstimate == 5 })
        #expect(statistics.partitionCount == 2)
        // Usage is counted on each partition's own indexes (the parent's are catalog entries only).
        #expect(statistics.indexes.filter { $0.table == "audit_log_2026_03" }.count >= 5)
        #expect(statistics.slowQueries == nil)
        #expect(statistics.slowQueriesNote?.contains("pg_stat_statements") == true)
    }

    @Test func optimizeMakesPartitionsAheadAndRollsUp() throws {
        let connection = try seeded()
        let report = try OptimizeReport.run(monthsAhead: 2, on: connection)
        #expect(report.partitionsCreated == 6)  // current month and two ahead, for both parents
        #expect(report.rolledUpDays.count == 2)
        #expect(report.rollupRows == 4)
        #expect(try OptimizeReport.run(monthsAhead: 2, on: connection).partitionsCreated == 0)
    }
}
