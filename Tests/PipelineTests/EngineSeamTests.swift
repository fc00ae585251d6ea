import AuditCore
import Foundation
@testable import Pipeline
import Postgres
import SampleData
import Testing

/// A source the test scripts: partitions assigned and revoked, messages handed over, in the
/// order a Kafka consumer would — through the real engine into a real PostgreSQL. It needs 300
/// events: partition p's message at offset o is events[p * 100 + o].
private final class ScriptedSource: IngestSource {
    let events: [[UInt8]]
    let check: PipelineFixture
    var resumedAt: [Int32: Int64] = [:]
    var storedAtRevocation: [Int32: Int64] = [:]
    /// tenant_metrics's own count and the unfolded deltas when partition 1 was revoked.
    var countsAtRevocation: (folded: Int, unfolded: Int)?

    init(events: [[UInt8]], check: PipelineFixture) {
        self.events = events
        self.check = check
    }

    func identify(on control: PostgresConnection) throws -> String { "scripted:test" }

    func run(into feed: IngestFeed) throws -> SourceTotals {
        // Partition p's message at offset o is events[p * 100 + o].
        let first = try #require(try feed.assign([0, 1]))
        resumedAt = [0: first.resumeOffset(partition: 0), 1: first.resumeOffset(partition: 1)]
        try hand(partition: 0, 0..<100, to: feed)
        try hand(partition: 1, 0..<100, to: feed)
        #expect(try feed.revoke([1]))
        // Committed before the partition is given up: its lowest stored position is past all 100.
        storedAtRevocation = feed.lowestStoredPositions([0, 1]) ?? [:]
        countsAtRevocation = (try check.count("SELECT coalesce(sum(audit_log_count), 0) FROM tenant_metrics"),
                              try check.count("SELECT count(*) FROM tenant_metrics_delta"))
        let again = try #require(try feed.assign([1, 2]))
        resumedAt[2] = again.resumeOffset(partition: 1)
        // A new owner reads from an older position than it stored: those are skipped, also
        // after a message of a partition nothing was stored of (the engine remembers the last
        // partition it looked up and from where its messages are new).
        try hand(partition: 1, 95..<97, to: feed)
        try hand(partition: 2, 0..<1, to: feed)
        try hand(partition: 1, 97..<100, to: feed)
        return SourceTotals(messages: 206)
    }

    private func hand(partition: Int32, _ offsets: Range<Int64>, to feed: IngestFeed) throws {
        for offset in offsets {
            events[Int(partition) * 100 + Int(offset)].withUnsafeBytes {
                feed.message(partition: partition, offset: offset, next: Mark(next: offset + 1, prefixHash: nil), bytes: $0)
            }
        }
        try feed.watermark(partition: partition, next: Mark(next: offsets.upperBound, prefixHash: nil))
    }
}

/// Hands over 100 messages and their watermark, then aborts the run (as a failing flusher or a
/// stop's passed deadline does) before anything was flushed.
private final class AbortingSource: IngestSource {
    let events: [[UInt8]]

    init(events: [[UInt8]]) {
        self.events = events
    }

    func identify(on control: PostgresConnection) throws -> String { "aborting:test" }

    func run(into feed: IngestFeed) throws -> SourceTotals {
        _ = try #require(try feed.assign([0]))
        for (offset, event) in events.enumerated() {
            event.withUnsafeBytes {
                feed.message(partition: 0, offset: Int64(offset), next: Mark(next: Int64(offset + 1), prefixHash: nil), bytes: $0)
            }
        }
        try feed.watermark(partition: 0, next: Mark(next: Int64(events.count), prefixHash: nil))
        feed.router.pool.abort()
        return SourceTotals(messages: Int64(events.count))
    }
}

@Suite(.serialized) struct EngineSeamTests {
    private func sampleEvents(_ count: Int) -> [[UInt8]] {
        SampleEvents(.init(count: count, tenants: 6)).map { Array(SampleEvents.ndjson($0).utf8) }
    }

    /// The engine adopts positions on assignment, commits everything on revocation before the
    /// source lets the partition go, and skips what a shard stored when a partition comes back,
    /// also right after a message of a partition nothing was stored of.
    @Test func aScriptedSourceRunsThroughTheEngineWithRebalances() throws {
        let fixture = try PipelineFixture()
        let source = ScriptedSource(events: sampleEvents(300), check: fixture)
        let summary = try fixture.engine(shards: 2, batchSize: 10_000).run(source)
        #expect(source.resumedAt == [0: 0, 1: 0, 2: 100])
        #expect(source.storedAtRevocation == [0: 100, 1: 100])
        #expect(summary.stored == 201 && summary.alreadyCommitted == 5 && summary.messages == 206, "\(summary)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 201)
        #expect(try fixture.count("SELECT count(DISTINCT id) FROM audit_log") == 201)
        #expect(try fixture.count("SELECT sum(audit_log_count) FROM tenant_metrics") == 201)
    }

    /// After an abort nothing more is committed, not even rows and a watermark the flushers
    /// already hold: the source may have dropped items while waiting for room, and a later
    /// watermark or drain must not move a position past them.
    @Test func nothingIsCommittedAfterAnAbort() throws {
        let fixture = try PipelineFixture()
        let engine = fixture.engine(shards: 2, batchSize: 10_000, maxBatchAge: .seconds(3600))
        #expect(throws: IngestError.self) { try engine.run(AbortingSource(events: sampleEvents(100))) }
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 0)
        #expect(try fixture.count("SELECT coalesce(max(next_offset), 0) FROM ingest_offsets WHERE source = 'aborting:test'") == 0)
    }

    /// A run folds the counts during the run too (`foldEvery`), not only at its end: with one
    /// shard, the flush of the revocation is followed by a fold.
    @Test func countsAreFoldedDuringARun() throws {
        let fixture = try PipelineFixture()
        let source = ScriptedSource(events: sampleEvents(300), check: fixture)
        _ = try fixture.engine(shards: 1, batchSize: 10_000, foldEvery: .zero).run(source)
        #expect(source.countsAtRevocation?.folded == 200)
        #expect(source.countsAtRevocation?.unfolded == 0)
    }

    /// One flush on its own: a batch with a row PostgreSQL refuses (a duplicate id) stores the
    /// others, dead-letters that one with its SQLSTATE, moves the position and counts the rows;
    /// run again from the old position (its COMMIT reply lost), it writes nothing twice.
    @Test func aFlushTransactionIsolatesAPoisonRowAndNeverWritesABatchTwice() throws {
        let fixture = try PipelineFixture()
        var lines = sampleEvents(20)
        lines[7] = lines[3]  // same tenant, id and timestamp: 23505
        let decoder = EventDecoder()
        var encoder = BinaryCopyEncoder(reservingCapacity: 4096)
        let batch = RowBatch(maxRows: lines.count)
        defer { withExtendedLifetime(batch) {} }  // the rows' bytes live in it
        for (offset, line) in lines.enumerated() {
            let event = try decoder.decode(line).get()
            encoder.removeAll()
            event.appendCopyRow(to: &encoder)
            encoder.withUnsafeBytes { row in
                line.withUnsafeBytes { raw in
                    batch.append(partition: 0, offset: Int64(offset), next: Mark(next: Int64(offset + 1), prefixHash: nil),
                                 tenantID: event.tenantID, timestamp: event.timestamp, row: row, raw: raw)
                }
            }
        }
        var rows = batch.rows
        let store = OffsetStore(source: "flush:test")
        let connection = try PostgresConnection(configuration: fixture.database)
        defer { connection.close() }
        let layout = try store.adopt(partitions: [0], shardCount: 1, on: connection).byPartition[0]?.layout ?? 0
        let transaction = FlushTransaction(streams: .single("flush:test"), shard: 0, partitions: PartitionManager(),
                                           logger: .init(label: "test"))
        let result = try transaction.run(rows: &rows, deadLetters: [], from: [0: 0], to: [0: Mark(next: 20, prefixHash: nil)],
                                         layouts: [0: layout], on: connection)
        #expect(result.stored == 19)
        #expect(result.deadLetters.map(\.offset) == [7] && result.deadLetters.first?.sqlState == "23505")
        #expect(result.deadLetters.first?.rawMessage == lines[7], "the refused row keeps its message as received")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 19)
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter WHERE \"offset\" = 7 AND sqlstate = '23505'") == 1)
        #expect(try fixture.count("SELECT next_offset FROM ingest_offsets WHERE source = 'flush:test'") == 20)
        // Counted in the same transaction, exact for readers before any fold.
        #expect(try fixture.count("SELECT sum(audit_log_count) FROM tenant_metrics_current") == 19)
        #expect(try fixture.count("SELECT count(*) FROM tenant_metrics") == 0)

        _ = try transaction.run(rows: &rows, deadLetters: [], from: [0: 0], to: [0: Mark(next: 20, prefixHash: nil)],
                                layouts: [0: layout], on: connection)
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 19)
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter") == 1)
        #expect(try fixture.count("SELECT sum(audit_log_count) FROM tenant_metrics_current") == 19)
    }
}
