import AuditCore
import Foundation
import Logging
import Postgres

/// The engine's side of a running source: what the source hands its partitions, messages and
/// positions to, in order, on its one thread. Each message goes decode → route → encode →
/// hand-off (`EventRouter`); the flushers commit it with its position.
public final class IngestFeed {
    /// The run's name (the one source positions are stored under, unless `streams` says more).
    public let source: String
    /// Where each partition is stored.
    public let streams: SourceStreams
    public let configuration: IngestConfiguration
    public let statistics: IngestStatistics
    let router: EventRouter
    private let store: StreamOffsets
    private let database: PostgresConfiguration
    private let tenants: TenantDirectory
    private let partitions: PartitionManager
    private let stop: StopSignal
    private let progress: ((IngestStatistics.Snapshot) -> Void)?
    private let logger: Logger
    private var control: PostgresConnection?
    /// Messages handed over since `statistics.received` was last updated.
    private var unpublished = 0
    private var lastProgress = ContinuousClock.now
    private var lastTenantRefresh = ContinuousClock.now

    init(streams: SourceStreams, configuration: IngestConfiguration, database: PostgresConfiguration, router: EventRouter,
         tenants: TenantDirectory, partitions: PartitionManager, control: PostgresConnection, stop: StopSignal,
         progress: ((IngestStatistics.Snapshot) -> Void)?, logger: Logger) {
        self.source = streams.name
        self.streams = streams
        self.configuration = configuration
        self.database = database
        self.router = router
        self.statistics = router.statistics
        self.tenants = tenants
        self.partitions = partitions
        self.control = control
        self.stop = stop
        self.progress = progress
        self.logger = logger
        store = StreamOffsets(streams: streams)
    }

    /// True once the run was asked to stop or a flusher failed: the source should return.
    public var shouldStop: Bool { stop.isRaised || router.pool.isAborted }

    /// Takes over `partitions` at what PostgreSQL holds for them (re-laying them when the shard
    /// count changed, see `OffsetStore.adopt`). Call before handing over any of their messages;
    /// the source resumes each at `resumeOffset(partition:)`. Retries while PostgreSQL is
    /// unreachable (for `within` at most, then throws); returns nil when asked to stop meanwhile.
    public func assign(_ partitions: [Int32], within limit: Duration? = nil) throws -> StoredPositions? {
        var attempt = 0
        let deadline = limit.map { ContinuousClock.now + $0 }
        while !stop.isRaised {
            do {
                let stored = try store.adopt(partitions: partitions, shardCount: configuration.shards,
                                             on: try controlConnection(), logger: logger)
                router.resetPartitions(partitions, to: stored)
                return stored
            } catch let error as PostgresError where error.isRetriable {
                if let deadline, ContinuousClock.now >= deadline {
                    throw IngestError(.interrupted, """
                        PostgreSQL did not answer within \(Int(limit!.secondsDouble)) s while partitions \(partitions) \
                        were being assigned (\(error)): stopping so the group can move them. Nothing is lost.
                        """)
                }
                attempt += 1
                control?.close()
                control = nil
                logger.warning("cannot read stored positions, retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                _ = RetryPolicy().wait(attempt: attempt, unless: stop)
            }
        }
        return nil
    }

    /// `partitions` are being taken away: commits everything handed over so far (every
    /// partition's), so the next owner starts where this run stopped. Returns false when a
    /// flusher failed or a stop came first; throws when the commit takes longer than `within`.
    @discardableResult
    public func revoke(_ partitions: [Int32], within limit: Duration? = nil) throws -> Bool {
        logger.info("partitions revoked: flushing in-flight events", metadata: ["partitions": "\(partitions)"])
        defer { statistics.metrics?.forgetLag(partitions, streams: streams) }
        if router.drain(deadline: limit.map { ContinuousClock.now + $0 }) { return true }
        guard !router.pool.isAborted, !stop.isRaised, let limit else { return false }
        throw IngestError(.interrupted, """
            PostgreSQL did not commit within \(Int(limit.secondsDouble)) s while partitions \(partitions) were being \
            revoked: stopping so the group can move them. Nothing is lost: the next owner reads them again.
            """)
    }

    /// Commits everything handed over so far and waits for it. Returns false when a flusher
    /// failed or a stop came first (the engine then ends the run).
    func drain() -> Bool {
        router.drain()
    }

    /// Month partitions this process has created so far.
    var partitionsCreated: Int { partitions.created }

    /// One message at `offset`; `next` is where the source goes on after it. `context` (when
    /// `configuration.needsMessageContext`) is what the message came with besides its bytes.
    public func message(partition: Int32, offset: Int64, next: Mark, bytes: UnsafeRawBufferPointer, context: MessageContext? = nil) {
        unpublished += 1
        router.submit(partition: partition, offset: offset, next: next, message: bytes, context: context)
    }

    /// A message the source could not hand over whole (an over-long line, a tombstone):
    /// dead-lettered with `rejection`.
    public func reject(partition: Int32, offset: Int64, next: Mark, rawMessage: UnsafeRawBufferPointer, rejection: Rejection) {
        unpublished += 1
        router.reject(partition: partition, offset: offset, next: next, rawMessage: rawMessage, rejection: rejection)
    }

    /// Hands the flushers the rows decoded so far. Call before waiting for input: rows are
    /// otherwise handed over in batches, at watermarks, or when the run ends.
    public func handOverRows() {
        router.handOverRows()
    }

    /// Every position of `partition` below `next` has been handed over: shards that got none of
    /// them advance too. Also where the feed publishes counters, reloads the tenant list when
    /// it is stale, and reports progress.
    public func watermark(partition: Int32, next: Mark) throws {
        router.watermark(partition: partition, next: next)
        if unpublished > 0 {
            let count = unpublished
            unpublished = 0
            statistics.update { $0.received += count }
        }
        let now = ContinuousClock.now
        if lastTenantRefresh.duration(to: now) >= tenants.refreshInterval {
            lastTenantRefresh = now
            try refreshTenants()
        }
        if let progress, lastProgress.duration(to: now) >= .milliseconds(500) {
            lastProgress = now
            progress(statistics.snapshot)
        }
    }

    /// How many messages can be handed over now without waiting (0 while a shard holds its byte
    /// budget). Each counts against its shard's events in flight and takes at most a slot in
    /// its ring (rows travel in batches), and each partition's watermark a slot in every ring:
    /// half of what the fullest shard can take, whatever the number of partitions.
    public var room: Int { router.pool.isOverByteBudget ? 0 : router.pool.freeSlots / 2 }

    /// Waits until `room` is at least `wanted`, or a flusher freed some, or `timeout` passed:
    /// call it in a loop that also checks for a stop.
    public func waitForRoom(_ wanted: Int, timeout: Duration) {
        router.pool.roomFreed.wait(timeout: timeout) { room >= wanted }
    }

    /// Per shard, the events it holds in its ring and unflushed batch (or the ring slots in use,
    /// when more), out of `IngestConfiguration.eventsInFlight`.
    public var ringOccupancy: [Int] { router.pool.ringOccupancy }

    /// Per partition, the lowest position any shard stored (nil when PostgreSQL cannot say now).
    public func lowestStoredPositions(_ partitions: [Int32]) -> [Int32: Int64]? {
        guard !partitions.isEmpty, let connection = try? controlConnection() else { return nil }
        return try? store.lowestPositions(partitions: partitions, on: connection)
    }

    private func refreshTenants() throws {
        do {
            try tenants.refresh(on: try controlConnection())
            router.knownTenants = TenantTable(tenants.snapshot)
        } catch let error as PostgresError where error.isRetriable {
            // PostgreSQL restarting: keep the tenants known so far; the flushers wait for it,
            // and the next refresh reconnects.
            control?.close()
            control = nil
            logger.warning("cannot refresh the tenant list, keeping the cached one", metadata: ["error": "\(error)"])
        }
    }

    /// Runs `body` on the run's control connection (reconnecting once when it was lost).
    func onControl<Result>(_ body: (PostgresConnection) throws -> Result) throws -> Result {
        try body(try controlConnection())
    }

    /// Runs `body` on the run's control connection (best-effort bookkeeping of a source, such as
    /// file checkpoints): a failure is logged, not thrown.
    func bestEffort(_ what: String, _ body: (PostgresConnection) throws -> Void) {
        do {
            try body(try controlConnection())
        } catch {
            logger.warning("could not \(what); a later run records it", metadata: ["error": "\(error)"])
        }
    }

    private func controlConnection() throws -> PostgresConnection {
        if let control, control.isOpen { return control }
        let fresh = try PostgresConnection(configuration: database)
        control = fresh
        return fresh
    }

    /// Closes the connection the feed opened itself (not the engine's).
    func close(keeping engineConnection: PostgresConnection) {
        if let control, control !== engineConnection { control.close() }
    }
}
