import Foundation
import Postgres
import TestSupport
import Testing

/// Attested deletions (migration 0021): `partitions prune` records what it removed, the next
/// checkpoint signs it into the log, and `verify --archive-dir` reads each archive back against
/// the sealed subroots. A month holding batches not yet in the log is not pruned.
extension CheckpointTests {
    func prune(_ fixture: PipelineFixture, archive: String?) throws -> Shell.Result {
        try Shell.run(binary, ["partitions", "prune", "--older-than", "1", "--database-url", fixture.url]
                      + (archive.map { ["--archive", $0] } ?? []))
    }

    func archiveDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("archive-\(UUID())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func aPruneIsSignedIntoTheLogAndItsArchiveReadBackAgainstIt() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("prune")
        let archive = try archiveDirectory()
        try backfill(fixture, events: 600, seed: 1)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        let pruned = try prune(fixture, archive: archive)
        #expect(pruned.exitCode == 0, "\(pruned.output)")
        let operations = try fixture.count("SELECT count(*) FROM audit_operation")
        #expect(operations >= 1 && pruned.output.contains("\"operations\""), "\(pruned.output)")
        let signed = try checkpoint(fixture, pair.key)
        #expect(signed.exitCode == 0 && signed.output.contains("(\(operations) new)"), "the prunes join the log: \(signed.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_operation WHERE log_index IS NULL") == 0)

        let trusted = ["--public-key-file", pair.pub, "--checkpoint-dir", directory.path, "--archive-dir", archive]
        let holds = try verify(fixture, trusted)
        #expect(holds.exitCode == 0, "\(holds.output)")
        #expect(holds.output.contains("attested prunes; \(operations) archives read back"), "\(holds.output)")

        // One archived row's id edited, and the archive's checksum files made to match it.
        let file = try FileManager.default.contentsOfDirectory(atPath: archive).filter { $0.hasSuffix(".csv.gz") }.sorted()[0]
        let path = archive + "/" + file
        let edit = try Shell.run("/bin/sh", ["-c", """
            set -e; cd '\(archive)'; gunzip -c '\(file)' > plain.csv
            awk 'NR == 2 { sub(/^[^,]*/, "00000000-0000-4000-8000-000000000001") } { print }' plain.csv | gzip -c > '\(file)'
            rm plain.csv; sha256sum '\(file)' > '\(file).sha256'
            """])
        #expect(edit.exitCode == 0, "\(edit.output)")
        let edited = try verify(fixture, trusted)
        #expect(edited.exitCode == 1, "\(edited.output)")
        #expect(edited.output.contains("archive mismatch: \(path): its SHA-256 is"), "\(edited.output)")

        // The attested checksum rewritten too: the record no longer gives its digest, the rows
        // no longer hash to what their batch sealed.
        let sha256 = try Shell.run("/bin/sh", ["-c", "sha256sum '\(path)' | cut -c1-64"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try fixture.connection.query("UPDATE audit_operation SET archive_sha256 = $1 WHERE archive_file = $2", [sha256, file])
        let rewritten = try verify(fixture, trusted)
        #expect(rewritten.exitCode == 1, "\(rewritten.output)")
        #expect(rewritten.output.contains("operation record changed: audit_operation"), "\(rewritten.output)")
        #expect(rewritten.output.contains("archive mismatch: \(path)"), "\(rewritten.output)")
        #expect(rewritten.output.contains("do not hash to the sealed subroot"), "\(rewritten.output)")
        #expect(!rewritten.output.contains("its SHA-256 is"), "\(rewritten.output)")
    }

    @Test func aMonthHoldingBatchesNotInTheLogIsNotPruned() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("pending")
        try backfill(fixture, events: 300, seed: 1)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        try backfill(fixture, events: 300, seed: 2)
        let rows = try fixture.count("SELECT count(*) FROM audit_log")
        let refused = try prune(fixture, archive: nil)
        #expect(refused.exitCode != 0, "\(refused.output)")
        #expect(refused.output.contains("not yet in the signed log") && refused.output.contains("audit-ingest checkpoint"), "\(refused.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == rows, "nothing was pruned")
        #expect(try fixture.count("SELECT count(*) FROM audit_operation") == 0)

        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        let pruned = try prune(fixture, archive: nil)
        #expect(pruned.exitCode == 0, "\(pruned.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") < rows)
        let result = try verify(fixture, ["--public-key-file", pair.pub])
        #expect(result.exitCode == 0 && result.output.contains("archives not read"), "\(result.output)")
    }

    /// --since reads only what a checkpoint held outside does not cover, and checks the log against it.
    @Test func sinceACheckpointOnlyTheBatchesAfterItAreRead() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("since")
        try backfill(fixture, events: 300, seed: 1)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        let size = try fixture.count("SELECT count(*) FROM audit_batch")
        let held = directory.appendingPathComponent("\(size).checkpoint").path
        let first = try fixture.count("SELECT max(id) FROM audit_batch")
        try backfill(fixture, events: 300, seed: 2)
        let later = try fixture.count("SELECT count(*) FROM audit_log WHERE batch_id > \(first)")
        _ = try fixture.connection.execute("""
            UPDATE audit_log SET action = 'before' WHERE id = (SELECT id FROM audit_log WHERE batch_id <= \(first) LIMIT 1)
            """)
        let since = try verify(fixture, ["--public-key-file", pair.pub, "--since", held])
        #expect(since.exitCode == 0, "the change is before the checkpoint: \(since.output)")
        #expect(since.output.contains("(the batches after the first \(size) of the log)") && since.output.contains(" \(later) rows and "),
                "\(since.output)")
        _ = try fixture.connection.execute("""
            UPDATE audit_log SET action = 'after' WHERE id = (SELECT id FROM audit_log WHERE batch_id > \(first) LIMIT 1)
            """)
        let caught = try verify(fixture, ["--public-key-file", pair.pub, "--since", held])
        #expect(caught.exitCode == 1 && caught.output.contains("row changed: audit_log_"), "\(caught.output)")
        let whole = try verify(fixture, ["--public-key-file", pair.pub])
        #expect(whole.exitCode == 1 && whole.output.components(separatedBy: "row changed: ").count == 3, "both changes: \(whole.output)")
    }
}
