import Evidence
import Foundation
import Postgres
import TestSupport
import Testing

/// `audit-ingest keys generate`, `checkpoint` and `verify` against signed checkpoints (migration
/// 0019): an untouched log holds against its key and its files; a log cut after a checkpoint
/// held outside, and a checkpoint re-signed with another key, fail with their categories.
@Suite(.serialized, .timeLimit(.minutes(5))) struct CheckpointTests {
    let binary = Shell.executable(named: "audit-ingest")
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoints-\(UUID())")

    func backfill(_ fixture: PipelineFixture, events: Int, seed: UInt64) throws {
        let file = try sampleFile(events: events, invalidRatio: 0.05, seed: seed, tenantSeed: 42)
        let result = try Shell.run(binary, ["backfill", "--no-progress", "--batch-size", "50", "--shards", "2",
                                            "--database-url", fixture.url, file.path])
        #expect(result.exitCode == 0, "\(result.output)")
    }

    func keyPair(_ name: String) throws -> (key: String, pub: String) {
        let prefix = directory.deletingLastPathComponent().appendingPathComponent("\(name)-\(UUID())").path
        let result = try Shell.run(binary, ["keys", "generate", "--out", prefix])
        #expect(result.exitCode == 0, "\(result.output)")
        return (prefix + ".key", prefix + ".pub")
    }

    func checkpoint(_ fixture: PipelineFixture, _ key: String) throws -> Shell.Result {
        try Shell.run(binary, ["checkpoint", "--signing-key-file", key, "--checkpoint-dir", directory.path, "--database-url", fixture.url])
    }

    func verify(_ fixture: PipelineFixture, _ arguments: [String]) throws -> Shell.Result {
        try Shell.run(binary, ["verify", "--database-url", fixture.url] + arguments)
    }

    @Test func aKeyIsWrittenForItsOwnerOnlyAndNeverReplaced() throws {
        let pair = try keyPair("owner")
        let attributes = try FileManager.default.attributesOfItem(atPath: pair.key)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let verifier = try NoteVerifierKey(parsing: String(contentsOfFile: pair.pub, encoding: .utf8))
        #expect(try NoteSigningKey(parsing: String(contentsOfFile: pair.key, encoding: .utf8)).verifier == verifier)
        let again = try Shell.run(binary, ["keys", "generate", "--out", String(pair.key.dropLast(4))])
        #expect(again.exitCode != 0 && again.output.contains("never overwritten"), "\(again.output)")
        // A signing key others may read is refused, with the fix.
        chmod(pair.key, 0o644)
        let fixture = try PipelineFixture()
        let refused = try checkpoint(fixture, pair.key)
        #expect(refused.exitCode != 0 && refused.output.contains("chmod 600"), "\(refused.output)")
    }

    @Test func anUntouchedLogHoldsAgainstItsKeyAndItsFiles() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("log")
        try backfill(fixture, events: 300, seed: 1)
        let first = try checkpoint(fixture, pair.key)
        #expect(first.exitCode == 0, "\(first.output)")
        let batches = try fixture.count("SELECT count(*) FROM audit_batch")
        #expect(first.output.contains("checkpoint: \(batches) log entries (\(batches) new)"), "\(first.output)")
        try backfill(fixture, events: 300, seed: 2)
        let idle = try checkpoint(fixture, pair.key)
        let second = try checkpoint(fixture, pair.key)
        #expect(idle.exitCode == 0 && second.exitCode == 0, "\(idle.output) \(second.output)")
        let total = try fixture.count("SELECT count(*) FROM audit_batch")
        #expect(second.output.contains("checkpoint: \(total) log entries (0 new)"), "republished when idle: \(second.output)")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(files == ["\(batches).checkpoint", "\(total).checkpoint", "latest.checkpoint"].sorted(), "\(files)")

        let result = try verify(fixture, ["--public-key-file", pair.pub, "--checkpoint-dir", directory.path])
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.output.contains("log: \(total) batches, 0 not yet in it; checkpoints checked: 2 stored, 2 from files"), "\(result.output)")
        #expect(result.output.contains("signatures against the keys given"), "\(result.output)")
    }

    /// `admin serve --signing-key-file` runs the integrator itself: what is ingested while it
    /// serves is signed within a round, written to the directory, and verifies against the key.
    @Test func aServingProcessSignsWhatIsIngestedWhileItRuns() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("served")
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: "t", extraArguments: [
            "--signing-key-file", pair.key, "--checkpoint-dir", directory.path, "--checkpoint-every", "1"])
        defer { server.stop() }
        try backfill(fixture, events: 400, seed: 3)
        let batches = try fixture.count("SELECT count(*) FROM audit_batch")
        #expect(batches > 0)
        #expect(waitUntil(timeout: .seconds(30)) {
            try fixture.count("SELECT coalesce(max(tree_size), 0) FROM audit_checkpoint") == batches
        }, "every batch signed while serving: \(server.child.outputSoFar)")
        #expect(waitUntil(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: directory.appendingPathComponent("\(batches).checkpoint").path) })
        let result = try verify(fixture, ["--public-key-file", pair.pub, "--checkpoint-dir", directory.path])
        #expect(result.exitCode == 0, "\(result.output)")

        let refused = try Shell.run(binary, ["admin", "serve", "--checkpoint-dir", directory.path, "--database-url", fixture.url])
        #expect(refused.exitCode != 0 && refused.output.contains("--checkpoint-dir needs --signing-key-file"), "\(refused.output)")
    }

    /// A superuser removes the newest backfill whole (rows, dead letters, seals, positions) and
    /// the checkpoints after it: consistent inside the database, caught against a checkpoint file.
    @Test func aLogCutAfterACheckpointHeldOutsideIsCaught() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("cut")
        try backfill(fixture, events: 300, seed: 1)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        let kept = try fixture.count("SELECT max(id) FROM audit_batch")
        let keptSize = try fixture.count("SELECT count(*) FROM audit_batch")
        try backfill(fixture, events: 300, seed: 2)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        _ = try fixture.connection.execute("""
            DELETE FROM ingest_offsets WHERE source IN (SELECT source FROM audit_batch_range WHERE batch_id > \(kept));
            DELETE FROM audit_log WHERE batch_id > \(kept);
            DELETE FROM audit_dead_letter WHERE batch_id > \(kept);
            DELETE FROM audit_batch_group WHERE batch_id > \(kept);
            DELETE FROM audit_batch_range WHERE batch_id > \(kept);
            DELETE FROM audit_batch WHERE id > \(kept);
            DELETE FROM audit_checkpoint WHERE tree_size > \(keptSize);
            DELETE FROM audit_log_node WHERE (index + 1) * (int8 '1' << level) > \(keptSize)
            """)
        let inside = try verify(fixture, ["--public-key-file", pair.pub])
        #expect(inside.exitCode == 0, "the cut is consistent inside the database: \(inside.output)")
        let outside = try verify(fixture, ["--public-key-file", pair.pub, "--checkpoint-dir", directory.path])
        #expect(outside.exitCode == 1, "\(outside.output)")
        #expect(outside.output.contains("tail cut: checkpoint file"), "\(outside.output)")
        #expect(outside.output.contains("the log holds \(keptSize): batches after \(keptSize) were removed"), "\(outside.output)")
        // The integrator refuses to sign over the cut into the same directory.
        let refused = try checkpoint(fixture, pair.key)
        #expect(refused.exitCode != 0, "\(refused.output)")
    }

    @Test func aCheckpointReSignedWithAnotherKeyIsABadSignature() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("real")
        try backfill(fixture, events: 200, seed: 1)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        let forger = try NoteSigningKey(generatingWithName: "audit-ingest")
        let stored = try SignedNote(parsing: try fixture.connection.execute("SELECT note FROM audit_checkpoint").scalar!)
        let forged = try SignedNote(text: stored.text, signedBy: [forger])
        _ = try fixture.connection.query("UPDATE audit_checkpoint SET note = $1", [forged.encoded])
        _ = try fixture.connection.query("UPDATE audit_signing_key SET verifier_key = $1", [forger.verifier.encoded])
        let result = try verify(fixture, ["--public-key-file", pair.pub])
        #expect(result.exitCode == 1, "\(result.output)")
        #expect(result.output.contains("bad signature: audit_checkpoint: the checkpoint of"), "\(result.output)")
        #expect(result.output.contains("signed by no trusted key"), "\(result.output)")
        // Without a key of one's own, the database's forged key list is all there is: said so.
        let trusting = try verify(fixture, [])
        #expect(trusting.output.contains("the keys the database lists"), "\(trusting.output)")
    }
}
