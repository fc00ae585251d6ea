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

    /// A missing file, a directory and a FIFO among good files (`backfill /var/log/app/*`): every
    /// argument is checked before any is read, so nothing is half done. Exit 64 names each.
    @Test func unreadableFilesAmongGoodOnesStopTheRunBeforeAnyIsRead() throws {
        let fixture = try PipelineFixture()
        let first = try sampleFile(events: 50), last = try sampleFile(events: 50, seed: 7)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dir-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("fifo-\(UUID())").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let result = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", fixture.url,
                                            first.path, "/nonexistent/events.ndjson", directory, fifo, last.path])
        #expect(result.exitCode == 64, "\(result.output)")
        #expect(result.output.contains("3 of the 5 files cannot be read, so none was read"), "\(result.output)")
        #expect(result.output.contains("cannot read /nonexistent/events.ndjson"))
        #expect(result.output.contains("\(directory) is not a regular file") && result.output.contains("\(fifo) is not a regular file"))
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 0)
        #expect(try fixture.count("SELECT count(*) FROM ingest_offsets") == 0)
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
        #expect(result.output.contains("'maybe' is invalid for '--unknown-tenants") && result.output.contains("'dead-letter' and 'accept'"),
                "\(result.output)")
        let header = try Shell.run(binary, ["backfill", "--format", "cloudevents", "--tenant-from", "header:x-tenant", "x.ndjson"])
        #expect(header.exitCode == 64 && header.output.contains("--tenant-from header:NAME reads Kafka headers"), "\(header.output)")
    }
}
