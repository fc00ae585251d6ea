import Foundation
import Pipeline
import Postgres
import SampleData
import TestSupport
import Testing

/// PostgreSQL faults a run meets in production: an operator's lock, a statement that keeps timing
/// out, a changed password, a stop while nothing can commit. Each is waited out or stops the run
/// with an error that says what to do; none dead-letters a valid event, and the same command
/// then completes, every line once.
@Suite(.timeLimit(.minutes(5))) struct DatabaseFaultTests {
    let binary = Shell.executable(named: "audit-ingest")

    /// An operator's `CREATE INDEX` (a SHARE lock) on the month partitions, held well past the
    /// statement timeout: the flushes give up their lock wait at `lock_timeout` and retry on new
    /// sessions until it is released. Nothing is dead-lettered.
    @Test func aLockHeldPastTheStatementTimeoutIsWaitedOutNotDeadLettered() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 2000)
        try fixture.connection.execute("""
            SELECT ensure_month_partitions((date_trunc('month', now()) - make_interval(months => m))::date) FROM generate_series(0, 6) m
            """)
        let holder = try PostgresConnection(fixture.url)
        try holder.execute("BEGIN")
        try holder.execute("""
            DO $$ DECLARE child regclass; BEGIN
              FOR child IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_log'::regclass LOOP
                EXECUTE format('LOCK TABLE %s IN SHARE MODE', child);
              END LOOP;
            END $$
            """)
        var database = fixture.database
        database.statementTimeout = .seconds(1)
        var configuration = IngestConfiguration(shards: 2, batchSize: 500, maxBatchAge: .milliseconds(50))
        configuration.lockTimeout = .milliseconds(300)
        // Two statement timeouts in a row would stop the run: a lock wait must not count as one.
        configuration.timeoutsBeforeStopping = 2
        let engine = IngestEngine(database: database, configuration: configuration)
        let outcome = Outcome()
        let runner = Thread {
            do { outcome.set(.success(try engine.ingest(try FileSource(path: file.path)))) } catch { outcome.set(.failure(error)) }
        }
        runner.start()
        // Held until the flushes have given up their wait and come back on new sessions eight
        // times (each wait 300 ms, plus the backoff between): longer than two statement timeouts.
        var waiters: Set<String> = []
        let waitedLong = waitUntil(timeout: .seconds(90), interval: .milliseconds(20)) {
            let rows = try fixture.connection.execute("""
                SELECT pid::text FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
                """).rows
            waiters.formUnion(rows.compactMap { $0[0] })
            return waiters.count >= 8
        }
        #expect(waitedLong, "the flushes should have come back on new sessions: \(waiters.count)")
        try holder.execute("COMMIT")
        let summary = try outcome.wait(timeout: 120).get()
        #expect(summary.isComplete && summary.stored == 2000, "\(summary)")
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter") == 0)
    }

    /// A statement that always exceeds the statement timeout (a slow trigger): retried, then the
    /// run stops with an error naming the statement and the setting. Nothing is dead-lettered;
    /// once the cause is gone the same run stores every line.
    @Test func aStatementThatAlwaysTimesOutStopsTheRunAndDeadLettersNothing() throws {
        let fixture = try PipelineFixture()
        try fixture.connection.execute("""
            CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.action = 'slow.event' THEN PERFORM pg_sleep(2); END IF; RETURN NEW; END $$;
            CREATE TRIGGER slow_row BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION slow_row();
            """)
        var lines: [String] = []
        for event in SampleEvents(.init(count: 40, tenants: 6)) { lines.append(SampleEvents.ndjson(event)) }
        lines[17] = lines[17].replacingOccurrences(of: #""action":"[^"]*""#, with: #""action":"slow.event""#, options: .regularExpression)
        let file = try sampleFile(events: 0, extraLines: lines)
        var database = fixture.database
        database.statementTimeout = .milliseconds(700)
        var configuration = IngestConfiguration(shards: 1, batchSize: 100, maxBatchAge: .milliseconds(50))
        configuration.timeoutsBeforeStopping = 3
        let error = try #require(throws: IngestError.self) {
            try IngestEngine(database: database, configuration: configuration).ingest(try FileSource(path: file.path))
        }
        #expect(error.code == .databaseTimeout)
        #expect(error.message.contains("COPY into audit_log") && error.message.contains("statement_timeout is 700ms"), "\(error)")
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter") == 0)

        try fixture.connection.execute("DROP TRIGGER slow_row ON audit_log")
        let summary = try IngestEngine(database: database, configuration: configuration).ingest(try FileSource(path: file.path))
        #expect(summary.isComplete && summary.stored == 40, "\(summary)")
        #expect(try fixture.accountedExactlyOnce(lines: 40, source: try FileSource(path: file.path).baseName))
    }

    /// The ingest login's password is changed under a running backfill: the refused login stops
    /// the run with exit 1 and the server's reason (never a password), instead of retrying for
    /// ever. With the new password the same command completes, every line once.
    @Test func aChangedPasswordStopsTheRunInsteadOfRetryingForEver() throws {
        let cluster = try PrivateCluster()
        try TestDatabase.migrate(cluster.url)
        let fixture = try PipelineFixture(url: cluster.url)
        try fixture.connection.execute("CREATE ROLE ingester LOGIN SUPERUSER PASSWORD 'first-secret'")
        try cluster.requirePasswords()
        let file = try sampleFile(events: 3000)
        // Every flush takes this lock first: none commits until the password has changed.
        let holder = try PostgresConnection(cluster.url)
        try holder.execute("BEGIN")
        try holder.execute("LOCK TABLE feed_writer IN ACCESS EXCLUSIVE MODE")
        let login = { (password: String) in ["DATABASE_URL": "postgresql://ingester:\(password)@127.0.0.1:\(cluster.port)/postgres"] }
        let arguments = ["backfill", "--no-progress", "--shards", "2", "--batch-size", "500", file.path]
        let child = try Shell.spawn(binary, arguments, environment: login("first-secret"))
        #expect(waitUntil {
            try fixture.count("SELECT count(*) FROM pg_stat_activity WHERE usename = 'ingester' AND wait_event_type = 'Lock'") >= 1
        })
        try fixture.connection.execute("ALTER ROLE ingester PASSWORD 'second-secret'")
        try fixture.connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'ingester'")
        try holder.execute("COMMIT")

        let result = child.wait(timeout: 60)
        #expect(result.exitCode == 1, "\(result.output.suffix(3000))")
        #expect(result.output.contains("password authentication failed"), "\(result.output.suffix(3000))")
        #expect(!result.output.contains("first-secret") && !result.output.contains("second-secret"))
        let final = try Shell.run(binary, arguments, environment: login("second-secret"))
        #expect(final.exitCode == 0, "\(final.output.suffix(3000))")
        #expect(try fixture.accountedExactlyOnce(lines: file.lines, source: try FileSource(path: file.path).baseName))
    }

    /// SIGTERM while no flush can commit (a lock on feed_writer, which every flush takes first):
    /// the run ends within its 10 s whether the source was waiting for room in a shard (a large
    /// file, little shard memory) or had read everything and was draining (a small one). It
    /// exits 1 saying nothing is lost, and records nothing of the file; the same command then
    /// completes, every line once.
    @Test(arguments: [200, 60_000])
    func sigtermEndsABackfillThatCannotCommit(events: Int) throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: events)
        let holder = try PostgresConnection(fixture.url)
        try holder.execute("BEGIN")
        try holder.execute("LOCK TABLE feed_writer IN ACCESS EXCLUSIVE MODE")
        let arguments = ["backfill", "--no-progress", "--database-url", fixture.url, "--shards", "2", "--batch-size", "500",
                         "--shard-memory", "1", file.path]
        let child = try Shell.spawn(binary, arguments)
        #expect(waitUntil {
            try fixture.count("""
                SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
                """) >= 1
        })
        child.signal(SIGTERM)
        let result = child.wait(timeout: 45)
        #expect(result.exitCode == 1, "\(result.output.suffix(3000))")
        #expect(result.output.contains("nothing is lost"), "\(result.output.suffix(3000))")
        // Nothing of the file was committed, so nothing learnt of it is recorded either.
        #expect(try fixture.count("SELECT count(*) FROM source_body") == 0)
        try holder.execute("COMMIT")
        let final = try Shell.run(binary, arguments)
        #expect(final.exitCode == 0, "\(final.output.suffix(3000))")
        #expect(try fixture.accountedExactlyOnce(lines: file.lines, source: try FileSource(path: file.path).baseName))
        #expect(try fixture.count("SELECT count(*) FROM source_body") == 1)
    }

    /// Tables under month partitions' names that are not partitions (a restore's leftover
    /// tenant_metrics_YYYY_MM, a hand-made audit_log_YYYY_MM): each is renamed `_stray` and kept,
    /// fresh partitions take their names, and counts fold for every month. A stray table is never
    /// taken for a detached month that prune archives and drops.
    @Test func strayMonthTablesAreSetAsideAndCountsStillFold() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 3000, months: 3)
        let text = try String(contentsOfFile: file.path, encoding: .utf8)
        let months = Set(text.split(separator: "\n").compactMap { line -> String? in
            guard let range = line.range(of: #""timestamp":""#) else { return nil }
            return String(line[range.upperBound...].prefix(7)).replacingOccurrences(of: "-", with: "_")
        }).sorted()
        try #require(months.count == 3)
        try fixture.connection.execute("CREATE TABLE tenant_metrics_\(months[0]) (restored_from text)")
        try fixture.connection.execute("CREATE TABLE audit_log_\(months[2]) (note text)")
        try fixture.connection.execute("INSERT INTO audit_log_\(months[2]) VALUES ('an operator table')")

        let summary = try fixture.engine(shards: 2).ingest(try FileSource(path: file.path))
        #expect(summary.isComplete && summary.stored == 3000, "\(summary)")
        #expect(try fixture.count("SELECT sum(audit_log_count) FROM tenant_metrics") == 3000, "every month folded")
        #expect(try fixture.count("SELECT count(*) FROM tenant_metrics_delta") == 0)
        #expect(try fixture.count("SELECT count(*) FROM audit_log_\(months[2])_stray WHERE note = 'an operator table'") == 1)
        #expect(try fixture.count("SELECT count(*) FROM pg_class WHERE relname = 'tenant_metrics_\(months[0])_stray'") == 1)
        #expect(try fixture.count("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_detached%'") == 0)
        for month in months {
            #expect(try fixture.count("""
                SELECT count(*) FROM pg_inherits
                WHERE (inhrelid, inhparent) IN (('audit_log_\(month)'::regclass, 'audit_log'::regclass),
                                                ('tenant_metrics_\(month)'::regclass, 'tenant_metrics'::regclass))
                """) == 2, "\(month)")
        }
    }
}
