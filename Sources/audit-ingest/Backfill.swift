import AuditCore
import ArgumentParser
import Foundation
import Logging
import Pipeline
import ServiceLifecycle

struct Backfill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load NDJSON audit events from files into PostgreSQL, exactly once.",
        discussion: """
            Each line is one event (docs/design.md, "The event on the wire"). Lines that fail validation \
            go to audit_dead_letter with a reason; month partitions are created as needed. FILE may \
            end in .gz, or be - for standard input.

            Exactly once: a file is identified by its content (its first line), not its path, and \
            positions are byte offsets. Running backfill again on the same file resumes where it \
            stopped (after a crash too); once complete it changes nothing; a file that grew since \
            (appends, rotation), was renamed or copied continues where it stopped. The bytes an \
            earlier run stored are verified first: an edited or truncated file is refused with an \
            error unless --if-changed new-source, and so is a file whose first line was edited \
            (its other lines are a stored source's). Any --shards works with any earlier run. Each \
            standard-input run is a new source unless --source-name names it.

            Many FILEs share one engine start (a year of small delivery files is one run): each \
            is resolved, read and committed in turn, with a line each and the run's totals.

            SIGTERM or SIGINT: stop reading, commit what was read (at most 10 s), exit 1; the same \
            command continues later.

            Exit status: 0 when every line is in audit_log or audit_dead_letter; 1 otherwise (an \
            error, a stop, or lines not accounted for); 64 when a FILE cannot be read (missing, a \
            directory, a FIFO): every FILE is checked before any is read.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var engine: EngineOptions

    @Flag(name: .customLong("progress"), inversion: .prefixedNo,
          help: "Show a progress line on standard error (default: when it is a terminal).")
    var showProgress: Bool = isatty(2) == 1

    @Option(help: ArgumentHelp("""
        Name standard input's source, so a later run with the same name resumes it (for a pipe \
        that is sent again). Without it every standard-input run is a new source.
        """, valueName: "name"))
    var sourceName: String?

    @Option(help: ArgumentHelp("""
        When the part of a file an earlier run stored has changed: refuse (stop with an error) or \
        new-source (ingest the file from the start as a new source).
        """, valueName: "policy"))
    var ifChanged: ChangedSourcePolicy = .refuse

    @Option(help: ArgumentHelp("""
        A plain file's last line without a newline: hold (default) takes it when it is whole JSON \
        and otherwise leaves it for a later run, as its writer may be in the middle of it; take \
        takes it as it is (a cut-off line is dead-lettered). From .gz or standard input the end \
        of the input finishes the line.
        """, valueName: "policy"))
    var partialLastLine: FileSource.PartialLastLine = .hold

    @Argument(help: ArgumentHelp("NDJSON files (.gz too, - for standard input).", valueName: "file"))
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one FILE (or - for standard input)") }
        if files.filter({ $0 == "-" }).count > 1 {
            throw ValidationError("- (standard input) can be given only once: it can be read only once")
        }
        if let sourceName {
            guard files.contains("-") else { throw ValidationError("--source-name names standard input: give - as a FILE") }
            guard !sourceName.isEmpty, sourceName.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:/@".contains($0) }) else {
                throw ValidationError("--source-name must be non-empty letters, digits and - _ . : / @, not '\(sourceName)'")
            }
        }
        if case .header = try engine.mapper()?.tenant ?? engine.nativeTenant() {
            throw ValidationError("--tenant-from header:NAME reads Kafka headers: files have none (use consume, or field:PATH)")
        }
    }

    func run() async throws {
        let logger = Logger(label: "audit-ingest.backfill")
        let ingestEngine = IngestEngine(database: try database.configuration(), configuration: try engine.configuration(),
                                        logger: logger)
        var sources = try Self.openAll(files, sourceName: sourceName)
        for index in sources.indices { sources[index].partialLastLine = partialLastLine }
        let sizes = sources.map { $0.isCompressed ? nil : $0.size }
        let meter = ProgressMeter(totalBytes: sizes.contains(nil) ? nil : sizes.reduce(0) { $0 + $1! }, enabled: showProgress)
        let ifChanged = ifChanged
        // One service: SIGTERM/SIGINT through the group stop the reading; what was read is
        // committed (within 10 s) and the run throws `interrupted` (exit 1; a later run continues).
        let backfill = ThreadService(named: "backfill") { stop in
            var allComplete = true
            let total = try ingestEngine.ingest(sources, ifChanged: ifChanged, stop: stop,
                                                finished: { path, summary in
                                                    meter.clear()
                                                    print(sources.count == 1 ? summary.report(path: path) : summary.line(path: path))
                                                    allComplete = allComplete && summary.isComplete
                                                }) { meter.update($0) }
            meter.clear()
            if sources.count > 1 { print(total.report(path: "\(sources.count) files")) }
            return allComplete && total.isComplete
        }
        try await ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: backfill, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "audit-ingest.services"))).run()
        if backfill.output != true { throw ExitCode(1) }
    }
}

extension Backfill {
    /// Every FILE checked before any is read: one missing, a directory or a FIFO among
    /// `/var/log/app/*` stops the command before it stores anything, naming each bad one (exit 64).
    static func openAll(_ files: [String], sourceName: String?) throws -> [FileSource] {
        var sources: [FileSource] = []
        var problems: [String] = []
        for path in files {
            do {
                sources.append(try FileSource(path: path, sourceName: path == "-" ? sourceName : nil))
            } catch let error as IngestError {
                problems.append(error.message)
            }
        }
        guard problems.isEmpty else {
            let list = problems.map { "  \($0)" }.joined(separator: "\n")
            FileHandle.standardError.write(Data("""
                Error: \(problems.count) of the \(files.count) files cannot be read, so none was read:
                \(list)
                Leave them out or fix them, and run the command again.

                """.utf8))
            throw ExitCode(64)
        }
        return sources
    }
}

/// Engine flags shared by backfill and consume.
struct EngineOptions: ParsableArguments {
    @Option(help: "Flusher shards, each with its own connection (default: one per core).")
    var shards: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Rows per flush transaction.")
    var batchSize: Int = 10_000

    @Option(help: ArgumentHelp("Flush a partial batch after this many milliseconds.", valueName: "ms"))
    var maxBatchAge: Int = 200

    @Option(help: ArgumentHelp("""
        Slots per shard ring between the reader and its flusher (a power of two). Rows travel in \
        batches; a shard holds at most this many events plus a batch.
        """, valueName: "slots"))
    var ringCapacity: Int = 16_384

    @Option(help: ArgumentHelp("Events of tenants not in the tenant table: dead-letter or accept.", valueName: "policy"))
    var unknownTenants: UnknownTenantPolicy = .deadLetter

    @Option(help: ArgumentHelp("""
        Events stamped more than this many seconds after now are dead-lettered (timestamp outside \
        plausibility window). A decision once committed stays: a later run with another window \
        does not revisit it. At most a year.
        """, valueName: "seconds"))
    var maxFutureSkew: Int = 86_400

    @Option(help: ArgumentHelp("""
        Memory for messages per shard, in MiB: the source waits while a shard holds this much in \
        its ring and batch, and a batch is flushed once it holds half.
        """, valueName: "MiB"))
    var shardMemory: Int = 64

    @Option(help: ArgumentHelp("""
        Retention in days: events stamped earlier than this many days before the run starts are \
        dead-lettered as "older than retention" instead of recreating a pruned month. Use the \
        same period as partitions prune. Default: none.
        """, valueName: "days"))
    var retentionDays: Int?

    @Option(help: ArgumentHelp("""
        The messages' format: native (the wire contract), cloudtrail (records or S3 delivery files \
        with {"Records": [...]}), k8s-audit (audit.k8s.io/v1 Event), ocsf (API Activity 6003, \
        Authentication 3002) or cloudevents (structured JSON; with consume also binary mode: ce_* \
        headers, the value is the data). Other formats need --tenant-from.
        """, valueName: "format"))
    var format: EventFormat = .native

    @Option(help: ArgumentHelp("""
        Where a mapped event's tenant comes from: fixed:UUID, field:PATH (a dot path into the \
        record whose value is a UUID), or header:NAME (consume: a Kafka header whose value is a \
        UUID; a message without it is dead-lettered as invalid uuid: tenant_id). For native \
        events, a binding: fixed:UUID or header:NAME names the only tenant the source may write, \
        and an event whose tenant_id differs is dead-lettered as tenant mismatch.
        """, valueName: "rule"))
    var tenantFrom: String?

    @OptionGroup var redactionKey: RedactionKeyOptions

    /// The mapper `--format` and `--tenant-from` ask for (nil for native messages).
    func mapper() throws -> FormatMapper? {
        guard format != .native else { return nil }  // see nativeTenant()
        guard let tenantFrom else { throw ValidationError("--format \(format.rawValue) needs --tenant-from fixed:UUID, field:PATH or header:NAME") }
        guard let rule = TenantRule(tenantFrom) else {
            throw ValidationError("--tenant-from must be fixed:UUID, field:PATH or header:NAME, not \(tenantFrom)")
        }
        return FormatMapper(format: format, tenant: rule)
    }

    /// `--tenant-from` for native events: the binding they must match (fixed:UUID or header:NAME).
    func nativeTenant() throws -> TenantRule? {
        guard format == .native, let tenantFrom else { return nil }
        guard let rule = TenantRule(tenantFrom) else {
            throw ValidationError("--tenant-from must be fixed:UUID or header:NAME, not \(tenantFrom)")
        }
        if case .field = rule {
            throw ValidationError("--tenant-from field:PATH does not apply to native events: their tenant is tenant_id (bind them with fixed:UUID or header:NAME)")
        }
        return rule
    }

    func configuration() throws -> IngestConfiguration {
        guard (1...256).contains(shards) else { throw ValidationError("--shards must be between 1 and 256") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard ringCapacity >= 1024, ringCapacity & (ringCapacity - 1) == 0 else {
            throw ValidationError("--ring-capacity must be a power of two of at least 1024, not \(ringCapacity)")
        }
        guard (1...65_536).contains(shardMemory) else { throw ValidationError("--shard-memory must be between 1 and 65536 MiB") }
        // A year at most: the database makes partitions up to 25 months ahead and refuses later ones.
        guard (0...31_622_400).contains(maxFutureSkew) else {
            throw ValidationError("--max-future-skew must be 0-31622400 seconds (a year), not \(maxFutureSkew)")
        }
        var configuration = IngestConfiguration(shards: shards, batchSize: batchSize, maxBatchAge: .milliseconds(max(1, maxBatchAge)),
                                                ringCapacity: ringCapacity, unknownTenants: unknownTenants,
                                                decoder: DecoderConfiguration(maximumFutureSkew: .seconds(maxFutureSkew),
                                                                              retentionCutoff: try retentionCutoff()),
                                                maxShardBytes: shardMemory << 20, mapper: try mapper())
        configuration.nativeTenant = try nativeTenant()
        configuration.redactionKey = try redactionKey.load()
        return configuration
    }
}

extension EngineOptions {
    /// The retention cut-off in microseconds since the Unix epoch, fixed for the whole run.
    func retentionCutoff() throws -> Int64? {
        guard let retentionDays else { return nil }
        guard retentionDays >= 1 else { throw ValidationError("--retention-days must be at least 1") }
        return (Int64(Date().timeIntervalSince1970) - Int64(retentionDays) * 86_400) * 1_000_000
    }
}
