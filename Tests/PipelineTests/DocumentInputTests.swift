import Foundation
import Pipeline
import SampleData
import TestSupport
import Testing

/// Files that are one JSON document, as people have them: a pretty-printed CloudTrail delivery
/// file, `aws cloudtrail lookup-events` output, a JSON array of events. Each element is a
/// message at its byte offset, exactly once, resumable.
@Suite(.timeLimit(.minutes(4))) struct DocumentInputTests {
    let binary = Shell.executable(named: "audit-ingest")

    private func write(_ object: Any, pretty: Bool = true) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("doc-\(UUID()).json").path
        let data = try JSONSerialization.data(withJSONObject: object, options: pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    private func tenant(_ fixture: PipelineFixture) throws -> String {
        try #require(try fixture.connection.execute("SELECT id FROM tenant ORDER BY id LIMIT 1").scalar ?? nil)
    }

    /// A pretty-printed delivery file (every line of it used to be dead-lettered `invalid JSON`):
    /// each record stored once; a re-run changes nothing.
    @Test func aPrettyPrintedCloudTrailDeliveryFileIsReadRecordByRecord() throws {
        let fixture = try PipelineFixture()
        let sample = FormatBackfillTests.samples + "/cloudtrail-delivery.json"
        let path = try write(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: sample))))
        #expect(try FileSource(path: path).layout == .document)
        let arguments = ["backfill", "--no-progress", "--database-url", fixture.url, "--format", "cloudtrail",
                         "--tenant-from", "fixed:\(try tenant(fixture))", path]
        let first = try Shell.run(binary, arguments)
        #expect(first.exitCode == 0 && first.output.contains("lines read          3"), "\(first.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log WHERE action = 'iam.DeleteRole'") == 1)
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 3 && fixture.count("SELECT count(*) FROM audit_dead_letter") == 0)
        let again = try Shell.run(binary, arguments)
        #expect(again.exitCode == 0 && again.output.contains("already committed   3"), "\(again.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 3)
    }

    /// `aws cloudtrail lookup-events` output: each event's record is the JSON text in
    /// CloudTrailEvent; NextToken and other members are not messages.
    @Test func lookupEventsOutputIsStored() throws {
        let fixture = try PipelineFixture()
        let records = [
            #"{"eventID":"7d2e3f40-5162-4738-8a9b-0c1d2e3f4a5b","eventTime":"2026-10-03T08:15:30Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser"}"#,
            #"{"eventID":"8d2e3f40-5162-4738-8a9b-0c1d2e3f4a5b","eventTime":"2026-10-03T08:16:30Z","eventSource":"iam.amazonaws.com","eventName":"DeleteUser"}"#,
        ]
        let output: [String: Any] = [
            "Events": records.enumerated().map { ["EventId": "e\($0.offset)", "EventName": "x", "CloudTrailEvent": $0.element] },
            "NextToken": "token [with] {brackets}",
        ]
        let path = try write(output)
        let result = try Shell.run(binary, ["backfill", "--no-progress", "--database-url", fixture.url, "--format", "cloudtrail",
                                            "--tenant-from", "fixed:\(try tenant(fixture))", path])
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log WHERE action IN ('iam.CreateUser', 'iam.DeleteUser')") == 2)
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter") == 0)
    }

    /// A JSON array of native events, brackets and quotes inside strings included, killed in the
    /// middle and run again: every element exactly once.
    @Test func aJSONArrayOfEventsResumesExactlyOnceAfterAKill() throws {
        let fixture = try PipelineFixture()
        var events: [Any] = []
        for event in SampleEvents(.init(count: 30_000, tenants: 6)) {
            events.append(try JSONSerialization.jsonObject(with: Data(SampleEvents.ndjson(event).utf8), options: [.fragmentsAllowed]))
        }
        if var first = events[0] as? [String: Any] {
            first["metadata"] = ["note": #"a ] } " [ { \ ,"#]
            events[0] = first
        }
        let path = try write(events)
        let source = try FileSource(path: path)
        #expect(source.layout == .document)
        let arguments = ["backfill", "--no-progress", "--database-url", fixture.url, "--shards", "3", "--batch-size", "700", path]
        let child = try Shell.spawn(binary, arguments)
        waitUntil(interval: .milliseconds(10)) { try fixture.count("SELECT count(*) FROM audit_log") > 0 }
        child.signal(SIGKILL)
        _ = child.wait()
        let final = try Shell.run(binary, arguments)
        #expect(final.exitCode == 0 && final.output.contains("lines read          30000"), "\(final.output.suffix(2000))")
        #expect(try fixture.accountedExactlyOnce(lines: 30_000, source: source.baseName))
        #expect(try fixture.count("SELECT count(*) FROM audit_log WHERE custom_metadata->>'note' = 'a ] } \" [ { \\ ,'") == 1)
    }

    /// A document still being written ends in the middle of an element: the elements before it
    /// are stored, that one is held back, and the finished document stores the rest.
    @Test func aDocumentCutOffMidElementHoldsItBack() throws {
        let fixture = try PipelineFixture()
        var events: [Any] = []
        for event in SampleEvents(.init(count: 10, tenants: 6)) {
            events.append(try JSONSerialization.jsonObject(with: Data(SampleEvents.ndjson(event).utf8)))
        }
        let whole = try Data(contentsOf: URL(fileURLWithPath: try write(events)))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("growing-\(UUID()).json").path
        let cut = whole.count * 2 / 3
        try whole.prefix(cut).write(to: URL(fileURLWithPath: path))
        let engine = fixture.engine()
        let first = try engine.ingest(try FileSource(path: path))
        #expect(first.stored > 0 && first.stored < 10 && first.deadLetteredTotal == 0 && first.heldBackBytes > 0, "\(first)")
        try whole.write(to: URL(fileURLWithPath: path))
        let second = try engine.ingest(try FileSource(path: path))
        #expect(second.stored == 10 - first.stored && second.deadLetteredTotal == 0 && second.heldBackBytes == 0, "\(second)")
        #expect(try fixture.accountedExactlyOnce(lines: 10, source: first.source))
    }
}
