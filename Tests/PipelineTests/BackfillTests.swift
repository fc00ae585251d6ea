import AuditCore
import Foundation
import Operations
import Pipeline
import Postgres
import TestSupport
import Testing
import SampleData

@Suite(.timeLimit(.minutes(5))) struct BackfillTests {
    @Test func storesEventsCreatesMonthPartitionsAndCountsExactly() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 6000, months: 6)
        let summary = try fixture.engine(shards: 4).ingest(try FileSource(path: file.path))
        #expect(summary.isComplete)
        #expect(summary.stored == 6000)
        #expect(summary.deadLetteredTotal == 0)

        // Six months (plus the one before the first, reached by timestamps with a positive offset),
        // created concurrently by four shards, each exactly once, for both parents.
        let partitions = try fixture.connection.execute("""
            SELECT p.relname, count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname IN ('audit_log', 'tenant_metrics') GROUP BY 1 ORDER BY 1
            """).rows
        #expect(partitions.count == 2)
        #expect(partitions[0][1] == partitions[1][1])
        #expect((6...7).contains(Int(partitions[0][1]!)!))
        #expect(summary.partitionsCreated == 2 * Int(partitions[0][1]!)!)
        #expect(try fixture.count("SELECT count(*) FROM pg_partitioned_table WHERE partdefid <> 0") == 0, "no DEFAULT partition")
        // Every row sits in the partition of its UTC month.
        #expect(try fixture.count("""
            SELECT count(*) FROM audit_log
            WHERE tableoid::regclass::text <> 'audit_log_' || to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY_MM')
            """) == 0)
        // tenant_metrics.audit_log_count is exact per tenant per day.
        #expect(try fixture.count("""
            SELECT count(*) FROM (
                SELECT tenant_id, ("timestamp" AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM audit_log GROUP BY 1, 2
            ) a FULL JOIN tenant_metrics m ON m.tenant_id = a.tenant_id AND m."date" = a.day
            WHERE a.n IS DISTINCT FROM m.audit_log_count
            """) == 0)
        // The run folded its counts when it ended.
        #expect(try fixture.count("SELECT count(*) FROM tenant_metrics_delta") == 0)
    }

    @Test func valuesArriveIntact() throws {
        let fixture = try PipelineFixture(tenants: 1)
        let tenant = SampleEvents.tenantIDs(count: 1)[0]
        let line = #"{"id":"11111111-2222-4333-8444-555555555555","tenant_id":"\#(tenant)","user_id":"AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE","action":"item.share","resource_type":"item","resource_id":"it-9","severity":"critical","timestamp":"2026-03-01T01:30:00.000001+02:00","ip_address":"::ffff:10.1.2.3","user_agent":"Grüße \"quoted\"","metadata":{"nested":{"list":[1,"two",null]},"é":true}}"#
        let file = try sampleFile(events: 0, extraLines: [line])
        #expect(try fixture.engine().ingest(try FileSource(path: file.path)).stored == 1)
        let row = try fixture.connection.execute("""
            SELECT id, user_id, action, resource_type, resource_id, severity, "timestamp"::text, host(ip_address),
                   user_agent, custom_metadata::text, tableoid::regclass::text FROM audit_log
            """).rows[0]
        #expect(row == ["11111111-2222-4333-8444-555555555555", "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "item.share", "item",
                        "it-9", "CRITICAL", "2026-02-28 23:30:00.000001+00", "::ffff:10.1.2.3", "Grüße \"quoted\"",
                        #"{"é": true, "nested": {"list": [1, "two", null]}}"#, "audit_log_2026_02"])
    }

    @Test func badLinesAreDeadLetteredWithTheirReasonAndRawBytes() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 3000, invalidRatio: 0.05, extraLines: ["", "not json", "[1,2]"])
        let summary = try fixture.engine().ingest(try FileSource(path: file.path))
        #expect(summary.isComplete)
        #expect(summary.deadLetteredTotal > 100)
        #expect(try fixture.accountedExactlyOnce(lines: file.lines, source: summary.source))
        let empty = try fixture.connection.execute(
            "SELECT reason, encode(raw_payload, 'escape') FROM audit_dead_letter WHERE \"offset\" = \(try byteOffset(ofLine: file.lines - 2, in: file.path))").rows
        #expect(empty == [["invalid JSON", "not json"]])
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter WHERE reason = 'not an object'") == 1)
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter WHERE reason = 'empty message'") == 1)
    }

    /// An event larger than a row batch's buffer (its raw line carries a 300 KiB field the
    /// decoder skips) arriving after small ones of the same shard is stored like any other.
    @Test func anEventLargerThanARowBatchIsStored() throws {
        let fixture = try PipelineFixture()
        let lines = SampleEvents(.init(count: 3, tenants: 1)).map { SampleEvents.ndjson($0) }
        let padded = lines[1].replacingOccurrences(of: #"{"id""#, with: #"{"padding":""# + String(repeating: "x", count: 300 << 10) + #"","id""#)
        let file = try sampleFile(events: 0, extraLines: [lines[0], padded, lines[2]])
        let summary = try fixture.engine(shards: 1).ingest(try FileSource(path: file.path))
        #expect(summary.isComplete && summary.stored == 3, "\(summary)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 3)
    }

    @Test func poisonRowsPostgreSQLRefusesAreIsolatedByBisection() throws {
        // The decoder cannot know that an event id repeats: PostgreSQL's primary key refuses the
        // second copy (23505). The batch is bisected down to that row; the rest is stored.
        let fixture = try PipelineFixture()
        var lines: [String] = []
        for event in SampleEvents(.init(count: 400, tenants: 6)) { lines.append(SampleEvents.ndjson(event)) }
        let duplicate = lines[123]
        lines.insert(duplicate, at: 300)
        let file = try sampleFile(events: 0, extraLines: lines)
        let summary = try fixture.engine(shards: 1, batchSize: 1000).ingest(try FileSource(path: file.path))
        #expect(summary.isComplete)
        #expect(summary.stored == 400)
        #expect(summary.deadLettered == ["rejected by database": 1])
        let dead = try fixture.connection.execute("SELECT \"offset\", sqlstate, reason FROM audit_dead_letter").rows
        #expect(dead == [["\(try byteOffset(ofLine: 300, in: file.path))", "23505", "rejected by database"]])
        #expect(try fixture.count("SELECT sum(audit_log_count) FROM tenant_metrics") == 400)
    }

    @Test func rerunOfACompleteFileChangesNothing() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 2000, invalidRatio: 0.02)
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: file.path))
        let snapshot = try fixture.connection.execute("""
            SELECT (SELECT count(*) FROM audit_log), (SELECT count(*) FROM audit_dead_letter),
                   (SELECT sum(audit_log_count) FROM tenant_metrics)
            """).rows
        let second = try engine.ingest(try FileSource(path: file.path))
        #expect(first.isComplete && second.isComplete)
        #expect(second.stored == 0 && second.deadLetteredTotal == 0)
        #expect(second.alreadyCommitted == Int64(file.lines))
        #expect(try fixture.connection.execute("""
            SELECT (SELECT count(*) FROM audit_log), (SELECT count(*) FROM audit_dead_letter),
                   (SELECT sum(audit_log_count) FROM tenant_metrics)
            """).rows == snapshot)
    }

    @Test func unknownTenantsAreDeadLetteredUnlessAccepted() throws {
        let fixture = try PipelineFixture(tenants: 2)
        let file = try sampleFile(events: 500, tenants: 4)  // tenants 3 and 4 are not registered
        let summary = try fixture.engine().ingest(try FileSource(path: file.path))
        let known = try fixture.count("SELECT count(*) FROM audit_log")
        #expect(summary.deadLettered["unknown tenant"] == 500 - known)
        #expect(known > 0 && known < 500)

        let accepting = try PipelineFixture(tenants: 2)
        let accepted = try accepting.engine(unknownTenants: .accept).ingest(try FileSource(path: file.path))
        #expect(accepted.stored == 500)
    }

    @Test func gzipFilesAreRead() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 1000)
        let result = try Shell.run("/bin/gzip", ["-k", "-f", file.path])
        #expect(result.exitCode == 0)
        let summary = try fixture.engine().ingest(try FileSource(path: file.path + ".gz"))
        #expect(summary.stored == 1000 && summary.isComplete)
    }
}

@Suite(.timeLimit(.minutes(2))) struct MetricsRollupServiceTests {
    @Test func rollupRaisesTheStorageQuotaAlert() throws {
        let fixture = try PipelineFixture(tenants: 2)
        let file = try sampleFile(events: 2000, tenants: 2, months: 1)
        _ = try fixture.engine().ingest(try FileSource(path: file.path))
        let box = PipelineStatusBox()
        let service = MetricsRollupService(database: fixture.database, interval: .seconds(60), stop: StopSignal(), alerts: box)
        try service.runOnce()
        #expect(box.alerts["tenant_storage_quota"] == false)
        try fixture.connection.execute("UPDATE tenant SET max_storage_gb = 0")
        try service.runOnce()
        #expect(box.alerts["tenant_storage_quota"] == true)
        #expect(try fixture.count("SELECT count(*) FROM tenant_metrics WHERE \"date\" = (now() AT TIME ZONE 'UTC')::date") == 2)
    }
}
