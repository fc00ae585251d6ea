import CoreMetrics
import AuditCore
import Foundation
import Logging
import Postgres

/// The ingestion engine: runs any `IngestSource` through the stages every event takes —
/// decode (AuditCore), route (tenant → shard), encode (binary COPY row), hand-off (a lock-free
/// ring per shard), flush (one transaction per batch with the positions it covers).
///
/// `run` is the one orchestration: check the schema, name the source, start the shards, feed
/// them from the source, drain, summarise. `backfill` and `consume` differ only in the source.
package final class IngestEngine: Sendable {
    package let configuration: IngestConfiguration
    package let database: PostgresConfiguration
    package let partitions: PartitionManager
    package let tenants: TenantDirectory
    /// Where the pipeline's swift-metrics values go.
    let metricsFactory: MetricsFactory
    let logger: Logger

    /// - Parameter metricsFactory: Default: the process's bootstrapped swift-metrics backend.
    package init(database: PostgresConfiguration, configuration: IngestConfiguration = .init(),
                metricsFactory: MetricsFactory = MetricsSystem.factory, logger: Logger = Logger(label: "audit-ingest.engine")) {
        self.database = database
        self.configuration = configuration
        self.metricsFactory = metricsFactory
        self.logger = logger
        partitions = PartitionManager(logger: logger)
        tenants = TenantDirectory(clock: configuration.clock, redactionKey: configuration.redactionKey,
                                  sourceFormat: configuration.mapper?.format ?? .native)
    }

    /// Connects and checks that `migrate` has run. Throws `.schemaNotMigrated` otherwise.
    package func prepare() throws -> PostgresConnection {
        let connection = try PostgresConnection(configuration: database)
        let present = try connection.execute("""
            SELECT to_regclass('audit_log') IS NOT NULL AND to_regclass('ingest_offsets') IS NOT NULL
               AND to_regclass('audit_dead_letter') IS NOT NULL AND to_regclass('tenant_metrics') IS NOT NULL
               AND to_regclass('ingest_offsets_retired') IS NOT NULL AND to_regclass('tenant_metrics_delta') IS NOT NULL
               AND to_regclass('source_body') IS NOT NULL AND to_regclass('audit_batch') IS NOT NULL
               AND to_regclass('tenant_feed_month') IS NOT NULL AND to_regclass('redaction_rule') IS NOT NULL
               AND EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('audit_dead_letter') AND attname = 'record')
            """).scalar
        guard present == "t" else {
            connection.close()
            throw IngestError(.schemaNotMigrated,
                              "the database \(database.connectionString.masked) has no audit-ingest schema or an older one: run audit-ingest migrate")
        }
        try partitions.refresh(on: connection)
        try tenants.refresh(on: connection)
        return connection
    }

    /// Runs `source` until its input ends, it stops by itself, or `stop` is raised; then commits
    /// what was handed over. Asked to stop, the commit may take `stopTimeout` at most (PostgreSQL
    /// may be down): past it, this throws `.interrupted` and the next run reads the rest again.
    ///
    /// - Parameters:
    ///   - deadLetterSink: also gets every committed dead letter (e.g. `KafkaDeadLetterTopic`).
    ///   - progress: called from the engine's thread about twice a second.
    package func run(_ source: some IngestSource, stop: StopSignal = StopSignal(), stopTimeout: Duration = .seconds(10),
                    deadLetterSink: (any DeadLetterSink)? = nil,
                    progress: ((IngestStatistics.Snapshot) -> Void)? = nil) throws -> IngestSummary {
        let started = configuration.clock.now()
        let control = ControlConnection(try prepare(), database: database, logger: logger)
        defer { control.close() }
        let name = try control.run { try source.identify(on: $0) }
        let createdBefore = partitions.created
        let router = EventRouter(streams: source.streams(named: name), configuration: configuration, database: database, partitions: partitions,
                                knownTenants: tenants.snapshot,
                                statistics: IngestStatistics(source: name, factory: metricsFactory),
                                deadLetterSink: deadLetterSink, logger: logger)
        router.redaction = tenants.redaction
        router.pool.start()
        // Asked to stop, the run ends within `stopTimeout`, wherever it waits.
        let stopDeadline = StopDeadline(stop: stop, timeout: stopTimeout) { router.pool.abort() }
        defer { stopDeadline.cancel() }
        let run = SourceRun(streams: router.streams, configuration: configuration, statistics: router.statistics, control: control,
                            pool: router.pool, partitions: partitions, stop: stop)
        do {
            try source.open(run)
            var loop = IngestLoop(source: source, run: run, router: router, tenants: tenants, stop: stop,
                                  progress: progress, logger: logger)
            try loop.pump()
        } catch {
            // The flushers end before the source lets its partitions go: no commit of this run
            // lands after another process took them over.
            router.pool.abort()
            try? router.finish()
            source.finish(committed: false)
            throw error
        }
        // Commit what was handed over; asked to stop, within the deadline (`stopDeadline`).
        let committed = router.drain()
        let flusherFailed = router.pool.isAborted && !stopDeadline.hasExpired
        if !committed { router.pool.abort() }
        let finished = Result { try router.finish() }
        source.finish(committed: committed)
        deadLetterSink?.flush()
        // A flusher's failure is the cause, unless the flushers were stopped at the deadline.
        if committed || flusherFailed { try finished.get() }
        guard committed else {
            throw IngestError(.interrupted, """
                stopped before everything read was committed (PostgreSQL did not answer within \
                \(Int(stopTimeout.secondsDouble)) s): nothing is lost, the next run reads those messages again
                """)
        }
        foldCounts(on: control)
        let snapshot = router.statistics.snapshot
        let totals = source.totals
        return IngestSummary(
            source: name, messages: totals.messages, extraRecords: snapshot.extraRecords,
            alreadyCommitted: totals.skippedBeforeResume + Int64(snapshot.alreadyCommitted),
            stored: snapshot.stored, deadLettered: snapshot.deadLettered,
            partitionsCreated: partitions.created - createdBefore,
            seconds: started.duration(to: configuration.clock.now()).secondsDouble, bytesRead: snapshot.bytesRead,
            stopped: stop.isRaised, heldBackBytes: totals.heldBackBytes)
    }
}

extension IngestEngine {
    /// Moves the run's counts from tenant_metrics_delta into tenant_metrics (migration 0010), so
    /// a finished run leaves tenant_metrics.audit_log_count exact on its own. Best effort: the
    /// counts are exact in tenant_metrics_current either way, and the next fold takes them.
    func foldCounts(on control: ControlConnection) {
        do {
            let folded = try control.run { try TenantCountFold.fold(on: $0) }
            logger.debug("folded counts into tenant_metrics", metadata: [LogKey.deltas: "\(folded)"])
            try control.run { try TenantCountFold.compactFeedMonths(on: $0) }
        } catch {
            logger.warning("could not fold counts into tenant_metrics (exact in tenant_metrics_current; the next rollup folds them)",
                           metadata: [LogKey.error: "\(error)"])
        }
    }
}
