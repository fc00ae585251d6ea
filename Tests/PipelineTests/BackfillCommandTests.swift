import Foundation
import Pipeline
import TestSupport
import Testing

/// The `backfill` command as an operator sees it: exit status and messages.
@Suite(.timeLimit(.minutes(3))) struct BackfillCommandTests {
    let binary = Shell.executable(named: "audit-ingest")

    @Test func completeRunExitsZeroAndPrintsTheSummary() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 500, invalidRatio: 0.05)
        let result = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", fixture.url, file.path])
        #expect(result.exitCode == 0, "\(result.output)")
        for label in ["lines read          500", "stored", "dead-lettered", "partitions created", "events/s"] {
            #expect(result.output.contains(label), "missing \(label)")
        }
    }

    /// `--tenant-from fixed:UUID` binds native events to one tenant (a per-tenant topic or file):
    /// the others are dead-lettered `tenant mismatch`, each position in exactly one table.
    @Test func nativeEventsBoundToATenantDeadLetterAnyOther() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 300)
        let mine = try #require(try String(contentsOfFile: file.path, encoding: .utf8).split(separator: "\n").first.flatMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["tenant_id"] as? String
        })
        let lines = try String(contentsOfFile: file.path, encoding: .utf8).split(separator: "\n")
        let expected = lines.filter { $0.contains(mine) }.count
        let result = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", fixture.url, "--tenant-from", "fixed:\(mine)", file.path])
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == expected)
        #expect(try fixture.count("SELECT count(*) FROM audit_log WHERE tenant_id <> '\(mine)'") == 0)
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter WHERE reason = 'tenant mismatch'") == lines.count - expected)
        #expect(try fixture.accountedExactlyOnce(lines: lines.count, source: try FileSource(path: file.path).baseName))
        let field = try Shell.run(binary, ["backfill", "--database-url", fixture.url, "--tenant-from", "field:tenant", file.path])
        #expect(field.exitCode == 64 && field.output.contains("does not apply to native events"), "\(field.output)")
    }

    @Test func missingFileIsAClearError() throws {
        let fixture = try PipelineFixture()
        let result = try Shell.run(binary, ["backfill", "--database-url", fixture.url, "/nonexistent/events.ndjson"])
        #expect(result.exitCode != 0)
        #expect(result.output.contains("cannot read /nonexistent/events.ndjson"))
    }

    @Test func unmigratedDatabaseSaysToMigrate() throws {
        let url = try TestDatabase.create()
        let file = try sampleFile(events: 10)
        let result = try Shell.run(binary, ["backfill", "--database-url", url, file.path])
        #expect(result.exitCode != 0)
        #expect(result.output.contains("run audit-ingest migrate"))
    }

    @Test func unreachableDatabaseIsClearAndMasksThePassword() throws {
        let file = try sampleFile(events: 10)
        let result = try Shell.run(binary, ["backfill", "--database-url",
                                            "postgresql://ingest:s3cret@127.0.0.1:1/audit?connect_timeout=2", file.path])
        #expect(result.exitCode != 0)
        #expect(result.output.contains("ingest:***@127.0.0.1:1"))
        #expect(!result.output.contains("s3cret"))
    }

    @Test func invalidOptionsAreRefused() throws {
        let result = try Shell.run(binary, ["backfill", "--unknown-tenants", "maybe", "x.ndjson"])
        #expect(result.exitCode == 64)
        #expect(result.output.contains("--unknown-tenants must be dead-letter or accept"))
        let header = try Shell.run(binary, ["backfill", "--format", "cloudevents", "--tenant-from", "header:x-tenant", "x.ndjson"])
        #expect(header.exitCode == 64 && header.output.contains("--tenant-from header:NAME reads Kafka headers"), "\(header.output)")
    }
}
