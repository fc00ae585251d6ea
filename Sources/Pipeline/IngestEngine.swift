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
               AND to_regclass('ingest_offsets_retired') IS NOT NULL
            """).scalar
        guard present == "t" else {
            throw IngestError(.schemaNotMigrated,
                              "the database \(database.connectionString.masked) has no audit-ingest schema or an older one: run audit-ingest migrate")
        }
        try partitions.refresh(on: connection)
        try tenants.refresh(on: connection)
        return connection
    }

    /// Ingests a whole NDJSON input, resuming where an earlier run on the same source stopped
    /// (see `FileSource` for what "the same" means). `progress` is called from the reading thread
    /// about twice a second.
    ///
    /// - Parameter ifChanged: what to do when the part an earlier run stored has changed since.
    /// - Parameter stop: raised (SIGTERM) to stop reading: what was read is committed within
    ///   `stopTimeout`, then it throws `interrupted`; a later run continues.
    public func ingest(_ file: FileSource, ifChanged: ChangedSourcePolicy = .refuse, stop: StopSignal? = nil,
                       stopTimeout: Duration = .seconds(10),
                       progress: ((IngestStatistics.Snapshot) -> Void)? = nil) throws -> IngestSummary {
        let control = try prepare()
        defer { control.close() }
        var source = try chooseSource(for: file, on: control)
        while true {
            do {
                return try ingest(file, as: source, control: control, stop: stop, stopTimeout: stopTimeout, progress: progress)
            } catch let changed as FileSource.PrefixChanged {
                let what = changed.truncated
                    ? "it is now shorter than the \(changed.offset) bytes an earlier run stored"
                    : "its first \(changed.offset) bytes differ from the ones an earlier run stored"
                if case .standardInput(let name) = file.identity {
                    throw IngestError(.sourceChanged, """
                        standard input (--source-name \(name.dropFirst("name:".count))) is not the stream an earlier run \
                        of that name read: \(what). Give this stream another --source-name.
                        """)
                }
                guard ifChanged == .newSource else {
                    throw IngestError(.sourceChanged, """
                        \(file.path) continues source \(source) (same first line), but \(what): it was edited or \
                        truncated. Restore it, or run backfill with --if-changed new-source to ingest it as a new \
                        source (events already stored are then dead-lettered as duplicates).
                        """)
                }
                source = try OffsetStore(source: source).nextGeneration(of: file.baseName, on: control)
                logger.notice("the file changed: ingesting it as a new source", metadata: ["file": "\(file.path)", "source": "\(source)"])
            }
        }
    }

    /// The stored source this input continues: for a file, the one with the same first line whose
    /// stored prefix matches (the furthest, when edits made several), else a new one.
    private func chooseSource(for file: FileSource, on control: PostgresConnection) throws -> String {
        guard case .content = file.identity else { return file.baseName }
        let store = OffsetStore(source: file.baseName)
        let generations = try store.generations(of: file.baseName, on: control)
        // A file that was blank lines only when an earlier run read it had an empty head then:
        // it continues that source if its stored prefix matches.
        var grownFromBlank: [(source: String, resume: FileSource.ResumePoint)] = []
        if file.startsBlank {
            let blank = try store.generations(of: FileSource.blankHeadName, on: control).filter { $0.resume.offset > 0 }
            if !blank.isEmpty {
                let hashes = try file.prefixHashes(at: blank.map(\.resume.offset))
                grownFromBlank = blank.filter { $0.resume.prefixHash == hashes[$0.resume.offset] }
            }
        }
        guard generations.count + grownFromBlank.count > 1 else {
            return generations.first?.source ?? grownFromBlank.first?.source ?? file.baseName
        }
        let hashes = try file.prefixHashes(at: generations.map(\.resume.offset))
        let matching = generations.filter { generation in
            generation.resume.offset == 0 || generation.resume.prefixHash == hashes[generation.resume.offset]
        } + grownFromBlank
        // None matches: take the furthest, whose check fails with the error that explains.
        return (matching.isEmpty ? generations : matching).max { $0.resume.offset < $1.resume.offset }!.source
    }

    private func ingest(_ file: FileSource, as source: String, control: PostgresConnection, stop: StopSignal?,
                        stopTimeout: Duration, progress: ((IngestStatistics.Snapshot) -> Void)?) throws -> IngestSummary {
        let started = ContinuousClock.now
        let store = OffsetStore(source: source)
        let stored = try store.adopt(partitions: [0], shardCount: configuration.shards, on: control, logger: logger)
        let adopted = stored.byPartition[0]
        let resume = FileSource.ResumePoint(offset: adopted?.resumeOffset ?? 0, prefixHash: adopted?.resumeHash)
        if resume.offset > 0 { logger.info("resuming", metadata: ["source": "\(source)", "byte": "\(resume.offset)"]) }
        if let ahead = adopted?.checkpointsAhead, !ahead.isEmpty, !file.isStandardInput {
            // Shards that stopped further on stored lines past the resume point: those bytes must
            // be unchanged too, or edited lines there would be taken as stored.
            let found = try file.prefixHashes(at: ahead.map(\.offset))
            if let changed = ahead.filter({ found[$0.offset] != $0.prefixHash }).min(by: { $0.offset < $1.offset }) {
                throw FileSource.PrefixChanged(offset: changed.offset, truncated: found[changed.offset] == nil)
            }
        }

        let statistics = IngestStatistics(source: source, factory: metricsFactory)
        let createdBefore = partitions.created
        let group = ShardGroup(source: source, configuration: configuration, database: database,
                               partitions: partitions, tenants: tenants, stored: stored,
                               statistics: statistics, logger: logger)
        group.start()

        var lastReport = ContinuousClock.now
        var sinceWatermark = 0
        var unpublished = 0  // lines handed over since `received` was last updated
        var tenantError: Error?
        let totals: FileSource.ReadTotals
        do {
            totals = try file.read(
                from: resume, maxLineBytes: configuration.decoder.maxEventBytes,
                line: { position, bytes in
                    let next = Mark(next: position.next, prefixHash: position.nextPrefixHash)
                    group.submit(partition: 0, offset: position.offset, next: next, message: bytes)
                    sinceWatermark += 1
                    unpublished += 1
                    if sinceWatermark == 8192 {
                        sinceWatermark = 0
                        group.watermark(partition: 0, next: next)
                        statistics.update { [unpublished] in $0.received += unpublished }
                        unpublished = 0
                        do { try tenants.refreshIfStale(on: control) } catch let error as PostgresError where error.isRetriable {
                            // PostgreSQL restarting: keep the tenants known so far; the flushers
                            // wait for it, and the next refresh reconnects.
                            logger.warning("cannot refresh the tenant list, keeping the cached one", metadata: ["error": "\(error)"])
                        } catch { tenantError = error }
                        if let progress, lastReport.duration(to: .now) > .milliseconds(500) {
                            lastReport = .now
                            progress(statistics.snapshot)
                        }
                    }
                    return !group.isStopping && tenantError == nil && stop?.isRaised != true
                },
                oversized: { position, prefix in
                    unpublished += 1
                    group.reject(partition: 0, offset: position.offset,
                                 next: Mark(next: position.next, prefixHash: position.nextPrefixHash), rawMessage: prefix,
                                 rejection: Rejection(.tooLarge, """
                                    line of \(position.next - position.offset) bytes, longer than \(configuration.decoder.maxEventBytes); \
                                    raw_payload holds its first KiB
                                    """))
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
        group.watermark(partition: 0, next: Mark(next: totals.end, prefixHash: totals.endPrefixHash))
        statistics.update { [unpublished] in $0.received += unpublished }
        if let stop, stop.isRaised {
            // Asked to stop: commit what was read, within the deadline (PostgreSQL may be down).
            let committed = group.drain(deadline: .now + stopTimeout)
            if !committed { group.stop() }
            try? group.finish()
            throw IngestError(.interrupted, committed
                ? "\(file.path): stopped by a signal after committing what it had read; run the same command again to continue"
                : "\(file.path): stopped by a signal; PostgreSQL did not commit within \(Int(stopTimeout.secondsDouble)) s. Nothing is lost: run the same command again to continue")
        }
        try group.finish()

        let snapshot = statistics.snapshot
        return IngestSummary(
            source: source, messages: totals.lines, alreadyCommitted: totals.linesBeforeStart + Int64(snapshot.alreadyCommitted),
            stored: snapshot.stored, deadLettered: snapshot.deadLettered,
            partitionsCreated: partitions.created - createdBefore,
            seconds: started.duration(to: .now).secondsDouble, bytesRead: snapshot.bytesRead)
    }
}

/// What backfill does with a file whose stored part has changed since an earlier run.
public enum ChangedSourcePolicy: String, Sendable, CaseIterable {
    /// Stop with an error naming the file (the default).
    case refuse
    /// Ingest it from the start as a new source (`file:<head>~N`).
    case newSource = "new-source"
}
