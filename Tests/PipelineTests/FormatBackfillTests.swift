import Foundation
import Pipeline
import Postgres
import TestSupport
import Testing

/// `backfill --format`: foreign records through the real engine, exactly once, one dead letter
/// per position (per record of a delivery file).
@Suite(.timeLimit(.minutes(3))) struct FormatBackfillTests {
    let binary = Shell.executable(named: "audit-ingest")
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../samples/formats").standardized.path

    private func tenantOf(_ fixture: PipelineFixture) throws -> String {
        try #require(try fixture.connection.execute("SELECT id FROM tenant ORDER BY id LIMIT 1").scalar ?? nil)
    }

    @Test func aCloudTrailDeliveryFileIsStoredOnceAndRerunsChangeNothing() throws {
        let fixture = try PipelineFixture()
        let tenant = try tenantOf(fixture)
        let arguments = ["backfill", "--no-progress", "--database-url", fixture.url, "--format", "cloudtrail",
                         "--tenant-from", "fixed:\(tenant)", Self.samples + "/cloudtrail-delivery.json"]
        let first = try Shell.run(binary, arguments)
        #expect(first.exitCode == 0, "\(first.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log WHERE tenant_id = '\(tenant)'") == 3)
        #expect(try fixture.count("SELECT count(*) FROM audit_log WHERE action = 'iam.DeleteRole' AND severity = 'WARNING'") == 1)
        #expect(try fixture.count("SELECT count(*) FROM audit_log WHERE custom_metadata->>'source_format' = 'cloudtrail'") == 3)
        let again = try Shell.run(binary, arguments)
        #expect(again.exitCode == 0, "\(again.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 3)
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter") == 0)
    }

    /// The records of a delivery file stand alone: the good one is stored, and each broken one
    /// is a dead letter of its own, numbered, at the file's position. A re-run changes nothing.
    @Test func eachBrokenRecordOfADeliveryFileIsADeadLetterOfItsOwn() throws {
        let fixture = try PipelineFixture()
        let tenant = try tenantOf(fixture)
        let good = #"{"eventID":"1d2e3f40-5162-4738-8a9b-0c1d2e3f4a5b","eventTime":"2026-10-03T08:15:30Z","eventSource":"s3.amazonaws.com","eventName":"PutObject"}"#
        let broken = #"{"eventID":"2d2e3f40-5162-4738-8a9b-0c1d2e3f4a5b","eventSource":"s3.amazonaws.com","eventName":"PutObject"}"#
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ct-\(UUID()).json").path
        try Data(#"{"Records":[\#(good),\#(broken),\#(broken)]}"#.utf8).write(to: URL(fileURLWithPath: path))
        let arguments = ["backfill", "--no-progress", "--database-url", fixture.url, "--format", "cloudtrail", "--tenant-from", "fixed:\(tenant)", path]
        let result = try Shell.run(binary, arguments)
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 1)
        let dead = try fixture.connection.execute(#"SELECT record, reason, detail FROM audit_dead_letter ORDER BY record"#).rows
        #expect(dead.map { $0[0] } == ["2", "3"] && dead.allSatisfy { $0[1] == "missing field: eventTime" }, "\(dead)")
        #expect(dead.first?[2]?.hasPrefix("record 2: ") == true && dead.first?[2]?.contains("(of 3 records)") == true, "\(dead)")
        #expect(try Shell.run(binary, arguments).exitCode == 0)
        #expect(try fixture.count("SELECT count(*) FROM audit_log") + fixture.count("SELECT count(*) FROM audit_dead_letter") == 3)
    }

    /// A delivery file of 3,000 records on one line (about 4 MB, as S3 delivers it), one record
    /// of which carries more metadata than an event may (a CloudFormation template): the file
    /// is read whole, 2,999 records are stored, the large one is its own dead letter.
    @Test func aLargeDeliveryFileIsStoredRecordByRecord() throws {
        let fixture = try PipelineFixture()
        let tenant = try tenantOf(fixture)
        let padding = String(repeating: "p", count: 1200)
        let template = String(repeating: "t", count: 70_000)
        let records = (0..<3000).map { index in
            let parameters = index == 1234 ? template : padding
            return #"{"eventID":"6d2e3f40-5162-4738-8a9b-\#(String(format: "%012d", index))","eventTime":"2026-10-03T08:\#(String(format: "%02d:%02d", index / 60 % 60, index % 60))Z","eventSource":"cloudformation.amazonaws.com","eventName":"CreateStack","requestParameters":{"templateBody":"\#(parameters)"}}"#
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ct-\(UUID()).json").path
        let text = #"{"Records":[\#(records.joined(separator: ","))]}"#
        #expect(text.utf8.count > 3_900_000)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let arguments = ["backfill", "--no-progress", "--database-url", fixture.url, "--format", "cloudtrail", "--tenant-from", "fixed:\(tenant)", path]
        let result = try Shell.run(binary, arguments)
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 2999)
        let dead = try fixture.connection.execute("SELECT record, reason FROM audit_dead_letter").rows
        #expect(dead == [["1235", "event too large: metadata"]], "\(dead)")
        let again = try Shell.run(binary, arguments)
        #expect(again.exitCode == 0 && again.output.contains("already committed   1"), "\(again.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 2999 && fixture.count("SELECT count(*) FROM audit_dead_letter") == 1)
    }

    /// Records PostgreSQL refuses (here two more with the first one's id and time) are each
    /// dead-lettered with the SQLSTATE; the message's other records are stored and counted.
    @Test func aRecordPostgreSQLRefusesDoesNotUncountItsSiblings() throws {
        let fixture = try PipelineFixture()
        let tenant = try tenantOf(fixture)
        let record = #"{"eventID":"3d2e3f40-5162-4738-8a9b-0c1d2e3f4a5b","eventTime":"2026-10-03T08:15:30Z","eventSource":"s3.amazonaws.com","eventName":"PutObject"}"#
        let other = #"{"eventID":"4d2e3f40-5162-4738-8a9b-0c1d2e3f4a5b","eventTime":"2026-10-03T09:15:30Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ct-\(UUID()).json").path
        try Data(#"{"Records":[\#(record),\#(other),\#(record),\#(record)]}"#.utf8).write(to: URL(fileURLWithPath: path))
        let result = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", fixture.url, "--format", "cloudtrail",
                                            "--tenant-from", "fixed:\(tenant)", path])
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.output.contains("stored              2"), "\(result.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 2)
        #expect(try fixture.connection.execute("SELECT record FROM audit_dead_letter WHERE sqlstate = '23505' ORDER BY 1").rows == [["3"], ["4"]])
        #expect(try fixture.count("SELECT coalesce(sum(audit_log_count), 0) FROM tenant_metrics") == 2)
    }

    /// The records of one message are committed in one flush, whatever the batch size: a flush
    /// stores the message's position, and had it taken only some of its records, a crash before
    /// the next flush would lose the others. A trigger deferred to each COMMIT records what
    /// audit_log holds beside the position committed.
    @Test func theRecordsOfOneMessageAreCommittedTogether() throws {
        let fixture = try PipelineFixture()
        let tenant = try tenantOf(fixture)
        try fixture.connection.execute("""
            CREATE TABLE commit_log (next_offset bigint, stored bigint);
            CREATE FUNCTION log_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO commit_log SELECT NEW.next_offset, count(*) FROM audit_log; RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER log_commit AFTER INSERT OR UPDATE ON ingest_offsets
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION log_commit();
            """)
        // A delivery of 3 records, then one of 100 records of about 2 KiB each: more than one row
        // batch's rows and buffer, added to a batch that holds the first delivery's records.
        let agent = String(repeating: "a", count: 1000)
        func delivery(_ records: Range<Int>) -> String {
            let events = records.map { index in
                #"{"eventID":"5d2e3f40-5162-4738-8a9b-\#(String(format: "%012d", index))","eventTime":"2026-10-03T08:\#(String(format: "%02d:%02d", index / 60, index % 60))Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","userAgent":"\#(agent)"}"#
            }
            return #"{"Records":[\#(events.joined(separator: ","))]}"# + "\n"
        }
        let (first, second) = (delivery(0..<3), delivery(3..<103))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ct-\(UUID()).json").path
        try Data((first + second).utf8).write(to: URL(fileURLWithPath: path))
        let result = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", fixture.url, "--format", "cloudtrail",
                                            "--tenant-from", "fixed:\(tenant)", "--shards", "1", "--batch-size", "10", path])
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 103)
        // Each committed position with exactly the records of the deliveries before it.
        let recordsBefore = ["\(first.utf8.count)": "3", "\(first.utf8.count + second.utf8.count)": "103"]
        let commits = try fixture.connection.execute("SELECT next_offset, stored FROM commit_log WHERE next_offset > 0").rows
        #expect(!commits.isEmpty)
        #expect(commits.allSatisfy { recordsBefore[$0[0] ?? ""] == $0[1] }, "a commit stored a position with only some records: \(commits)")
    }

    @Test func aFormatWithoutATenantRuleIsAUsageError() throws {
        let fixture = try PipelineFixture()
        let result = try Shell.run(binary, ["backfill", "--database-url", fixture.url, "--format", "k8s-audit",
                                            Self.samples + "/k8s-audit.ndjson"])
        #expect(result.exitCode == 64 && result.output.contains("--format k8s-audit needs --tenant-from"), "\(result.output)")
        let unknown = try Shell.run(binary, ["backfill", "--database-url", fixture.url, "--format", "syslog", "x"])
        #expect(unknown.exitCode == 64 && unknown.output.contains("'syslog' is invalid for '--format")
                && unknown.output.contains("'native', 'cloudtrail'"), "\(unknown.output)")
    }
}
