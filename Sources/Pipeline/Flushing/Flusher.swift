import AuditCore
import Foundation
import Logging
import Postgres
import Synchronization

/// One shard's writer: drains its ring, groups rows, and flushes them in one transaction on its
/// own connection when the batch is full or old enough. Runs on a thread of its own
/// (`ShardGroup` starts it); only `failure` and the shared counters are read from elsewhere.
final class Flusher: @unchecked Sendable {  // state below is touched only by the flusher thread
    let shard: Int
    let ring: SPSCRing<ShardItem>
    /// Bytes held by this shard: taken by the source, given back here after each flush.
    let budget: ByteBudget
    /// Bytes of the items in the current batch.
    private var batchBytes = 0
    private let source: String
    private let configuration: IngestConfiguration
    private let database: PostgresConfiguration
    private let partitions: PartitionManager
    private let statistics: IngestStatistics
    private let stopRequested: StopSignal
    private let retryPolicy = RetryPolicy()
    private let deadLetterSink: (any DeadLetterSink)?
    private let logger: Logger

    private var connection: PostgresConnection?
    private var rows: [EncodedRow] = []
    private var deadLetters: [DeadLetter] = []
    private let store: OffsetStore
    /// Per partition: the position once everything received is stored.
    private var pendingOffsets: [Int32: Mark]
    /// Per partition: the next offset this shard has stored.
    private var committedOffsets: [Int32: Int64]
    /// Per partition: the layout id of this process's rows (checked by the compare-and-set).
    private var layouts: [Int32: Int64]
    private var oldestPending: ContinuousClock.Instant?

    /// Set when the flusher stopped on an error it cannot get past.
    let failure = Mutex<Error?>(nil)

    init(shard: Int, source: String, configuration: IngestConfiguration, database: PostgresConfiguration,
         partitions: PartitionManager, statistics: IngestStatistics, store: OffsetStore, committed: [Int32: Mark],
         layouts: [Int32: Int64],
         deadLetterSink: (any DeadLetterSink)?, stopRequested: StopSignal, logger: Logger) {
        self.shard = shard
        self.deadLetterSink = deadLetterSink
        self.ring = SPSCRing(capacity: configuration.ringCapacity)
        self.budget = ByteBudget(limit: configuration.maxShardBytes)
        self.source = source
        self.configuration = configuration
        self.database = database
        self.partitions = partitions
        self.statistics = statistics
        self.store = store
        self.pendingOffsets = committed
        self.committedOffsets = committed.mapValues(\.next)
        self.layouts = layouts
        self.stopRequested = stopRequested
        var logger = logger
        logger[metadataKey: "shard"] = "\(shard)"
        self.logger = logger
        rows.reserveCapacity(configuration.batchSize)
    }

    /// The thread body: returns after `.end` is flushed, or on a fatal error (in `failure`).
    func run() {
        do {
            var idleRounds = 0
            while true {
                if let item = ring.tryPop() {
                    idleRounds = 0
                    if case .end = item { break }
                    if case .flushNow(let done) = item {
                        defer { done.signal() }
                        try flush()
                        continue
                    }
                    accept(item)
                    // Full in rows, or holding half the shard's byte budget: a source waiting for
                    // bytes never waits for a batch that will not fill.
                    if rows.count + deadLetters.count >= configuration.batchSize || batchBytes >= budget.limit / 2 {
                        try flush()
                    }
                    continue
                }
                if stopRequested.isRaised { return }
                if let oldestPending, oldestPending.duration(to: .now) >= configuration.maxBatchAge {
                    try flush()
                    continue
                }
                // Empty ring: spin briefly, then sleep in short steps (a ring refill takes ~µs).
                idleRounds += 1
                if idleRounds > 64 { usleep(idleRounds > 1024 ? 1000 : 100) }
            }
            try flush()
        } catch {
            logger.error("flusher stopped", metadata: ["error": "\(error)"])
            failure.withLock { $0 = error }
            stopRequested.raise()
        }
        connection?.close()
    }

    private func accept(_ item: ShardItem) {
        batchBytes += item.byteCount
        switch item {
        case .row(let row):
            rows.append(row)
            advance(row.partition, to: row.next)
        case .deadLetter(let deadLetter):
            deadLetters.append(deadLetter)
            advance(deadLetter.partition, to: deadLetter.next)
        case .watermark(let partition, let next):
            advance(partition, to: next)
        case .resetPartition(let partition, let committed, let layout):
            pendingOffsets[partition] = Mark(next: committed, prefixHash: nil)
            committedOffsets[partition] = committed
            layouts[partition] = layout
        case .flushNow, .end:
            break
        }
    }

    @inline(__always)
    private func advance(_ partition: Int32, to next: Mark) {
        if next.next > pendingOffsets[partition]?.next ?? 0 {
            pendingOffsets[partition] = next
            if oldestPending == nil { oldestPending = .now }
        }
    }

    /// True when some partition's position moved since the last commit.
    private var positionsMoved: Bool {
        pendingOffsets.contains { committedOffsets[$0.key] != $0.value.next }
    }

    // MARK: Flushing

    /// Writes everything pending in one transaction, retrying transient failures until PostgreSQL
    /// is back (or a stop is requested). Throws only what retrying cannot fix.
    private func flush() throws {
        oldestPending = nil
        guard !rows.isEmpty || !deadLetters.isEmpty || positionsMoved else { return }
        let started = ContinuousClock.now
        var attempt = 0
        var timeouts = 0
        var result: FlushResult
        while true {
            do {
                result = try flushOnce(splittingOnTimeout: timeouts >= 2)
                break
            } catch let error as PostgresError where error.sqlState == "57014" && timeouts < 2 {
                // A statement timeout may be a busy moment (retry once as it is) or a batch too
                // large for the limit: then COPY in halves, down to one row, which is
                // dead-lettered with the SQLSTATE if even it times out.
                timeouts += 1
                connection?.close()
                connection = nil
                logger.warning("flush hit the statement timeout", metadata: [
                    "error": "\(error)", "next": "\(timeouts >= 2 ? "copy the batch in halves" : "retry")"])
                statistics.update { $0.retries += 1 }
            } catch let error as PostgresError where error.isRetriable {
                attempt += 1
                connection?.close()
                connection = nil
                let delay = retryPolicy.delay(attempt: attempt)
                logger.warning("flush failed, retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)",
                                                                    "retry_in_ms": "\(Int(delay.secondsDouble * 1000))"])
                statistics.update { $0.retries += 1 }
                guard retryPolicy.wait(attempt: attempt, unless: stopRequested) else { throw error }
            } catch let error as PostgresError where error.sqlState == "23514" && attempt < 3 {
                // A month partition vanished or was never seen: look again and create it.
                attempt += 1
                _ = try? connection?.execute("ROLLBACK")
                Set(rows.map(\.month)).forEach(partitions.invalidate)
                logger.warning("row without partition, re-checking partitions", metadata: ["error": "\(error)"])
            }
        }
        let elapsed = started.duration(to: .now).secondsDouble
        statistics.update { counters in
            counters.stored += result.stored
            for deadLetter in result.deadLetters { counters.deadLettered[deadLetter.reason, default: 0] += 1 }
            counters.recordFlush(seconds: elapsed)
        }
        committedOffsets = pendingOffsets.mapValues(\.next)
        if !result.deadLetters.isEmpty { deadLetterSink?.publish(result.deadLetters, source: source) }
        rows.removeAll(keepingCapacity: true)
        deadLetters.removeAll()
        budget.giveBack(batchBytes)
        batchBytes = 0
    }

    private struct FlushResult {
        var stored: Int
        var deadLetters: [DeadLetter]
    }

    private func flushOnce(splittingOnTimeout: Bool) throws -> FlushResult {
        let connection = try connected()
        try partitions.ensure(Set(rows.map(\.month)), on: connection)
        return try connection.transaction { connection in
            // Offsets first: the compare-and-set locks this shard's rows and proves no other
            // process has moved them since, before any row is written.
            if try !store.advance(shard: shard, from: committedOffsets, to: pendingOffsets, layouts: layouts, on: connection) {
                logger.warning("this batch was already committed (the reply to an earlier COMMIT was lost): not writing it again")
                return FlushResult(stored: rows.count, deadLetters: deadLetters)
            }
            rows.sort { $0.tenantID < $1.tenantID }  // tenant-grouped rows: better btree locality
            let rejected = rows.isEmpty ? [] : try copyIsolatingPoison(rows[...], splittingOnTimeout: splittingOnTimeout, on: connection)
            let rejectedPositions = Set(rejected.map { Position(partition: $0.partition, offset: $0.offset) })
            let stored = rejected.isEmpty
                ? rows[...]
                : ArraySlice(rows.filter { !rejectedPositions.contains(Position(partition: $0.partition, offset: $0.offset)) })
            let allDeadLetters = deadLetters + rejected
            if !allDeadLetters.isEmpty { try insertDeadLetters(allDeadLetters, on: connection) }
            if !stored.isEmpty { try countEvents(stored, on: connection) }
            return FlushResult(stored: stored.count, deadLetters: allDeadLetters)
        }
    }

    private func connected() throws -> PostgresConnection {
        if let connection, connection.isOpen { return connection }
        let fresh = try PostgresConnection(configuration: database)
        connection = fresh
        return fresh
    }

    private struct Position: Hashable {
        var partition: Int32
        var offset: Int64
    }

    /// COPYs `rows`; when PostgreSQL refuses them for a data reason, bisects (each attempt under a
    /// savepoint) down to the offending rows and returns them as dead letters with the SQLSTATE.
    private func copyIsolatingPoison(_ rows: ArraySlice<EncodedRow>, splittingOnTimeout: Bool,
                                     on connection: PostgresConnection) throws -> [DeadLetter] {
        try connection.execute("SAVEPOINT batch")
        do {
            try copy(rows, on: connection)
            try connection.execute("RELEASE SAVEPOINT batch")
            return []
        } catch let error as PostgresError
                    where (error.isDataError && error.sqlState != "23514") || (splittingOnTimeout && error.sqlState == "57014") {
            try connection.execute("ROLLBACK TO SAVEPOINT batch; RELEASE SAVEPOINT batch")
            guard rows.count > 1 else {
                let row = rows.first!
                logger.warning("row refused by PostgreSQL, dead-lettered", metadata: [
                    "partition": "\(row.partition)", "offset": "\(row.offset)", "sqlstate": "\(error.sqlState ?? "")"])
                return [DeadLetter(partition: row.partition, offset: row.offset, next: row.next, tenantID: row.tenantID,
                                   rawMessage: row.rawMessage, reason: Rejection.Kind.rejectedByDatabase.rawValue,
                                   detail: [error.message, error.detail].compactMap { $0 }.joined(separator: ": "),
                                   sqlState: error.sqlState)]
            }
            let middle = rows.startIndex + rows.count / 2
            return try copyIsolatingPoison(rows[..<middle], splittingOnTimeout: splittingOnTimeout, on: connection)
                + copyIsolatingPoison(rows[middle...], splittingOnTimeout: splittingOnTimeout, on: connection)
        }
    }

    private func copy(_ rows: ArraySlice<EncodedRow>, on connection: PostgresConnection) throws {
        try connection.copyBinary("COPY audit_log (\(AuditEvent.copyColumns)) FROM STDIN (FORMAT binary)") { writer in
            for row in rows {
                row.storage.withUnsafeBytes { writer.encoder.appendEncodedRows(UnsafeRawBufferPointer(rebasing: $0[..<row.rowLength])) }
                try writer.sendIfFull()
            }
        }
    }

    private func insertDeadLetters(_ deadLetters: [DeadLetter], on connection: PostgresConnection) throws {
        let sql = #"COPY audit_dead_letter (source, "partition", "offset", tenant_id, raw_payload, reason, sqlstate, detail) FROM STDIN (FORMAT binary)"#
        try connection.copyBinary(sql) { writer in
            for deadLetter in deadLetters {
                writer.encoder.beginRow(fieldCount: 8)
                writer.encoder.appendText(source)
                writer.encoder.appendInt32(deadLetter.partition)
                writer.encoder.appendInt64(deadLetter.offset)
                if let tenant = deadLetter.tenantID { writer.encoder.appendUUID(tenant.bytes) } else { writer.encoder.appendNull() }
                writer.encoder.appendBytes(deadLetter.rawMessage)
                writer.encoder.appendText(deadLetter.reason)
                if let sqlState = deadLetter.sqlState { writer.encoder.appendText(sqlState) } else { writer.encoder.appendNull() }
                if let detail = deadLetter.detail { writer.encoder.appendText(detail.replacingOccurrences(of: "\0", with: "")) }
                else { writer.encoder.appendNull() }
                try writer.sendIfFull()
            }
        }
    }

    /// Adds the batch's rows to tenant_metrics.audit_log_count per tenant per UTC day (exact:
    /// in the same transaction as the rows).
    private func countEvents(_ rows: ArraySlice<EncodedRow>, on connection: PostgresConnection) throws {
        struct TenantDay: Hashable { var tenant: UUIDValue; var day: Int32 }
        var counts: [TenantDay: Int] = [:]
        for row in rows { counts[TenantDay(tenant: row.tenantID, day: row.unixDay), default: 0] += 1 }
        let keys = counts.keys.sorted { ($0.tenant, $0.day) < ($1.tenant, $1.day) }
        try connection.query("""
            INSERT INTO tenant_metrics (tenant_id, "date", audit_log_count)
            SELECT t, DATE '1970-01-01' + d, n FROM unnest($1::uuid[], $2::int[], $3::bigint[]) AS u(t, d, n)
            ON CONFLICT (tenant_id, "date") DO UPDATE
                SET audit_log_count = tenant_metrics.audit_log_count + EXCLUDED.audit_log_count, updated_at = now()
            """, [
                "{" + keys.map { $0.tenant.description }.joined(separator: ",") + "}",
                "{" + keys.map { String($0.day) }.joined(separator: ",") + "}",
                "{" + keys.map { String(counts[$0]!) }.joined(separator: ",") + "}",
            ])
    }
}
