import Foundation
import Pipeline
import SampleData
import TestSupport
import Testing

/// One backfill over many files (a year of CloudTrail delivery files): one engine start for all
/// of them, each file still resolved, resumed and reported on its own (issue 30, item 13).
@Suite(.timeLimit(.minutes(5))) struct ManyFilesTests {
    let binary = Shell.executable(named: "audit-ingest")

    /// A file given twice and an older copy of it in the same run find it stored: each input is
    /// resolved once what was read before it is committed.
    @Test func filesOfOneRunAreEachResolvedAndReportedAndStoredOnce() throws {
        let fixture = try PipelineFixture()
        let monday = try sampleFile(events: 700, invalidRatio: 0.05, seed: 1, tenantSeed: 42)
        let tuesday = try sampleFile(events: 300, seed: 2, tenantSeed: 42)
        let older = monday.path + ".older"
        let text = try Data(contentsOf: URL(fileURLWithPath: monday.path))
        try text.prefix(text.count / 2).write(to: URL(fileURLWithPath: older))
        let paths = [monday.path, monday.path, tuesday.path, older]
        var reports: [(path: String, summary: IngestSummary)] = []
        // Batches far larger than a file, flushed by age long after it is read: only the commit
        // between two inputs puts the first one's positions where the second finds them.
        let engine = fixture.engine(shards: 2, batchSize: 5000, maxBatchAge: .seconds(5))
        let total = try engine.ingest(try paths.map { try FileSource(path: $0) }, finished: { reports.append(($0, $1)) })
        #expect(reports.map(\.path) == paths)
        #expect(reports.allSatisfy { $0.summary.isComplete }, "\(reports)")
        #expect(reports[0].summary.stored + reports[0].summary.deadLetteredTotal == 700 && reports[0].summary.alreadyCommitted == 0)
        #expect(reports[2].summary.stored == 300 && reports[2].summary.source != reports[0].summary.source)
        for again in [reports[1], reports[3]] {
            #expect(again.summary.source == reports[0].summary.source && again.summary.stored == 0
                    && again.summary.deadLetteredTotal == 0, "\(again)")
        }
        #expect(total.isComplete && total.stored == reports[0].summary.stored + 300, "\(total)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == total.stored)
        #expect(try fixture.accountedExactlyOnce(lines: 1000, source: reports[0].summary.source))
    }

    /// The command line prints a line per file and the run's totals, and a second run is a no-op.
    @Test func backfillOfManyFilesPrintsALinePerFileAndTheTotals() throws {
        let fixture = try PipelineFixture()
        let files = try (1...5).map { try sampleFile(events: 40, seed: UInt64($0), tenantSeed: 42).path }
        let arguments = ["backfill", "--no-progress", "--database-url", fixture.url] + files
        let first = try Shell.run(binary, arguments)
        #expect(first.exitCode == 0, "\(first.output)")
        for path in files { #expect(first.output.contains("\(path): 40 lines, 40 stored, 0 dead-lettered"), "\(first.output)") }
        #expect(first.output.contains("5 files:") && first.output.contains("stored              200"), "\(first.output)")
        let second = try Shell.run(binary, arguments)
        #expect(second.exitCode == 0 && second.output.contains("already committed   200"), "\(second.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 200)
    }

    /// A file's first line edited: it is not a new file (its other lines are a stored source's),
    /// so it is refused like any edit instead of turning every line into a duplicate dead letter.
    /// A file that merely shares its second line with another is a new file.
    @Test func anEditedFirstLineIsRefusedLikeAnyOtherEdit() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 500)
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: file.path))
        let stored = try fixture.count("SELECT count(*) FROM audit_log")
        var lines = try String(contentsOfFile: file.path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let replacement = SampleEvents.ndjson(SampleEvents(.init(count: 1, tenants: 6, seed: 77, tenantSeed: 42)).first { _ in true }!)
        lines[0] = Substring(replacement)
        try lines.joined(separator: "\n").write(toFile: file.path, atomically: false, encoding: .utf8)

        let refused = try #require(throws: IngestError.self) { try engine.ingest(try FileSource(path: file.path)) }
        #expect(refused.code == .sourceChanged)
        #expect(refused.message.contains("first line was edited") && refused.message.contains(first.source), "\(refused.message)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == stored)
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter") == 0)

        // Asked to, it is ingested as a new source: its other lines are duplicates of stored ones.
        let anew = try engine.ingest(try FileSource(path: file.path), ifChanged: .newSource)
        #expect(anew.isComplete && anew.source != first.source && anew.stored <= 1, "\(anew)")

        // Same second line, different lines after it: another file.
        let lookalike = try sampleFile(events: 200, seed: 5, tenantSeed: 42)
        var other = try String(contentsOfFile: lookalike.path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        other[1] = lines[1]
        try other.joined(separator: "\n").write(toFile: lookalike.path, atomically: false, encoding: .utf8)
        let taken = try engine.ingest(try FileSource(path: lookalike.path))
        #expect(taken.isComplete && taken.stored + taken.deadLetteredTotal == 200, "\(taken)")
    }
}
