import AuditCore
import Foundation
@testable import Pipeline
import Postgres
import SampleData
import TestSupport
import Testing

/// A source that is an array of events: partitions assigned and revoked, messages handed over,
/// in the order a Kafka consumer would — through the real engine into a real PostgreSQL. A
/// `.check` step runs between two pulls (the engine has completed what came before it).
private final class ScriptedSource: IngestSource {
    enum Step {
        case event(SourceEvent)
        /// Messages `offsets` of `partition`, with a watermark after them.
        case messages(partition: Int32, offsets: Range<Int64>)
        case check(() throws -> Void)
        /// Aborts the run, as a failing flusher or a stop's passed deadline does.
        case abort
    }

    let name: String
    let events: [[UInt8]]
    private var steps: [Step]
    private let batch = SourceBatch()
    private var run: SourceRun?
    private(set) var confirmed: [Int32: Int64] = [:]
    private var consumed: Int64 = 0
    /// Called at each pull with no room while messages are still to come (the rings are full),
    /// with how many such pulls there were: steps to take before those messages (what a
    /// consumer's rebalance does while the flushers are behind), or nil to answer `.idle`.
    /// Once it returns steps it is not called again.
    var whenFull: ((Int) throws -> [Step]?)?
    private(set) var pullsWhileFull = 0
    var pulledWhileFull: Bool { pullsWhileFull > 0 }

    /// Partition p's message at offset o is `events[p * 100 + o]`.
    init(name: String, events: [[UInt8]], steps: [Step]) {
        self.name = name
        self.events = events
        self.steps = steps.reversed()
    }

    func identify(on control: PostgresConnection) throws -> String { name }
    func open(_ run: SourceRun) throws { self.run = run }
    var totals: SourceTotals { SourceTotals(messages: consumed) }

    func next(room: Int) throws -> SourceEvent {
        while let step = steps.popLast() {
            switch step {
            case .event(let event):
                return event
            case .messages(let partition, let offsets):
                guard room > 0 else {  // a pull for rebalances only
                    steps.append(step)
                    pullsWhileFull += 1
                    guard let inserted = try whenFull?(pullsWhileFull) else { return .idle }
                    whenFull = nil
                    steps.append(contentsOf: inserted.reversed())
                    continue
                }
                // At most `room` of them, as a consumer polls; the rest come with the next pulls.
                let taken = offsets.lowerBound..<min(offsets.upperBound, offsets.lowerBound + Int64(room))
                if taken.upperBound < offsets.upperBound {
                    steps.append(.messages(partition: partition, offsets: taken.upperBound..<offsets.upperBound))
                }
                batch.removeAll()
                for offset in taken {
                    events[Int(partition) * 100 + Int(offset)].withUnsafeBytes {
                        batch.append(partition: partition, offset: offset, next: Mark(next: offset + 1, prefixHash: nil), bytes: $0)
                    }
                }
                batch.watermark(partition: partition, next: Mark(next: taken.upperBound, prefixHash: nil))
                consumed += Int64(taken.count)
                return .messages(batch)
            case .check(let check):
                try check()
            case .abort:
                run?.pool.abort()
            }
        }
        return .end
    }

    func confirm(_ partitions: [Int32], stored: StoredPositions) throws {
        for partition in partitions { confirmed[partition] = stored.resumeOffset(partition: partition) }
    }

    func release(_ partitions: [Int32]) throws {}

    /// The lowest position any shard stored, per partition.
    func lowestStored(_ partitions: [Int32]) -> [Int32: Int64] { run?.lowestStoredPositions(partitions) ?? [:] }
}

/// Holds the lock every flush takes first (`feed_writer`) from `block()` to `release()`, so no
/// flush commits meanwhile. A bound, not a timing: a test that never releases it (the behaviour
/// it checks is broken) gets its holder's connection ended after 30 s, its run completes, and
/// its own expectations fail.
private final class FlushBlocker {
    private let holder: PostgresConnection
    private let finished = DispatchSemaphore(value: 0)

    init(_ fixture: PipelineFixture) throws {
        holder = try PostgresConnection(fixture.url)
        let pid = try holder.execute("SELECT pg_backend_pid()").scalar ?? ""
        let (url, finished) = (fixture.url, finished)
        Thread {
            if finished.wait(timeout: .now() + 30) == .timedOut {
                _ = try? PostgresConnection(url).execute("SELECT pg_terminate_backend(\(pid))")
            }
        }.start()
    }

    func block() throws {
        try holder.execute("BEGIN")
        try holder.execute("LOCK TABLE feed_writer IN ACCESS EXCLUSIVE MODE")
    }

    func release() throws { try holder.execute("ROLLBACK") }

    deinit { finished.signal() }
}

@Suite(.serialized) struct EngineSeamTests {
    private func sampleEvents(_ count: Int) -> [[UInt8]] {
        SampleEvents(.init(count: count, tenants: 6)).map { Array(SampleEvents.ndjson($0).utf8) }
    }

    /// Two partitions, one revoked and given back with a third: the messages a new owner reads
    /// again are skipped, also after a message of a partition nothing was stored of (the engine
    /// remembers the last partition it looked up and from where its messages are new).
    private func rebalancingSource(_ fixture: PipelineFixture, checkAtRevocation: @escaping (ScriptedSource) throws -> Void) -> ScriptedSource {
        var source: ScriptedSource!
        source = ScriptedSource(name: "scripted:test", events: sampleEvents(300), steps: [
            .event(.assigned([0, 1])),
            .messages(partition: 0, offsets: 0..<100),
            .messages(partition: 1, offsets: 0..<100),
            .event(.revoked([1])),
            .check { try checkAtRevocation(source) },
            .event(.assigned([1, 2])),
            .messages(partition: 1, offsets: 95..<97),
            .messages(partition: 2, offsets: 0..<1),
            .messages(partition: 1, offsets: 97..<100),
        ])
        return source
    }

    /// The engine adopts positions on assignment, commits everything on revocation before the
    /// source lets the partition go, and skips what a shard stored when a partition comes back,
    /// also right after a message of a partition nothing was stored of.
    @Test func aScriptedSourceRunsThroughTheEngineWithRebalances() throws {
        let fixture = try PipelineFixture()
        var storedAtRevocation: [Int32: Int64] = [:]
        let source = rebalancingSource(fixture) { source in
            // Committed before the partition is given up: its lowest stored position is past all 100.
            storedAtRevocation = source.lowestStored([0, 1])
        }
        let summary = try fixture.engine(shards: 2, batchSize: 10_000).run(source)
        #expect(source.confirmed == [0: 0, 1: 100, 2: 0])
        #expect(storedAtRevocation == [0: 100, 1: 100])
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
        let source = ScriptedSource(name: "aborting:test", events: sampleEvents(100),
                                    steps: [.event(.assigned([0])), .messages(partition: 0, offsets: 0..<100), .abort])
        #expect(throws: IngestError.self) { try engine.run(source) }
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 0)
        #expect(try fixture.count("SELECT coalesce(max(next_offset), 0) FROM ingest_offsets WHERE source = 'aborting:test'") == 0)
    }

    /// No flush can commit (a lock every flush takes first) and the rings fill up: the engine
    /// still pulls the source, with no room, so a revocation is served at once instead of
    /// waiting for the flushers. Here the revocation comes with the lock's end; it commits what
    /// the rings held, and the partition comes back where that commit left it.
    @Test func aRevocationIsPulledWhileTheRingsAreFull() throws {
        let fixture = try PipelineFixture()
        let flushes = try FlushBlocker(fixture)
        let configuration = IngestConfiguration(shards: 1, batchSize: 10, maxBatchAge: .milliseconds(10), ringCapacity: 64)
        let source = ScriptedSource(name: "full-rings:test", events: sampleEvents(100), steps: [
            .event(.assigned([0])),
            .check { try flushes.block() },
            .messages(partition: 0, offsets: 0..<100),
        ])
        source.whenFull = { _ in
            try flushes.release()
            return [.event(.revoked([0])), .event(.assigned([0]))]
        }
        let summary = try IngestEngine(database: fixture.database, configuration: configuration).run(source)
        #expect(source.pulledWhileFull, "the engine never pulled while the rings were full")
        let resumedAt = try #require(source.confirmed[0])
        #expect(resumedAt > 0 && resumedAt < 100, "the revocation committed what the rings held: \(resumedAt)")
        #expect(summary.stored == 100 && summary.alreadyCommitted == 0, "\(summary)")
        #expect(try fixture.count("SELECT count(DISTINCT id) FROM audit_log") == 100)
    }

    /// A shard over its byte budget (large events, no flush can commit) leaves ring slots free:
    /// the loop then waits for a flusher's doorbell (2 ms at most) between pulls instead of
    /// pulling again at once, so a stalled database does not cost a core.
    @Test func aShardOverItsByteBudgetMakesTheLoopWaitNotSpin() throws {
        let fixture = try PipelineFixture()
        let flushes = try FlushBlocker(fixture)
        // 100 events of about 40 KB: each takes a row batch of its own, and 1 MiB holds 8.
        let padding = String(repeating: "x", count: 40_000)
        let events = sampleEvents(100).map { event in
            Array(String(decoding: event, as: UTF8.self)
                .replacingOccurrences(of: #""metadata":{"#, with: #""metadata":{"padding":"\#(padding)","#).utf8)
        }
        #expect(events.allSatisfy { $0.count > 40_000 })
        let configuration = IngestConfiguration(shards: 1, batchSize: 10_000, maxBatchAge: .milliseconds(10), maxShardBytes: 1 << 20)
        let source = ScriptedSource(name: "byte-budget:test", events: events, steps: [
            .event(.assigned([0])),
            .check { try flushes.block() },
        ] + (0..<100).map { .messages(partition: 0, offsets: Int64($0)..<Int64($0 + 1)) })
        var firstFullPull: ContinuousClock.Instant?
        var fiftyPulls: Duration?
        source.whenFull = { pulls in
            if pulls == 1 { firstFullPull = .now }
            guard pulls == 51, let firstFullPull else { return nil }
            fiftyPulls = firstFullPull.duration(to: .now)
            try flushes.release()
            return []
        }
        let summary = try IngestEngine(database: fixture.database, configuration: configuration).run(source)
        let waited = try #require(fiftyPulls, "the loop never pulled while the shard was over its bytes")
        // 50 waits of up to 2 ms each: a loop that spins makes 50 pulls in well under a millisecond.
        #expect(waited >= .milliseconds(80), "50 pulls took \(waited): the loop did not wait between them")
        #expect(summary.stored == 100, "\(summary)")
    }

    /// A run folds the counts during the run too (`foldEvery`), not only at its end, and beside
    /// the flushes: while the run waits at the revocation, the 200 rows flushed so far reach
    /// tenant_metrics and leave tenant_metrics_delta.
    @Test func countsAreFoldedDuringARun() throws {
        let fixture = try PipelineFixture()
        var foldedDuringTheRun = false
        let source = rebalancingSource(fixture) { _ in
            foldedDuringTheRun = waitUntil(timeout: .seconds(30), interval: .milliseconds(20)) {
                try fixture.count("SELECT coalesce(sum(audit_log_count), 0) FROM tenant_metrics") == 200
                    && fixture.count("SELECT count(*) FROM tenant_metrics_delta") == 0
            }
        }
        _ = try fixture.engine(shards: 1, batchSize: 10_000, foldEvery: .zero).run(source)
        #expect(foldedDuringTheRun)
    }

    /// A fold never stops the flushes: while another session's lock on tenant_metrics holds the
    /// fold up (as a fold of a minute of a large run's deltas takes seconds), rows go on landing.
    /// The flush sessions' lock timeout is longer than the wait here, so a fold on a flusher's
    /// session would keep the second batch back past it.
    @Test func aFoldHeldUpNeverStopsTheFlushes() throws {
        let fixture = try PipelineFixture()
        // The months exist beforehand: creating one would wait for the lock too.
        try fixture.connection.execute("""
            SELECT ensure_month_partitions(month::date)
            FROM generate_series(date_trunc('month', now()) - interval '36 months', date_trunc('month', now()) + interval '2 months',
                                 interval '1 month') AS month
            """)
        let holder = try PostgresConnection(fixture.url)
        defer { holder.close() }
        var landed = (first: false, second: false)
        var foldWaited = false
        var source: ScriptedSource!
        source = ScriptedSource(name: "scripted:fold", events: sampleEvents(200), steps: [
            .check { try holder.execute("BEGIN; LOCK TABLE tenant_metrics IN EXCLUSIVE MODE") },
            .event(.assigned([0])),
            .messages(partition: 0, offsets: 0..<100),
            .check {
                landed.first = waitUntil(timeout: .seconds(30), interval: .milliseconds(20)) { try fixture.count("SELECT count(*) FROM audit_log") == 100 }
                foldWaited = waitUntil(timeout: .seconds(30), interval: .milliseconds(20)) {
                    try fixture.count("""
                        SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE '%fold_tenant_metrics_deltas%'
                        """) == 1
                }
            },
            .messages(partition: 0, offsets: 100..<200),
            .check {
                landed.second = waitUntil(timeout: .seconds(30), interval: .milliseconds(20)) { try fixture.count("SELECT count(*) FROM audit_log") == 200 }
                try holder.execute("COMMIT")
            },
        ])
        var configuration = IngestConfiguration(shards: 1, batchSize: 10_000, maxBatchAge: .milliseconds(50))
        configuration.foldEvery = .zero
        configuration.lockTimeout = .seconds(120)
        let summary = try IngestEngine(database: fixture.database, configuration: configuration).run(source)
        #expect(landed.first && foldWaited, "the first batch landed: \(landed.first); a fold waited for the lock: \(foldWaited)")
        #expect(landed.second, "the second batch did not land while the fold was held up")
        #expect(summary.stored == 200)
        #expect(try fixture.count("SELECT coalesce(sum(audit_log_count), 0) FROM tenant_metrics") == 200, "the run's last fold took every count")
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
