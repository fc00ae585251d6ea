import CoreMetrics
import AuditCore
import Foundation
import Logging
import Postgres

/// What one run did.
public struct IngestSummary: Sendable {
    public var source: String
    /// Messages in the input (lines of a file).
    public var messages: Int64
    /// Messages an earlier run had already committed (skipped now).
    public var alreadyCommitted: Int64
    public var stored: Int
    public var deadLettered: [String: Int]
    public var partitionsCreated: Int
    public var seconds: Double
    public var bytesRead: Int

    public var deadLetteredTotal: Int { deadLettered.values.reduce(0, +) }
    /// Messages handled by this run per second.
    public var eventsPerSecond: Double { seconds > 0 ? Double(stored + deadLetteredTotal) / seconds : 0 }
    /// True when every message is in audit_log or audit_dead_letter (now or from an earlier run).
    public var isComplete: Bool { alreadyCommitted + Int64(stored + deadLetteredTotal) == messages }
}

/// The ingestion engine: a source feeding a `ShardGroup`, with the schema checks and resume
/// bookkeeping around it.
public final class IngestEngine: Sendable {
    public let configuration: IngestConfiguration
    public let database: PostgresConfiguration
    public let partitions: PartitionManager
    public let tenants: TenantDirectory
    /// Where the pipeline's swift-metrics values go.
    let metricsFactory: MetricsFactory
    private let logger: Logger

    /// - Parameter metricsFactory: Default: the process's bootstrapped swift-metrics backend.
    public init(database: PostgresConfiguration, configuration: IngestConfiguration = .init(),
                metricsFactory: MetricsFactory = MetricsSystem.factory, logger: Logger = Logger(label: "audit-ingest.engine")) {
        self.database = database
        self.configuration = configuration
        self.metricsFactory = metricsFactory
        self.logger = logger
        partitions = PartitionManager(logger: logger)
        tenants = TenantDirectory()
    }

    /// Connects and checks that `migrate` has run. Throws `.schemaNotMigrated` otherwise.
    public func prepare() throws -> PostgresConnection {
        let connection = try PostgresConnection(configuration: database)
        let present = try connection.execute("""
            SELECT to_regclass('audit_log') IS NOT NULL AND to_regclass('ingest_offsets') IS NOT NULL
               AND to_regclass('audit_dead_letter') IS NOT NULL AND to_regclass('tenant_metrics') IS NOT NULL
            """).scalar
        guard present == "t" else {
            throw IngestError(.schemaNotMigrated,
                              "the database \(database.connectionString.masked) has no audit-ingest schema: run audit-ingest migrate")
        }
        try partitions.refresh(on: connection)
        try tenants.refresh(on: connection)
        return connection
    }

    /// Ingests a whole NDJSON file, resuming where an earlier run on the same content stopped.
    /// `progress` is called from the reading thread about twice a second.
    public func ingest(_ file: FileSource, progress: ((IngestStatistics.Snapshot) -> Void)? = nil) throws -> IngestSummary {
        let started = ContinuousClock.now
        let control = try prepare()
        defer { control.close() }
        let store = OffsetStore(source: file.name)
        let offsets = try store.load(on: control)
        try store.checkShardCount(configuration.shards, against: offsets)
        try store.claim(partitions: [0], shardCount: configuration.shards, on: control)
        let resume = offsets.resumeOffset(partition: 0, shardCount: configuration.shards)
        if resume > 0 { logger.info("resuming", metadata: ["source": "\(file.name)", "line": "\(resume)"]) }

        let statistics = IngestStatistics(source: file.name, factory: metricsFactory)
        let createdBefore = partitions.created
        let group = ShardGroup(source: file.name, configuration: configuration, database: database,
                               partitions: partitions, tenants: tenants, offsets: offsets,
                               statistics: statistics, logger: logger)
        group.start()

        var lastReport = ContinuousClock.now
        var sinceWatermark = 0
        var unpublished = 0  // lines handed over since `received` was last updated
        var tenantError: Error?
        let lines: Int64
        do {
            lines = try file.read(
                startingAt: resume, maxLineBytes: configuration.decoder.maxEventBytes,
                line: { offset, bytes in
                    group.submit(partition: 0, offset: offset, message: bytes)
                    sinceWatermark += 1
                    unpublished += 1
                    if sinceWatermark == 8192 {
                        sinceWatermark = 0
                        group.watermark(partition: 0, nextOffset: offset + 1)
                        statistics.update { [unpublished] in $0.received += unpublished }
                        unpublished = 0
                        do { try tenants.refreshIfStale(on: control) } catch { tenantError = error }
                        if let progress, lastReport.duration(to: .now) > .milliseconds(500) {
                            lastReport = .now
                            progress(statistics.snapshot)
                        }
                    }
                    return !group.isStopping && tenantError == nil
                },
                oversized: { offset, prefix in
                    unpublished += 1
                    group.reject(partition: 0, offset: offset, rawPrefix: prefix, rejection: Rejection(
                        .tooLarge, "line longer than \(configuration.decoder.maxEventBytes) bytes; raw_payload holds its first KiB"))
                },
                progress: { bytes in statistics.update { $0.bytesRead = bytes } })
        } catch {
            group.stop()
            try? group.finish()
            throw error
        }
        if let tenantError {
            group.stop()
            try? group.finish()
            throw tenantError
        }
        group.watermark(partition: 0, nextOffset: lines)
        statistics.update { [unpublished] in $0.received += unpublished }
        try group.finish()

        let snapshot = statistics.snapshot
        return IngestSummary(
            source: file.name, messages: lines, alreadyCommitted: resume + Int64(snapshot.alreadyCommitted),
            stored: snapshot.stored, deadLettered: snapshot.deadLettered,
            partitionsCreated: partitions.created - createdBefore,
            seconds: started.duration(to: .now).secondsDouble, bytesRead: snapshot.bytesRead)
    }
}
