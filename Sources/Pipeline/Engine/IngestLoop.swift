import Logging
import Postgres

/// The engine's one loop: pulls a source and does everything else a run needs between the
/// source and the flushers, on one thread.
///
///     while not stopping:
///         room  = what the rings can take (pausing a source that stays blocked, `Backpressure`)
///         event = source.next(room)
///         assigned → adopt the stored positions, confirm       revoked/lost → commit, release
///         messages → decode, route, encode, hand off (EventRouter); watermark each partition
///         every 100 ms: the source's tick, tenant reload, progress
///
/// `IngestEngine.run` starts the flushers before and drains them after.
struct IngestLoop {
    let source: any IngestSource
    let run: SourceRun
    let router: EventRouter
    let tenants: TenantDirectory
    let stop: StopSignal
    let progress: ((IngestStatistics.Snapshot) -> Void)?
    let logger: Logger
    private var clock: ThreadClock { run.configuration.clock }
    private var store: StreamOffsets
    private var backpressure: Backpressure
    private var lastTick: ContinuousClock.Instant
    private var lastProgress: ContinuousClock.Instant
    private var lastTenantRefresh: ContinuousClock.Instant

    init(source: any IngestSource, run: SourceRun, router: EventRouter, tenants: TenantDirectory, stop: StopSignal,
         progress: ((IngestStatistics.Snapshot) -> Void)?, logger: Logger) {
        self.source = source
        self.run = run
        self.router = router
        self.tenants = tenants
        self.stop = stop
        self.progress = progress
        self.logger = logger
        store = StreamOffsets(streams: run.streams)
        backpressure = Backpressure(pauseAfter: source.pauseAfter ?? .seconds(2), ringCapacity: run.configuration.ringCapacity / 2)
        let now = run.configuration.clock.now()
        (lastTick, lastProgress, lastTenantRefresh) = (now, now, now)
    }

    /// Pulls until the input ends or a stop (or a failed flusher) ends the run.
    mutating func pump() throws {
        while !run.isStopping {
            let room = try makeRoom()
            // No room: a pull for rebalances only, so a revocation never waits for the flushers;
            // while paused, a pull of one serves the group protocol.
            switch try source.next(room: room > 0 ? room : backpressure.isPaused ? 1 : 0) {
            case .assigned(let partitions):
                guard let stored = try assign(partitions) else { return }  // stopping
                try source.confirm(partitions, stored: stored)
            case .revoked(let partitions):
                guard try revoke(partitions) else { return }  // a flusher failed or a stop
                try source.release(partitions)
            case .lost(let partitions):
                // Taken away without a handover (session timeout, max.poll.interval.ms). What is in
                // flight is committed anyway: the compare-and-set in each flush refuses it if the new
                // owner has committed these partitions since, so nothing is stored twice; ending the
                // run instead would turn every missed heartbeat under load into a restart.
                logger.warning("partitions lost without a handover: committing what is in flight (fenced if another member already took over)",
                               metadata: [LogKey.partitions: "\(partitions)"])
                guard try revoke(partitions) else { return }
                try source.release(partitions)
            case .messages(let batch):
                hand(batch)
            case .idle:
                router.handOverRows()  // nothing more is coming soon: let the flushers have it
            case .end:
                return
            }
            try tickIfDue()
        }
    }

    // MARK: Messages

    private func hand(_ batch: SourceBatch) {
        for message in batch.messages {
            if let rejection = message.rejection {
                router.reject(partition: message.partition, offset: message.offset, next: message.next,
                              rawMessage: message.bytes, rejection: rejection)
            } else {
                router.submit(partition: message.partition, offset: message.offset, next: message.next, message: message.bytes,
                              context: message.context)
            }
        }
        for (partition, next) in batch.watermarks { router.watermark(partition: partition, next: next) }
        if !batch.messages.isEmpty {
            let count = batch.messages.count
            run.statistics.update { $0.received += count }
        }
    }

    // MARK: Room

    /// How many messages the next pull may take (0: none this round; it has waited instead).
    /// Takes only what the rings can hold, so the engine's thread never blocks in a full ring and
    /// a Kafka source keeps serving its group; pauses and resumes fetching as `backpressure`
    /// decides (while paused, a pull of one serves the group protocol).
    private mutating func makeRoom() throws -> Int {
        let room = Self.room(in: router.pool)
        guard source.pauseAfter != nil else {
            if room >= backpressure.minimumRoom { return room }
            router.handOverRows()
            waitForRoom()
            return 0
        }
        switch backpressure.update(room: room, now: clock.now()) {
        case .pause:
            logger.warning("flushers are behind: pausing fetches until they catch up", metadata: [
                LogKey.stalledSeconds: "\(backpressure.pauseAfter.secondsDouble)", LogKey.ringOccupancy: "\(run.ringOccupancy)"])
            run.statistics.update { $0.pauses += 1 }
            source.pause()
        case .resume:
            logger.info("flushers caught up: fetching again")
            source.resume()
        case .none:
            break
        }
        guard room < backpressure.minimumRoom else { return room }
        if !backpressure.isPaused { waitForRoom() }  // a flusher frees room within a flush
        return 0
    }

    /// What the rings can take now: half their free slots (a message may become two items), none
    /// while the shards' bytes are over budget.
    private static func room(in pool: FlusherPool) -> Int {
        pool.isOverByteBudget ? 0 : pool.freeSlots / 2
    }

    /// Sleeps until a flusher frees room (its doorbell), 2 ms at most.
    private func waitForRoom() {
        let (pool, minimum) = (router.pool, backpressure.minimumRoom)
        pool.roomFreed.wait(timeout: .milliseconds(2)) { Self.room(in: pool) >= minimum }
    }

    // MARK: Rebalances

    /// A group's rebalances are news; a file source's one partition per input is not.
    private var rebalanceLogLevel: Logger.Level { source.rebalanceTimeout == nil ? .debug : .info }

    /// Takes over `partitions` at what PostgreSQL holds for them (re-laying them when the shard
    /// count changed, see `OffsetStore.adopt`). Retries while PostgreSQL is unreachable (for the
    /// source's `rebalanceTimeout` at most, then throws); returns nil when asked to stop meanwhile.
    private func assign(_ partitions: [Int32]) throws -> StoredPositions? {
        logger.log(level: rebalanceLogLevel, "partitions assigned", metadata: [LogKey.partitions: "\(partitions)"])
        let limit = source.rebalanceTimeout
        let deadline = limit.map { clock.now() + $0 }
        var attempt = 0
        while !stop.isRaised {
            do {
                let stored = try run.control.run {
                    try store.adopt(partitions: partitions, shardCount: run.configuration.shards, on: $0, logger: logger)
                }
                router.resetPartitions(partitions, to: stored)
                return stored
            } catch let error as PostgresError where error.isRetriable {
                if let deadline, clock.now() >= deadline {
                    throw IngestError(.interrupted, """
                        PostgreSQL did not answer within \(Int(limit!.secondsDouble)) s while partitions \(partitions) \
                        were being assigned (\(error)): stopping so the group can move them. Nothing is lost.
                        """)
                }
                attempt += 1
                run.control.drop()
                logger.warning("cannot read stored positions, retrying", metadata: [LogKey.error: "\(error)", LogKey.attempt: "\(attempt)"])
                _ = RetryPolicy(clock: clock).wait(attempt: attempt, unless: stop)
            }
        }
        return nil
    }

    /// `partitions` are being taken away: commits everything handed over so far (every
    /// partition's), so the next owner starts where this run stopped. Returns false when a
    /// flusher failed or a stop came first; throws when the commit takes longer than the source's
    /// `rebalanceTimeout`.
    private func revoke(_ partitions: [Int32]) throws -> Bool {
        logger.log(level: rebalanceLogLevel, "partitions revoked: flushing in-flight events", metadata: [LogKey.partitions: "\(partitions)"])
        defer { run.statistics.metrics?.forgetLag(partitions, streams: run.streams) }
        let limit = source.rebalanceTimeout
        if router.drain(deadline: limit.map { clock.now() + $0 }) { return true }
        guard !router.pool.isAborted, !stop.isRaised, let limit else { return false }
        throw IngestError(.interrupted, """
            PostgreSQL did not commit within \(Int(limit.secondsDouble)) s while partitions \(partitions) were being \
            revoked: stopping so the group can move them. Nothing is lost: the next owner reads them again.
            """)
    }

    // MARK: Cadence

    /// About ten times a second: the source reports; the tenant list is reloaded when stale;
    /// progress twice a second.
    private mutating func tickIfDue() throws {
        let now = clock.now()
        guard lastTick.duration(to: now) >= .milliseconds(100) else { return }
        lastTick = now
        source.tick()
        if lastTenantRefresh.duration(to: now) >= tenants.refreshInterval {
            lastTenantRefresh = now
            try refreshTenants()
        }
        if let progress, lastProgress.duration(to: now) >= .milliseconds(500) {
            lastProgress = now
            progress(run.statistics.snapshot)
        }
    }

    private func refreshTenants() throws {
        do {
            try run.control.run { try tenants.refresh(on: $0) }
            router.knownTenants = TenantTable(tenants.snapshot)
            router.redaction = tenants.redaction
        } catch let error as PostgresError where error.isRetriable {
            // PostgreSQL restarting: keep the tenants known so far; the flushers wait for it,
            // and the next refresh reconnects.
            run.control.drop()
            logger.warning("cannot refresh the tenant list, keeping the cached one", metadata: [LogKey.error: "\(error)"])
        }
    }
}
