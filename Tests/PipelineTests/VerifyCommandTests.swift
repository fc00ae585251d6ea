import Foundation
import Postgres
import TestSupport
import Testing

/// `audit-ingest verify` on what `backfill` sealed: an untouched database holds, and each kind of
/// tampering fails it with its own category (migration 0018, docs/tamper-evidence.md).
@Suite(.serialized, .timeLimit(.minutes(5))) struct VerifyCommandTests {
    let binary = Shell.executable(named: "audit-ingest")

    /// A database with 600 events (5% of them dead letters) in batches of at most 50, over 2 shards.
    func sealedDatabase() throws -> PipelineFixture {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 600, invalidRatio: 0.05)
        let backfill = try Shell.run(binary, ["backfill", "--no-progress", "--batch-size", "50", "--shards", "2",
                                              "--database-url", fixture.url, file.path])
        #expect(backfill.exitCode == 0, "\(backfill.output)")
        return fixture
    }

    func verify(_ fixture: PipelineFixture) throws -> Shell.Result {
        try Shell.run(binary, ["verify", "--database-url", fixture.url])
    }

    func count(_ sql: String, _ fixture: PipelineFixture) throws -> Int {
        Int(try fixture.connection.execute(sql).scalar ?? "") ?? -1
    }

    @Test func anUntouchedDatabaseHolds() throws {
        let fixture = try sealedDatabase()
        let result = try verify(fixture)
        #expect(result.exitCode == 0, "\(result.output)")
        let stored = try count("SELECT count(*) FROM audit_log", fixture)
        let deadLetters = try count("SELECT count(*) FROM audit_dead_letter", fixture)
        #expect(stored > 500 && deadLetters > 0)
        #expect(result.output.contains("verified: "), "\(result.output)")
        #expect(result.output.contains("\(stored) rows and \(deadLetters) dead letters checked"), "\(result.output)")
        #expect(try count("SELECT count(*) FROM audit_log WHERE batch_id = 0", fixture) == 0)
        #expect(try count("SELECT count(*) FROM audit_batch", fixture) >= 6, "batches of at most 50 rows")
    }

    /// Every column type and what jsonb rewrites (key order, duplicate keys, whitespace, escapes,
    /// exponents, big numbers, unicode), NULLs, IPv6 and timestamp offsets: the leaf ingest hashed
    /// is the leaf verify computes from what PostgreSQL stored.
    @Test func rowsOfEveryShapeHashTheSameStoredAsSent() throws {
        let fixture = try PipelineFixture(tenants: 0)
        let tenant = "6f1d3c2b-1a2b-4c3d-8e4f-0123456789ab"
        let day = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3 * 86_400)).prefix(10)
        let metadata = [
            #"{"b": 1, "a": 2, "a": 3, "ccc": {"z": [1, 2.50, -0, 1e3, 1.5E-3, -0.0, 12345678901234567890123456789]}}"#,
            #"{"text":"quote \" backslash \\ slash \/ tab \t nl \n bell \u0007 é \u00e9 😀 \ud83d\ude00","":null,"x":true,"y":false}"#,
            #"{"deep":{"b":{"d":1,"c":2},"a":[{"y":1,"x":2},[],{}]},"num":0.000123e2,"neg":-12.5e1}"#,
            "{ }",
        ]
        var lines: [String] = []
        for (index, object) in metadata.enumerated() {
            lines.append(#"{"id":"\#(UUID().uuidString.lowercased())","tenant_id":"\#(tenant)","action":"a.\#(index)","severity":"info","timestamp":"\#(day)T10:0\#(index):00.123456+05:30","ip_address":"2001:db8::\#(index)","metadata":\#(object)}"#)
        }
        lines.append(#"{"id":"\#(UUID().uuidString)","tenant_id":"\#(tenant)","user_id":null,"action":"no metadata","resource_type":"r","resource_id":"ü","severity":"ERROR","timestamp":"\#(day)T23:59:59Z","ip_address":"10.0.0.1","user_agent":"curl/8"}"#)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("shapes-\(UUID()).ndjson").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let backfill = try Shell.run(binary, ["backfill", "--no-progress", "--unknown-tenants", "accept", "--database-url", fixture.url, path])
        #expect(backfill.exitCode == 0, "\(backfill.output)")
        #expect(try count("SELECT count(*) FROM audit_log", fixture) == lines.count, "\(backfill.output)")
        let result = try verify(fixture)
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.output.contains("\(lines.count) rows"), "\(result.output)")
    }

    enum Tampering: String, CaseIterable, CustomTestStringConvertible {
        case rowUpdated, rowDeleted, rowInserted, deadLetterUpdated, batchDeleted, newestBatchDeleted, partitionDropped
        var testDescription: String { rawValue }
    }

    @Test(arguments: Tampering.allCases) func tamperingIsCaughtWithItsCategory(_ tampering: Tampering) throws {
        let fixture = try sealedDatabase()
        let connection = fixture.connection
        // A batch in the middle of the first shard's chain, and its last one.
        let middle = try count("""
            SELECT batch_id FROM audit_batch_range WHERE shard = 0 ORDER BY first_offset OFFSET 3 LIMIT 1
            """, fixture)
        let newest = try count("SELECT batch_id FROM audit_batch_range WHERE shard = 0 ORDER BY first_offset DESC LIMIT 1", fixture)
        let expected: String
        switch tampering {
        case .rowUpdated:
            _ = try connection.execute("UPDATE audit_log SET action = 'nothing.happened' WHERE id = (SELECT id FROM audit_log LIMIT 1)")
            expected = "row changed: audit_log_"
        case .rowDeleted:
            _ = try connection.execute("DELETE FROM audit_log WHERE id = (SELECT id FROM audit_log ORDER BY id LIMIT 1)")
            expected = "row missing: audit_log_"
        case .rowInserted:
            _ = try connection.execute("""
                INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp", batch_id)
                SELECT gen_random_uuid(), tenant_id, 'forged', severity, "timestamp", batch_id FROM audit_log LIMIT 1
                """)
            expected = "row inserted: audit_log_"
        case .deadLetterUpdated:
            _ = try connection.execute("UPDATE audit_dead_letter SET reason = 'nothing' WHERE id = (SELECT min(id) FROM audit_dead_letter)")
            expected = "dead letter changed: audit_dead_letter"
        case .batchDeleted:
            try remove(batch: middle, connection)
            expected = "chain gap: audit_batch_range, batch"
        case .newestBatchDeleted:
            try remove(batch: newest, connection)
            expected = "tail cut: ingest_offsets"
        case .partitionDropped:
            let table = try connection.execute("""
                SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'audit_log'::regclass AND EXISTS (SELECT FROM audit_log WHERE tableoid = c.oid) ORDER BY 1 LIMIT 1
                """).scalar!
            _ = try connection.execute("DROP TABLE \(table)")
            expected = "partition missing: \(table)"
        }
        let result = try verify(fixture)
        #expect(result.exitCode == 1, "\(result.output)")
        #expect(result.output.contains("FAILED"), "\(result.output)")
        #expect(result.output.contains(expected), "\(result.output)")
    }

    /// Everything of one batch: its rows, dead letters, groups, ranges and record.
    func remove(batch: Int, _ connection: PostgresConnection) throws {
        _ = try connection.execute("""
            DELETE FROM audit_log WHERE batch_id = \(batch);
            DELETE FROM audit_dead_letter WHERE batch_id = \(batch);
            DELETE FROM audit_batch_group WHERE batch_id = \(batch);
            DELETE FROM audit_batch_range WHERE batch_id = \(batch);
            DELETE FROM audit_batch WHERE id = \(batch)
            """)
    }

    @Test func aPrunedMonthIsAccountedAsRemoved() throws {
        let fixture = try sealedDatabase()
        let prune = try Shell.run(binary, ["partitions", "prune", "--older-than", "1", "--database-url", fixture.url])
        #expect(prune.exitCode == 0, "\(prune.output)")
        let result = try verify(fixture)
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.output.contains("removed by partitions prune or tenant retention: "), "\(result.output)")
    }

    /// --tenant reads one tenant's rows and --sample some groups: each still catches what it reads.
    @Test func aTenantOrASampleIsCheckedAlone() throws {
        let fixture = try sealedDatabase()
        let tenants = try fixture.connection.execute("SELECT tenant_id FROM audit_log GROUP BY 1 ORDER BY count(*) DESC LIMIT 2").rows.map { $0[0]! }
        let (changed, untouched) = (tenants[0], tenants[1])
        _ = try fixture.connection.query("""
            UPDATE audit_log SET action = 'nothing.happened' WHERE id = (SELECT id FROM audit_log WHERE tenant_id = $1 LIMIT 1)
            """, [changed])
        let own = try Shell.run(binary, ["verify", "--tenant", changed, "--database-url", fixture.url])
        #expect(own.exitCode == 1 && own.output.contains("row changed: audit_log_") && own.output.contains("tenant \(changed)"), "\(own.output)")
        let other = try Shell.run(binary, ["verify", "--tenant", untouched, "--database-url", fixture.url])
        let rows = try count("SELECT count(*) FROM audit_log WHERE tenant_id = '\(untouched)'", fixture)
        #expect(other.exitCode == 0, "\(other.output)")
        #expect(other.output.contains("verified (tenant \(untouched) only): ") && other.output.contains(" \(rows) rows and 0 dead letters"),
                "\(other.output)")
        let groups = try count("SELECT count(*) FROM audit_batch_group", fixture)
        let whole = try Shell.run(binary, ["verify", "--sample", String(groups), "--database-url", fixture.url])
        #expect(whole.exitCode == 1 && whole.output.contains("row changed: audit_log_"), "a sample of every group: \(whole.output)")
        let none = try Shell.run(binary, ["verify", "--sample", "1", "--tenant", changed, "--database-url", fixture.url])
        #expect(none.exitCode != 0 && none.output.contains("at most one of"), "\(none.output)")
    }
}
