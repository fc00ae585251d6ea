import AuditCore
import Foundation
import Logging
import Postgres

/// The flushers of a run, one per shard, each on a thread of its own behind a lock-free ring:
/// what the router (`EventRouter`) sends batches, watermarks and commands to, with the
/// backpressure that makes the sending thread wait (in bytes, in events, in ring slots), and
/// the run's hard stop (`abort`).
///
/// One thread (the source's) calls `send`, `drain` and `finish`: it is the single producer of
/// every ring.
final class FlusherPool: Sendable {
    private let flushers: [Flusher]
    /// The flushers ring it when they free room; the sending thread waits on it for room.
    let roomFreed = Doorbell()
    private let finished: [DispatchSemaphore]
    private let aborted = StopSignal()
    private let clock: ThreadClock
    /// Folds the counts the flushes append while the run goes on.
    private let folder: CountFolder

    init(streams: SourceStreams, configuration: IngestConfiguration, database: PostgresConfiguration,
         partitions: PartitionManager, statistics: IngestStatistics, deadLetterSink: (any DeadLetterSink)?, logger: Logger) {
        let stop = aborted, roomFreed = roomFreed
        flushers = (0..<configuration.shards).map { shard in
            Flusher(shard: shard, streams: streams, configuration: configuration, database: database, partitions: partitions,
                    statistics: statistics, deadLetterSink: deadLetterSink, aborted: stop, roomFreed: roomFreed, logger: logger)
        }
        finished = flushers.map { _ in DispatchSemaphore(value: 0) }
        clock = configuration.clock
        folder = CountFolder(database: database, every: configuration.foldEvery, lockTimeout: configuration.lockTimeout, logger: logger)
    }

    var count: Int { flushers.count }

    /// Starts each flusher on its thread.
    func start() {
        for (flusher, done) in zip(flushers, finished) {
            let thread = Thread {
                flusher.run()
                done.signal()
            }
            thread.name = "flusher-\(flusher.shard)"
            thread.stackSize = 1 << 20
            thread.start()
        }
        folder.start()
    }

    /// True once a flusher failed or `abort()` was called: the source should stop reading.
    var isAborted: Bool { aborted.isRaised }

    /// Stops the flushers without flushing: after a fatal error, or when a stop's deadline passed
    /// (the run's `StopSignal` asks for a graceful stop: drain first; this is the hard one).
    func abort() {
        aborted.raise()
    }

    /// Asks every flusher to commit what it was sent, and waits for it. Returns false when a
    /// flusher failed meanwhile, or (with a `deadline`) when the deadline passed first.
    func drain(deadline: ContinuousClock.Instant? = nil) -> Bool {
        let done = flushers.map { _ in DispatchSemaphore(value: 0) }
        for (shard, semaphore) in done.enumerated() { send(.flushNow(semaphore), to: shard) }
        for semaphore in done {
            while semaphore.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
                if isAborted { return false }
                if let deadline, clock.now() >= deadline { return false }
            }
        }
        return !isAborted
    }

    /// Ends every flusher (each commits what it was sent first) and waits for them. Throws the
    /// first flusher failure.
    func finish() throws {
        folder.stop()
        for shard in flushers.indices { send(.end, to: shard) }
        finished.forEach { $0.wait() }
        if let failure = flushers.lazy.compactMap({ $0.failure.withLock { $0 } }).first { throw failure }
    }

    /// A batch `shard`'s flusher has committed and handed back, for reuse.
    func spentBatch(of shard: Int) -> RowBatch? {
        flushers[shard].spentBatches.tryPop()
    }

    /// Per shard, the events it holds (in its ring and its unflushed batch), or the ring slots in
    /// use when more (watermarks of many partitions), out of `IngestConfiguration.eventsInFlight`.
    var ringOccupancy: [Int] { flushers.map { max($0.rowBudget.heldCount, $0.ring.count) } }

    /// How many events the fullest shard can take without waiting (in room for rows and in
    /// free ring slots, whichever is less).
    var freeSlots: Int { flushers.map { min($0.ring.capacity - $0.ring.count, $0.rowBudget.remaining) }.min() ?? 0 }

    /// True when a shard holds its whole byte budget: sending would wait.
    var isOverByteBudget: Bool { flushers.contains { $0.budget.isExhausted } }

    /// Sends `item` to `shard`'s flusher, waiting while the shard holds its budget or its ring is
    /// full. Once the run is aborted nothing more is sent: an item dropped while waiting must not
    /// be followed by one that moves its shard's position past it (the flushers commit nothing
    /// after an abort either).
    func send(_ item: ShardItem, to shard: Int) {
        if aborted.isRaised { return }
        let flusher = flushers[shard]
        let bytes = item.byteCount, rows = item.rowCount
        if bytes > 0 {
            // Backpressure in bytes and events: wait while the shard holds its budget of either
            // (it flushes at half the bytes, or at a batch of events).
            func mustWait() -> Bool { flusher.budget.isExhausted || (rows > 0 && flusher.rowBudget.isExhausted) }
            while mustWait() {
                if aborted.isRaised { return }
                roomFreed.wait(timeout: .milliseconds(2)) { !mustWait() }
            }
            flusher.budget.take(bytes)
            flusher.rowBudget.take(rows)
        }
        let ring = flusher.ring
        // Backpressure: a full ring means the flusher is behind. Wait for room (or give up when stopping).
        while !ring.tryPush(item) {
            if aborted.isRaised { return }
            roomFreed.wait(timeout: .milliseconds(2)) { ring.count < ring.capacity }
        }
        flusher.itemArrived.ring()
    }
}
