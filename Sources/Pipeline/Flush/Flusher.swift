import AuditCore
import Foundation
import Logging
import Postgres
import Synchronization

/// One shard's writer: drains its ring, groups rows, and flushes them in one transaction on its
/// own connection when the batch is full or old enough. Runs on a thread of its own
/// (`FlusherPool` starts it); only `failure` and the shared counters are read from elsewhere.
final class Flusher: @unchecked Sendable {  // state below is touched only by the flusher thread
    let shard: Int
    let ring: SPSCRing<ShardItem>
    /// Bytes held by this shard (its rows' buffers in the ring and the unflushed batch): taken by
    /// the source, given back here after each flush.
    let budget: Budget
    /// Events held by this shard (in its ring and its batch), at most
    /// `configuration.eventsInFlight`: the ring carries rows in batches, and this keeps as many
    /// events in flight as a ring of single events did.
    let rowBudget: Budget
    /// Bytes of the items in the current batch (its events are `rows.count`).
    private var batchBytes = 0
    let streams: SourceStreams
    let configuration: IngestConfiguration
    let database: PostgresConfiguration
    private let partitions: PartitionManager
    private let statistics: IngestStatistics
    private let aborted: StopSignal
    /// Rung by the source after each item it pushes into `ring`: an idle flusher waits on it.
    let itemArrived = Doorbell()
    /// Rung whenever this flusher frees room: after a pop from its full ring, and after a flush
    /// gave back its budgets.
    private let roomFreed: Doorbell
    private let retryPolicy: RetryPolicy
    private let transaction: FlushTransaction
    private let deadLetterSink: (any DeadLetterSink)?
    let logger: Logger

    var connection: PostgresConnection?
    private var rows: [EncodedRow] = []
    /// The batches `rows` came in: their buffers hold the rows' bytes, so they stay until the
    /// flush that stores those rows is done.
    private var batches: [RowBatch] = []
    /// Flushed batches going back to the source thread to be filled again (this thread pushes,
    /// the source pops): a steady run allocates few batches. A batch that finds it full is
    /// freed, which bounds what is kept for reuse (a larger pool measured no fewer page faults
    /// and a higher max RSS).
    let spentBatches = SPSCRing<RowBatch>(capacity: 16)
    private var deadLetters: [DeadLetter] = []
    private var positions = ShardPositions()
    private var oldestPending: ContinuousClock.Instant?

    /// Set when the flusher stopped on an error it cannot get past.
    let failure = Mutex<Error?>(nil)

    init(shard: Int, streams: SourceStreams, configuration: IngestConfiguration, database: PostgresConfiguration,
         partitions: PartitionManager, statistics: IngestStatistics, deadLetterSink: (any DeadLetterSink)?, aborted: StopSignal, roomFreed: Doorbell, logger: Logger) {
        self.shard = shard
        self.deadLetterSink = deadLetterSink
        self.ring = SPSCRing(capacity: configuration.ringCapacity)
        self.budget = Budget(limit: configuration.maxShardBytes)
        self.rowBudget = Budget(limit: configuration.eventsInFlight)
        self.streams = streams
        self.configuration = configuration
        self.database = database
        self.partitions = partitions
        self.statistics = statistics
        transaction = FlushTransaction(streams: streams, shard: shard, partitions: partitions, logger: logger)
        self.aborted = aborted
        self.roomFreed = roomFreed
        var logger = logger
        logger[metadataKey: LogKey.shard] = "\(shard)"
        self.logger = logger
        rows.reserveCapacity(configuration.batchSize)
        retryPolicy = RetryPolicy(clock: configuration.clock)
    }

    /// The thread body: returns after `.end` is flushed, or on a fatal error (in `failure`).
    func run() {
        do {
            var idleRounds = 0
            while true {
                if let item = ring.tryPop() {
                    // The ring was full: the source may wait for a slot (budget comes back only
                    // with a flush, which rings too).
                    if ring.count == ring.capacity - 1 { roomFreed.ring() }
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
                if aborted.isRaised { return }
                if let oldestPending, oldestPending.duration(to: configuration.clock.now()) >= configuration.maxBatchAge {
                    try flush()
                    continue
                }
                // Empty ring: spin briefly, then sleep until the source hands over an item, the
                // oldest pending row is due, or 5 ms passed (the abort is checked then).
                idleRounds += 1
                if idleRounds > 64 {
                    var timeout = Duration.milliseconds(5)
                    if let oldestPending {
                        timeout = min(timeout, configuration.maxBatchAge - oldestPending.duration(to: configuration.clock.now()))
                    }
                    if timeout > .zero { itemArrived.wait(timeout: timeout) { ring.count > 0 } }
                }
            }
            try flush()
        } catch {
            logger.error("flusher stopped", metadata: [LogKey.error: "\(error)"])
            failure.withLock { $0 = error }
            aborted.raise()
        }
        connection?.close()
    }

    private func accept(_ item: ShardItem) {
        batchBytes += item.byteCount
        switch item {
        case .rows(let batch):
            batches.append(batch)
            rows.append(contentsOf: batch.rows)
            // Records of the same messages that cannot be stored: committed with their siblings.
            for deadLetter in batch.deadLetters {
                deadLetters.append(deadLetter)
                advance(deadLetter.partition, to: deadLetter.next)
            }
            // A partition's rows come in the order read: the last of each run is its furthest.
            let added = batch.rows
            for index in added.indices where index == added.count - 1 || added[index + 1].partition != added[index].partition {
                advance(added[index].partition, to: added[index].next)
            }
        case .deadLetter(let deadLetter):
            deadLetters.append(deadLetter)
            advance(deadLetter.partition, to: deadLetter.next)
        case .watermark(let partition, let next):
            advance(partition, to: next)
        case .resetPartition(let partition, let committed, let layout):
            positions.reset(partition, committed: committed, layout: layout)
        case .flushNow, .end:
            break
        }
    }

    @inline(__always)
    private func advance(_ partition: Int32, to next: Mark) {
        if positions.advance(partition, to: next), oldestPending == nil { oldestPending = configuration.clock.now() }
    }

    // MARK: Flushing

    /// Writes everything pending in one transaction, retrying transient failures until PostgreSQL
    /// is back (or a stop is requested). Throws only what retrying cannot fix.
    private func flush() throws {
        oldestPending = nil
        // After an abort the source may have dropped items while later ones (a watermark, a
        // drain) still arrived: committing now could store a position past dropped rows.
        guard !aborted.isRaised else { return }
        guard !rows.isEmpty || !deadLetters.isEmpty || positions.moved else { return }
        let started = configuration.clock.now()
        let result = try commitRetrying()
        let elapsed = started.duration(to: configuration.clock.now()).secondsDouble
        statistics.update { counters in
            counters.stored += result.stored
            for deadLetter in result.deadLetters { counters.deadLettered[deadLetter.reason, default: 0] += 1 }
            counters.recordFlush(seconds: elapsed)
        }
        positions.commit()
        if let deadLetterSink, !result.deadLetters.isEmpty { publish(result.deadLetters, to: deadLetterSink) }
        rowBudget.giveBack(rows.count)
        rows.removeAll(keepingCapacity: true)
        for batch in batches where batch.capacity == RowBatch.defaultCapacity { _ = spentBatches.tryPush(batch) }
        batches.removeAll(keepingCapacity: true)
        deadLetters.removeAll()
        budget.giveBack(batchBytes)
        batchBytes = 0
        roomFreed.ring()
    }

    /// Runs the flush transaction until it commits. Transient failures are retried on a new
    /// connection after `retryPolicy`'s wait; a failure of the rows' own is theirs to carry (the
    /// transaction bisects it out), never retried here.
    private func commitRetrying() throws -> FlushTransaction.Result {
        var attempt = 0
        /// Statement timeouts in a row, and the statement they hit.
        var timeouts = (statement: String?.none, count: 0)
        while true {
            do {
                return try transaction.run(rows: &rows, deadLetters: deadLetters, from: positions.committed, to: positions.pending,
                                           layouts: positions.layouts, on: try connected())
            } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.queryCanceled {
                // A statement timeout is a busy server, a lock wait longer than the limit or a
                // batch too large for it: never the rows' fault, so nothing is dead-lettered.
                // Retried; the same statement timing out again and again stops the run.
                timeouts = timeouts.statement == error.statement ? (error.statement, timeouts.count + 1) : (error.statement, 1)
                guard timeouts.count < configuration.timeoutsBeforeStopping else { throw timedOut(error, times: timeouts.count) }
                attempt += 1
                try retry(after: error, attempt: attempt, "flush hit the statement timeout, retrying", [
                    "in_a_row": "\(timeouts.count)", "stop_after": "\(configuration.timeoutsBeforeStopping)"])
            } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.lockNotAvailable {
                // lock_timeout: another session holds a lock the flush needs. Wait for as long as
                // it holds it; the batch is intact.
                attempt += 1
                try retry(after: error, attempt: attempt,
                          "flush waits for a lock another session holds (CREATE INDEX, VACUUM FULL, LOCK ...); retrying")
            } catch let error as PostgresError where error.isRetriable {
                attempt += 1
                let delay = retryPolicy.delay(attempt: attempt)
                try retry(after: error, attempt: attempt, "flush failed, retrying",
                          ["retry_in_ms": "\(Int(delay.secondsDouble * 1000))"])
            } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.checkViolation && attempt < 3 {
                // A month partition vanished or was never seen: look again and create it.
                attempt += 1
                rows.distinctMonths.forEach(partitions.invalidate)
                logger.warning("row without partition, re-checking partitions", metadata: [LogKey.error: "\(error)"])
            }
        }
    }

    /// Drops the connection, logs, counts the retry and waits before the next attempt; rethrows
    /// `error` when the wait is cut short by an abort.
    private func retry(after error: PostgresError, attempt: Int, _ message: Logger.Message,
                       _ metadata: Logger.Metadata = [:]) throws {
        connection?.close()
        connection = nil
        logger.warning(message, metadata: metadata.merging(["error": "\(error)", "attempt": "\(attempt)"]) { kept, _ in kept })
        statistics.update { $0.retries += 1 }
        guard retryPolicy.wait(attempt: attempt, unless: aborted) else { throw error }
    }
}
