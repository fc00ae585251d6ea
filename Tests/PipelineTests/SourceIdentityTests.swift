import AuditCore
import Foundation
import Pipeline
import Postgres
import TestSupport
import Testing
import SampleData

/// Exactly once under the operations people really do (issue 12): files that grow, move and are
/// rotated; standard input in containers; changing the shard count.
@Suite(.timeLimit(.minutes(5))) struct SourceIdentityTests {
    let binary = Shell.executable(named: "audit-ingest")

    // MARK: Files by content

    @Test func anAppendedFileContinuesWhereItStopped() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 2000, invalidRatio: 0.05)
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: file.path))
        #expect(first.isComplete)
        try append(events: 10, seed: 99, to: file.path)
        let second = try engine.ingest(try FileSource(path: file.path))
        #expect(second.source == first.source)
        #expect(second.isComplete && second.messages == 2010)
        #expect(second.alreadyCommitted == 2000)
        #expect(second.stored + second.deadLetteredTotal == 10)
        #expect(try fixture.accountedExactlyOnce(lines: 2010, source: first.source))
    }

    @Test func aRenamedCopiedOrCompressedFileIsTheSameSource() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 1500, invalidRatio: 0.02)
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: file.path))
        let renamed = file.path + ".1"
        try FileManager.default.moveItem(atPath: file.path, toPath: renamed)
        let copy = file.path + ".copy"
        try FileManager.default.copyItem(atPath: renamed, toPath: copy)
        #expect(try Shell.run("/bin/gzip", ["-k", "-f", renamed]).exitCode == 0)
        for path in [renamed, copy, renamed + ".gz"] {
            let again = try engine.ingest(try FileSource(path: path))
            #expect(again.source == first.source, "\(path)")
            #expect(again.stored == 0 && again.deadLetteredTotal == 0 && again.alreadyCommitted == 1500, "\(path)")
        }
        // Rotation: the application goes on writing to a new file while the old one is gzipped.
        try append(events: 20, seed: 7, to: copy)
        let rotated = try engine.ingest(try FileSource(path: copy))
        #expect(rotated.alreadyCommitted == 1500 && rotated.stored + rotated.deadLetteredTotal == 20)
        #expect(try fixture.accountedExactlyOnce(lines: 1520, source: first.source))
    }

    @Test func anEditedOrTruncatedFileIsRefusedUnlessAskedToTreatItAsNew() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 3000)
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: file.path))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file.path))
        let stored = try fixture.count("SELECT count(*) FROM audit_log")

        // Same size, one byte in the middle changed ("INFO" -> "INFo" keeps it a valid event).
        let middle = bytes.count / 2
        let info = bytes[middle...].firstRange(of: Data("\"INFO\"".utf8)) ?? bytes[middle...].firstRange(of: Data("\"ERROR\"".utf8))!
        bytes[info.lowerBound + 4] = UInt8(ascii: "o")
        try bytes.write(to: URL(fileURLWithPath: file.path))
        let refused = try #require(throws: IngestError.self) { try engine.ingest(try FileSource(path: file.path)) }
        #expect(refused.code == .sourceChanged)
        #expect(refused.message.contains(file.path) && refused.message.contains("--if-changed new-source"), "\(refused.message)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == stored)

        // Cut before the first checkpoint (4 KiB): nothing tells a truncation from a snapshot.
        let truncated = file.path + ".short"
        try bytes.prefix(3000).write(to: URL(fileURLWithPath: truncated))
        let shorter = try #require(throws: IngestError.self) { try engine.ingest(try FileSource(path: truncated)) }
        #expect(shorter.message.contains("shorter"), "\(shorter.message)")
        // Cut later, before the edit (an older snapshot, here ending mid-line): it matches every
        // checkpoint it reaches, so it is stored already and changes nothing.
        try bytes.prefix(bytes.count / 3).write(to: URL(fileURLWithPath: truncated))
        let snapshot = try engine.ingest(try FileSource(path: truncated))
        #expect(snapshot.source == first.source && snapshot.stored == 0 && snapshot.deadLetteredTotal == 0 && snapshot.isComplete,
                "\(snapshot)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == stored)

        let anew = try engine.ingest(try FileSource(path: file.path), ifChanged: .newSource)
        #expect(anew.source == first.source + "~2")
        #expect(anew.isComplete)
        // A later run of the edited file finds the new source and changes nothing.
        let again = try engine.ingest(try FileSource(path: file.path))
        #expect(again.source == anew.source && again.alreadyCommitted == 3000 && again.stored == 0)
    }

    /// Two files that start with the same line (a banner written at each rotation) and differ
    /// after it are two sources, not an edit; an older snapshot of a stored file (an hourly
    /// upload of a growing log) is stored already. Each run again changes nothing.
    @Test func aSharedFirstLineOrAnOlderSnapshotIsNotTakenForAnEdit() throws {
        let fixture = try PipelineFixture()
        let banner = #"# audit log of billing-api, started"#
        func events(_ count: Int, seed: UInt64) -> String {
            SampleEvents(.init(count: count, tenants: 6, seed: seed, tenantSeed: 42)).map { SampleEvents.ndjson($0) + "\n" }.joined()
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("banner-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let monday = directory + "/app.log.1", tuesday = directory + "/app.log", snapshot = directory + "/app.log.snapshot"
        let tuesdayText = banner + "\n" + events(300, seed: 2)
        try Data((banner + "\n" + events(300, seed: 1)).utf8).write(to: URL(fileURLWithPath: monday))
        try Data(tuesdayText.utf8).write(to: URL(fileURLWithPath: tuesday))
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: monday))
        let second = try engine.ingest(try FileSource(path: tuesday))
        #expect(second.source == first.source + "~2" && second.stored == 300 && second.isComplete, "\(second)")
        #expect(try engine.ingest(try FileSource(path: monday)).stored == 0)
        #expect(try engine.ingest(try FileSource(path: tuesday)).stored == 0)

        // Tuesday's log as uploaded an hour earlier: two thirds of it, cut mid-line.
        try Data(tuesdayText.utf8.prefix(tuesdayText.utf8.count * 2 / 3)).write(to: URL(fileURLWithPath: snapshot))
        let older = try engine.ingest(try FileSource(path: snapshot))
        #expect(older.source == second.source && older.stored == 0 && older.deadLetteredTotal == 0 && older.isComplete, "\(older)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 600)
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter WHERE sqlstate = '23505'") == 0)
    }

    /// After a crash, one shard had stored lines past the resume point (the lowest shard's
    /// position). An edit there must be caught too: otherwise the edited line would be skipped
    /// as stored and its new content lost.
    @Test func anEditPastTheResumePointIsCaughtWhereAnotherShardStoredIt() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 2000)
        let engine = fixture.engine(shards: 2)
        let first = try engine.ingest(try FileSource(path: file.path))
        // The state a crash leaves: shard 0 stopped at line 1000, shard 1 went to the end.
        let lowered = Int64(try byteOffset(ofLine: 1000, in: file.path))
        let hash = try #require(try FileSource(path: file.path).prefixHashes(at: [lowered])[lowered])
        try fixture.connection.execute("""
            UPDATE ingest_offsets SET next_offset = \(lowered), prefix_hash = \(hash) WHERE source = '\(first.source)' AND shard = 0
            """)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file.path))
        let line = try byteOffset(ofLine: 1500, in: file.path) + #"{"id":""#.utf8.count
        bytes[line] = bytes[line] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        try bytes.write(to: URL(fileURLWithPath: file.path))
        let refused = try #require(throws: IngestError.self) { try engine.ingest(try FileSource(path: file.path)) }
        #expect(refused.code == .sourceChanged, "\(refused)")
    }

    @Test func aByteOrderMarkIsSkippedAndAnUnterminatedLastLineContinues() throws {
        let fixture = try PipelineFixture()
        var lines: [String] = []
        for event in SampleEvents(.init(count: 3, tenants: 6)) { lines.append(SampleEvents.ndjson(event)) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bom-\(UUID()).ndjson").path
        try Data([0xEF, 0xBB, 0xBF] + Array((lines[0] + "\n" + lines[1]).utf8)).write(to: URL(fileURLWithPath: path))
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: path))
        #expect(first.stored == 2 && first.deadLetteredTotal == 0, "\(first.deadLettered)")
        // The writer finishes its last line and adds another.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(("\n" + lines[2] + "\n").utf8))
        try handle.close()
        let second = try engine.ingest(try FileSource(path: path))
        #expect(second.stored == 1 && second.deadLetteredTotal == 0 && second.isComplete, "\(second)")
        #expect(try fixture.accountedExactlyOnce(lines: 3, source: first.source))
    }

    /// A growing file read while its writer is in the middle of a line (writers flush in blocks):
    /// that last line is left uncommitted, and read whole by the next run. Nothing is
    /// dead-lettered, every line is stored once. `--partial-last-line take` takes such a line as
    /// it is (dead-lettered, being cut off), and the summary says what was held back.
    @Test func aLastLineBeingWrittenIsHeldBackUntilItIsFinished() throws {
        let fixture = try PipelineFixture()
        var lines: [String] = []
        for event in SampleEvents(.init(count: 3, tenants: 6)) { lines.append(SampleEvents.ndjson(event)) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("growing-\(UUID()).ndjson").path
        let cut = lines[1].utf8.count / 2
        try Data((lines[0] + "\n" + String(lines[1].prefix(cut))).utf8).write(to: URL(fileURLWithPath: path))
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: path))
        #expect(first.stored == 1 && first.deadLetteredTotal == 0 && first.isComplete, "\(first)")
        #expect(first.heldBackBytes == cut)
        let report = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", fixture.url, path])
        #expect(report.exitCode == 0 && report.output.contains("held back           the last line (\(cut) bytes)"), "\(report.output)")

        // The writer finishes that line and adds another.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile()
        handle.write(Data((String(lines[1].dropFirst(cut)) + "\n" + lines[2] + "\n").utf8))
        try handle.close()
        let second = try engine.ingest(try FileSource(path: path))
        #expect(second.stored == 2 && second.deadLetteredTotal == 0 && second.isComplete && second.heldBackBytes == 0, "\(second)")
        #expect(try fixture.accountedExactlyOnce(lines: 3, source: first.source))
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter") == 0)

        // Asked to, a cut-off last line is taken as it is.
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("cut-\(UUID()).ndjson").path
        try Data((lines[2] + "\n" + String(lines[0].prefix(10))).utf8).write(to: URL(fileURLWithPath: other))
        let taken = try Shell.run(binary, ["backfill", "--no-progress", "--partial-last-line", "take", "--database-url", fixture.url, other])
        #expect(taken.exitCode == 0 && !taken.output.contains("held back"), "\(taken.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter WHERE reason = 'invalid JSON'") == 1)
    }

    /// A one-line file without a newline is the same source once its writer adds the newline and
    /// more lines: nothing is read twice, nothing dead-lettered. A source stored under the name an
    /// earlier version gave (the first line hashed with its line break) is continued too.
    @Test func aFileKeepsItsIdentityWhenItsFirstLineGetsItsNewline() throws {
        let fixture = try PipelineFixture()
        var lines: [String] = []
        for event in SampleEvents(.init(count: 5, tenants: 6)) { lines.append(SampleEvents.ndjson(event)) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("one-\(UUID()).ndjson").path
        try Data(lines[0].utf8).write(to: URL(fileURLWithPath: path))
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: path))
        #expect(first.stored == 1 && first.deadLetteredTotal == 0, "\(first)")
        try append(text: "\n" + lines[1] + "\n" + lines[2] + "\n", to: path)
        let second = try engine.ingest(try FileSource(path: path))
        #expect(second.source == first.source && second.stored == 2 && second.deadLetteredTotal == 0, "\(second)")

        // As an earlier version stored it: under the name of the first line with its newline.
        let legacy = try #require(try FileSource(path: path).legacyBaseName)
        try fixture.connection.query("UPDATE ingest_offsets SET source = $1 WHERE source = $2", [legacy, first.source])
        try append(text: lines[3] + "\n" + lines[4] + "\n", to: path)
        let third = try engine.ingest(try FileSource(path: path))
        #expect(third.source == legacy && third.stored == 2 && third.deadLetteredTotal == 0, "\(third)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 5 && fixture.count("SELECT count(*) FROM audit_dead_letter") == 0)
    }

    /// A .gz cut off mid-line (a rotated archive still being written): the run fails, and the
    /// cut-off last line is not committed, so the complete archive later stores it.
    @Test func aTruncatedArchiveDoesNotCommitItsCutOffLine() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 3000)
        #expect(try Shell.run("/bin/gzip", ["-k", "-f", file.path]).exitCode == 0)
        let archive = try Data(contentsOf: URL(fileURLWithPath: file.path + ".gz"))
        let cut = file.path + ".cut.gz"
        try archive.prefix(archive.count / 2).write(to: URL(fileURLWithPath: cut))
        let engine = fixture.engine()
        #expect(throws: IngestError.self) { try engine.ingest(try FileSource(path: cut)) }
        let complete = try engine.ingest(try FileSource(path: file.path + ".gz"))
        #expect(complete.isComplete && complete.deadLetteredTotal == 0, "\(complete)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 3000)
    }

    @Test func aByteOrderMarkOrBlankFirstLinesDoNotChangeTheSource() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 100)
        let text = try Data(contentsOf: URL(fileURLWithPath: file.path))
        let withMark = file.path + ".bom"
        try (Data([0xEF, 0xBB, 0xBF]) + text).write(to: URL(fileURLWithPath: withMark))
        #expect(try FileSource(path: withMark).baseName == FileSource(path: file.path).baseName)

        let blank = FileManager.default.temporaryDirectory.appendingPathComponent("blank-\(UUID()).ndjson").path
        try Data("   \n\n".utf8).write(to: URL(fileURLWithPath: blank))
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: blank))
        #expect(first.deadLetteredTotal == 2)
        try append(events: 3, seed: 8, to: blank)
        let grown = try engine.ingest(try FileSource(path: blank))
        #expect(grown.source == first.source && grown.alreadyCommitted == 2 && grown.stored == 3, "\(grown)")
    }

    @Test func aSchemaFromBeforeTheseChangesSaysToMigrate() throws {
        let url = try TestDatabase.create()
        let old = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-\(UUID())")
        try FileManager.default.createDirectory(at: old, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: TestDatabase.migrationsDirectory.path) where name < "0006" {
            try FileManager.default.copyItem(at: TestDatabase.migrationsDirectory.appendingPathComponent(name), to: old.appendingPathComponent(name))
        }
        #expect(try Shell.run(binary, ["migrate", "--database-url", url, "--migrations-dir", old.path]).exitCode == 0)
        let file = try sampleFile(events: 10)
        let result = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", url, file.path])
        #expect(result.exitCode == 1 && result.output.contains("run audit-ingest migrate"), "\(result.output)")
    }

    // MARK: Standard input

    @Test func everyStandardInputRunIsANewSourceUnlessNamed() throws {
        let one = try FileSource(path: "-")
        let two = try FileSource(path: "-")
        #expect(one.baseName != two.baseName)
        #expect(try FileSource(path: "-", sourceName: "feed").baseName == FileSource(path: "-", sourceName: "feed").baseName)
    }

    /// Two `backfill -` runs as PID 1 (a container each), one after the other: each stores its
    /// own events.
    @Test func standardInputRunsInContainersDoNotCollide() throws {
        let fixture = try PipelineFixture()
        var stored = 0
        for seed in [1, 2] as [UInt64] {
            let file = try sampleFile(events: 40, seed: seed)
            let result = try Shell.run("/usr/bin/unshare", ["--pid", "--fork", "--mount-proc", "/bin/sh", "-c",
                                                            "exec '\(binary)' backfill --no-progress --database-url '\(fixture.url)' - < '\(file.path)'"])
            #expect(result.exitCode == 0, "\(result.output)")
            stored += 40
            #expect(try fixture.count("SELECT count(*) FROM audit_log") + fixture.count("SELECT count(*) FROM audit_dead_letter") == stored)
        }
    }

    /// Events trickling in on a pipe that stays open are stored as they come (within the batch
    /// age), not when the input ends: rows decoded before the source waits for more input are
    /// handed to the flushers first.
    @Test func aTricklingStandardInputIsStoredAsItArrives() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 10)
        let lines = try String(contentsOfFile: file.path, encoding: .utf8).split(separator: "\n").map { $0 + "\n" }
        let fifo = file.path + ".fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let child = try Shell.spawn("/bin/sh", ["-c", "exec '\(binary)' backfill --no-progress --database-url '\(fixture.url)' - < '\(fifo)'"])
        let input = try #require(FileHandle(forWritingAtPath: fifo))
        input.write(Data(lines.prefix(5).joined().utf8))
        waitUntil(timeout: .seconds(30)) { try fixture.count("SELECT count(*) FROM audit_log") >= 5 }
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 5, "the first five lines are stored while the pipe is open")
        input.write(Data(lines.dropFirst(5).joined().utf8))
        try input.close()
        let result = child.wait(timeout: 60)
        #expect(result.exitCode == 0 && result.output.contains("stored              10"), "\(result.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 10)
    }

    @Test func standardInputGivenTwiceIsAUsageError() throws {
        let result = try Shell.run(binary, ["backfill", "-", "-"])
        #expect(result.exitCode == 64, "\(result.output)")
        #expect(result.output.contains("can be given only once"), "\(result.output)")
    }

    @Test func aNamedStandardInputResumesAndRefusesADifferentStream() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 600)
        let text = try String(contentsOfFile: file.path, encoding: .utf8)
        let half = file.path + ".half"
        try String(text.split(separator: "\n").prefix(300).joined(separator: "\n") + "\n").write(toFile: half, atomically: true, encoding: .utf8)
        func pipe(_ path: String) throws -> Shell.Result {
            try Shell.run("/bin/sh", ["-c", "exec '\(binary)' backfill --no-progress --database-url '\(fixture.url)' --source-name feed - < '\(path)'"])
        }
        let first = try pipe(half)
        #expect(first.exitCode == 0 && first.output.contains("stored              300"), "\(first.output)")
        let second = try pipe(file.path)
        #expect(second.exitCode == 0, "\(second.output)")
        #expect(second.output.contains("already committed   300") && second.output.contains("stored              300"), "\(second.output)")
        let other = try sampleFile(events: 600, seed: 5)
        let third = try pipe(other.path)
        #expect(third.exitCode != 0 && third.output.contains("standard input (--source-name feed)")
                && third.output.contains("an earlier run stored"), "\(third.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 600)
    }

    // MARK: Shard counts

    @Test func anyShardCountContinuesACompleteSource() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 3000, invalidRatio: 0.05, extraLines: ["not json", "{}"])
        let first = try fixture.engine(shards: 2).ingest(try FileSource(path: file.path))
        for shards in [3, 1, 4] {
            let again = try fixture.engine(shards: shards).ingest(try FileSource(path: file.path))
            #expect(again.isComplete && again.stored == 0 && again.deadLetteredTotal == 0, "\(shards) shards: \(again)")
        }
        try append(events: 50, seed: 3, to: file.path)
        let grown = try fixture.engine(shards: 3).ingest(try FileSource(path: file.path))
        #expect(grown.stored + grown.deadLetteredTotal == 50)
        #expect(try fixture.accountedExactlyOnce(lines: file.lines + 50, source: first.source))
    }

    /// The layout change itself: new shards start at the lowest old position; positions the old
    /// shards stored above it are still recognised (by the old routing) until every new shard has
    /// passed them.
    @Test func aShardCountChangeRetiresTheOldLayoutUntilItIsPassed() throws {
        let fixture = try PipelineFixture()
        try fixture.connection.execute("""
            INSERT INTO ingest_offsets (source, "partition", shard, next_offset, prefix_hash)
            VALUES ('file:t', 0, 0, 100, 11), ('file:t', 0, 1, 250, 22), ('file:t', 0, 2, 180, 33)
            """)
        let store = OffsetStore(source: "file:t")
        let adopted = try #require(try store.adopt(partitions: [0], shardCount: 2, on: fixture.connection).byPartition[0])
        #expect(adopted.shards == [100, 100] && adopted.resumeHash == 11)
        #expect(try fixture.count("SELECT count(*) FROM ingest_offsets_retired WHERE source = 'file:t' AND shard_count = 3") == 3)
        // Adopting again with the same count keeps the retired layout (it is still ahead).
        let again = try #require(try store.adopt(partitions: [0], shardCount: 2, on: fixture.connection).byPartition[0])
        #expect(again == adopted)
        try fixture.connection.execute("UPDATE ingest_offsets SET next_offset = 250 WHERE source = 'file:t'")
        _ = try store.adopt(partitions: [0], shardCount: 2, on: fixture.connection)
        #expect(try fixture.count("SELECT count(*) FROM ingest_offsets_retired WHERE source = 'file:t'") == 0)
    }

    /// Runs killed at random moments with 3, then 2 shards, finished with 4: every line once.
    @Test func killedRunsWithChangingShardCountsStoreEveryLineOnce() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 40_000, months: 4, invalidRatio: 0.02)
        let source = try FileSource(path: file.path).baseName
        var kills = 0
        for shards in [3, 2] {
            if try killMidRun(fixture, file.path, ["--shards", "\(shards)", "--batch-size", "500"], seed: UInt64(shards)) { kills += 1 }
        }
        #expect(kills >= 1, "the test must have killed at least one run")
        let final = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", fixture.url, "--shards", "4", file.path])
        #expect(final.exitCode == 0, "\(final.output)")
        #expect(try fixture.accountedExactlyOnce(lines: file.lines, source: source))
        // Every chain, the retired ones included, tiles its positions; every seal still holds.
        let verify = try Shell.run(binary, ["verify", "--database-url", fixture.url])
        #expect(verify.exitCode == 0, "\(verify.output)")
    }

    /// Two runs on one file at once with different shard counts: the second re-lays the shards
    /// while the first is writing. The first must be fenced off (its layout is gone even where a
    /// new shard starts at the offset it expected), and a later run finishes exactly once.
    @Test func concurrentRunsWithDifferentShardCountsLeaveNoWedgedSource() throws {
        let file = try sampleFile(events: 40_000, invalidRatio: 0.02)
        let copy = file.path + ".copy"
        try FileManager.default.copyItem(atPath: file.path, toPath: copy)
        let source = try FileSource(path: file.path).baseName
        // The second run starts at a few points of the first one's progress.
        for startAfter in [1, 3000, 9000] {
            let fixture = try PipelineFixture()
            let options = ["backfill", "--no-progress", "--database-url", fixture.url, "--batch-size", "500"]
            let first = try Shell.spawn(binary, options + ["--shards", "2", file.path])
            waitUntil(interval: .milliseconds(5)) { try fixture.count("SELECT count(*) FROM audit_log") >= startAfter }
            let second = try Shell.spawn(binary, options + ["--shards", "3", copy])
            for result in [first.wait(), second.wait()] {
                #expect(result.exitCode == 0 || result.output.contains("another process committed"), "\(result.output.suffix(2000))")
            }
            let final = try Shell.run(binary, options + ["--shards", "2", file.path])
            #expect(final.exitCode == 0, "after \(startAfter): \(final.output.suffix(2000))")
            #expect(try fixture.accountedExactlyOnce(lines: file.lines, source: source), "after \(startAfter)")
        }
    }

    // MARK: Same input, same outcome

    /// Events stamped an hour ahead are rejected by a run with no future window and accepted by
    /// one with the default window. Runs killed in between must not leave any of them in both
    /// tables: a position, once decided, stays decided (rejections go to the tenant's shard,
    /// like the accepted event would).
    @Test func aChangedPlausibilityWindowNeverPutsAPositionInBothTables() throws {
        let fixture = try PipelineFixture()
        var lines: [String] = []
        let soon = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
        for (index, event) in SampleEvents(.init(count: 30_000, tenants: 6)).enumerated() {
            var line = SampleEvents.ndjson(event)
            if index % 10 == 0, let range = line.range(of: #""timestamp":"[^"]*""#, options: .regularExpression) {
                line.replaceSubrange(range, with: #""timestamp":"\#(soon)""#)
            }
            lines.append(line)
        }
        let file = try sampleFile(events: 0, extraLines: lines)
        let source = try FileSource(path: file.path).baseName
        var kills = 0
        for round in 0..<2 {
            if try killMidRun(fixture, file.path, ["--shards", "3", "--batch-size", "400", "--max-future-skew", "0"],
                              seed: UInt64(round)) { kills += 1 }
        }
        #expect(kills >= 1)
        let final = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", fixture.url, "--shards", "3", file.path])
        #expect(final.exitCode == 0, "\(final.output)")
        #expect(try fixture.accountedExactlyOnce(lines: file.lines, source: source))
    }

    // MARK: Event ids

    @Test func oneTenantCannotSuppressAnotherTenantsEvent() throws {
        let fixture = try PipelineFixture(tenants: 2)
        let tenants = SampleEvents.tenantIDs(count: 2)
        let event = #"{"id":"11111111-2222-4333-8444-555555555555","tenant_id":"TENANT","action":"a","severity":"INFO","timestamp":"2026-03-01T00:00:00Z"}"#
        let file = try sampleFile(events: 0, extraLines: [
            event.replacingOccurrences(of: "TENANT", with: tenants[0]),
            event.replacingOccurrences(of: "TENANT", with: tenants[1]),
            event.replacingOccurrences(of: "TENANT", with: tenants[1]),  // a true duplicate within a tenant
        ])
        let summary = try fixture.engine(shards: 2).ingest(try FileSource(path: file.path))
        #expect(summary.stored == 2, "\(summary)")
        #expect(try fixture.count("SELECT count(DISTINCT tenant_id) FROM audit_log") == 2)
        #expect(try fixture.connection.execute("SELECT tenant_id::text, sqlstate FROM audit_dead_letter").rows == [[tenants[1], "23505"]])
    }

    // MARK: Stopping

    /// SIGTERM in the middle of a backfill: it stops reading, commits what it read, says so and
    /// exits 1; the same command then finishes, every line once.
    @Test func sigtermStopsABackfillAfterCommittingWhatItRead() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 60_000, invalidRatio: 0.01)
        let arguments = ["backfill", "--no-progress", "--database-url", fixture.url, "--shards", "2", "--batch-size", "500", file.path]
        let child = try Shell.spawn(binary, arguments)
        waitUntil(interval: .milliseconds(10)) { try fixture.count("SELECT count(*) FROM audit_log") > 0 }
        child.signal(SIGTERM)
        let result = child.wait(timeout: 30)
        #expect(result.exitCode == 1, "\(result.output.suffix(2000))")
        #expect(result.output.contains("stopped by a signal after committing what it had read"), "\(result.output.suffix(2000))")
        let final = try Shell.run(binary, arguments)
        #expect(final.exitCode == 0, "\(final.output)")
        #expect(try fixture.accountedExactlyOnce(lines: file.lines, source: try FileSource(path: file.path).baseName))
    }

    // MARK: Helpers

    /// Starts a backfill, waits until it has committed something, kills it at a random moment.
    /// Returns true when it was killed (false: it finished first).
    private func killMidRun(_ fixture: PipelineFixture, _ path: String, _ options: [String], seed: UInt64 = 7) throws -> Bool {
        var generator = SeededGenerator(seed: seed)
        let before = try fixture.count("SELECT count(*) FROM audit_log") + fixture.count("SELECT count(*) FROM audit_dead_letter")
        let child = try Shell.spawn(binary, ["backfill", "--no-progress", "--database-url", fixture.url] + options + [path])
        waitUntil(interval: .milliseconds(10)) {
            try fixture.count("SELECT count(*) FROM audit_log") + fixture.count("SELECT count(*) FROM audit_dead_letter") != before
        }
        randomPause(upTo: .milliseconds(200), using: &generator)
        child.signal(SIGKILL)
        let result = child.wait()
        if result.exitCode != 128 + SIGKILL { #expect(result.exitCode == 0, "\(result.output)") }
        return result.exitCode == 128 + SIGKILL
    }
}

/// Appends `text` to a file.
func append(text: String, to path: String) throws {
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    handle.seekToEndOfFile()
    handle.write(Data(text.utf8))
    try handle.close()
}

/// Appends sample events to a file.
func append(events: Int, seed: UInt64, to path: String) throws {
    var text = ""
    for event in SampleEvents(.init(count: events, tenants: 6, seed: seed, tenantSeed: 42)) { text += SampleEvents.ndjson(event) + "\n" }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    handle.seekToEndOfFile()
    handle.write(Data(text.utf8))
    try handle.close()
}

/// Memory is bounded in bytes, not only in items (issue 13).
@Suite(.timeLimit(.minutes(5))) struct ByteBudgetTests {
    /// Large events, a batch that would hold them all and a batch age longer than the run: the
    /// shard still holds at most its byte budget, so the process stays far below the file's size.
    @Test func largeEventsAreHeldWithinTheShardMemoryBudget() throws {
        let fixture = try PipelineFixture()
        let padding = String(repeating: "x", count: 60_000)
        var lines: [String] = []
        for event in SampleEvents(.init(count: 3000, tenants: 6)) {
            let line = SampleEvents.ndjson(event)
            if let range = line.range(of: #""metadata":{"#) {
                lines.append(line.replacingCharacters(in: range, with: #""metadata":{"padding":"\#(padding)","#))
            } else {
                lines.append(String(line.dropLast()) + #","metadata":{"padding":"\#(padding)"}}"#)
            }
        }
        let file = try sampleFile(events: 0, extraLines: lines)  // about 180 MB
        let result = try Shell.run("/usr/bin/time", ["-f", "max-rss-kib %M", Shell.executable(named: "audit-ingest"), "backfill",
                                                     "--no-progress", "--database-url", fixture.url, "--shards", "2",
                                                     "--batch-size", "10000", "--max-batch-age", "600000", "--shard-memory", "16", file.path])
        #expect(result.exitCode == 0, "\(result.output.suffix(2000))")
        #expect(result.output.contains("stored              3000"), "\(result.output.suffix(2000))")
        let rss = result.output.split(separator: "\n").first { $0.hasPrefix("max-rss-kib") }.flatMap { Int($0.split(separator: " ")[1]) }
        #expect(rss != nil && rss! < 120_000, "max RSS \(rss ?? -1) KiB for a 180 MB file with 2 x 16 MiB budgets")
    }
}

@Suite(.timeLimit(.minutes(2))) struct RetentionCutoffTests {
    /// Late events older than the retention period are dead-lettered with their reason instead of
    /// recreating the month a prune removed.
    @Test func eventsOlderThanRetentionAreDeadLetteredAndCreateNoPartition() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 600, months: 6)
        let result = try Shell.run(Shell.executable(named: "audit-ingest"), [
            "backfill", "--no-progress", "--database-url", fixture.url, "--retention-days", "62", file.path])
        #expect(result.exitCode == 0, "\(result.output)")
        let old = try fixture.count("SELECT count(*) FROM audit_dead_letter WHERE reason = 'older than retention'")
        let stored = try fixture.count("SELECT count(*) FROM audit_log")
        #expect(old > 100 && old + stored == 600, "\(old) + \(stored)")
        // No month entirely before the cut-off was created.
        #expect(try fixture.count("""
            SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'audit_log'::regclass
              AND to_date(substr(c.relname, 11), 'YYYY_MM') + interval '1 month' <= now() - interval '62 days'
            """) == 0)
    }
}
