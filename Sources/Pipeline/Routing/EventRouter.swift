import AuditCore
import Crypto
import Foundation
import Logging
import Postgres
import Synchronization

/// The decode → route → encode half of the engine, shared by every source: each message is
/// decoded (or mapped, `--format`), skipped when an earlier run stored it, routed to its shard by
/// tenant, encoded as a binary COPY row and batched; full batches, watermarks and commands go to
/// the shard's flusher through the `FlusherPool`, whose flushers commit.
///
/// One thread (the source's) calls `submit`, `watermark` and `finish`: it is the single producer
/// of every ring.
///
/// Only the source thread touches the producer-side state below; debug builds check it
/// (`producer`, at every entry point).
final class EventRouter: @unchecked Sendable {  // producer-side state is used by one thread
    package let configuration: IngestConfiguration
    package let statistics: IngestStatistics
    /// Where partitions are stored (the run's name is `streams.name`).
    let streams: SourceStreams
    /// The flushers, their threads and rings: where batches go.
    let pool: FlusherPool
    private let router: ShardRouter
    let decoder: EventDecoder
    /// The registered tenants, for the unknown-tenant rule: a copy the producer thread reads
    /// without a lock, replaced when `IngestLoop` reloads the list.
    var knownTenants: TenantTable
    /// The redaction rules in force, replaced when `IngestLoop` reloads them with the tenants.
    var redaction = RedactionPolicy.none
    /// Rewrite what the rules hide: the metadata of the row, and the event a dead letter keeps.
    let metadataRedactor = JSONRedactor()
    let wireRedactor = JSONRedactor()
    /// Each tenant's HMAC state after its key, derived once (`RedactionKey.hasher(for:)`).
    var tenantKeys: [UUIDValue: HMAC<SHA256>] = [:]
    /// Prints a hashed value that is not a string as jsonb does, before it is hashed.
    let hashedValuePrinter = JSONBText(maxBytes: 1 << 20)
    private var encoder = BinaryCopyEncoder(reservingCapacity: 4096)
    /// The metadata as jsonb will print it: the text sent is the text stored, so a row's leaf
    /// hash is the same at ingest and in `verify`.
    private let storedMetadata: JSONBText
    /// Per shard, rows encoded and not handed over yet. A batch goes when it is full, before
    /// anything else is pushed to its shard (so the flusher sees every item in the order it was
    /// made), and when the source may wait for input (`handOverRows`).
    var filling: [RowBatch?]
    /// Rows per batch: at most the flush's batch size, so a flush holds about `batchSize` rows.
    let rowsPerBatch: Int
    /// True while the records of one message are routed (`keepingRecordsTogether`): no batch is
    /// handed over until they all are in.
    var routingRecords = false
    /// Messages skipped because their shard had stored them; added to `statistics` at each
    /// watermark rather than under its lock per message.
    private var skippedAsCommitted = 0
    /// Records beyond the first of messages that held several (CloudTrail delivery files): each
    /// is an event of its own in the summary's accounting. Published with `skippedAsCommitted`.
    var extraRecords = 0
    /// What earlier runs stored of each partition, as adopted: those positions are skipped.
    private var positions: [Int32: PartitionPositions] = [:]
    /// The partition last looked up in `positions`, and the offset from which earlier runs
    /// stored none of its messages: a source soon reads past what was stored, and from then on
    /// an event costs no lookup (nor a copy of the partition's positions).
    private var newFrom: (partition: Int32, offset: Int64)?
    private let logger: Logger
    /// The source thread, in debug builds: every entry point checks it is the one.
    let producer = ThreadConfinement()

    /// Partitions are taken over with `resetPartitions` before their first message.
    init(streams: SourceStreams, configuration: IngestConfiguration, database: PostgresConfiguration,
         partitions: PartitionManager, knownTenants: Set<UUIDValue>,
         statistics: IngestStatistics, deadLetterSink: (any DeadLetterSink)? = nil, logger: Logger) {
        self.streams = streams
        self.configuration = configuration
        self.statistics = statistics
        self.knownTenants = TenantTable(knownTenants)
        self.logger = logger
        router = ShardRouter(shardCount: configuration.shards)
        decoder = EventDecoder(configuration: configuration.decoder)
        storedMetadata = JSONBText(maxBytes: 2 * configuration.decoder.maxMetadataBytes + (64 << 10))
        pool = FlusherPool(streams: streams, configuration: configuration, database: database, partitions: partitions,
                           statistics: statistics, deadLetterSink: deadLetterSink, logger: logger)
        filling = Array(repeating: nil, count: configuration.shards)
        rowsPerBatch = min(configuration.batchSize, 512)
    }

    /// Decodes one message and hands it to its shard (by tenant whenever its `tenant_id` parses,
    /// rejected or not). Skips it when an earlier run stored it. Blocks while that shard holds its
    /// events in flight or its bytes, or its ring is full. `next` is where the source goes on
    /// after it.
    func submit(partition: Int32, offset: Int64, next: Mark, message: UnsafeRawBufferPointer, context: MessageContext? = nil) {
        producer.check()
        guard let mapper = configuration.mapper else {
            return route(partition: partition, offset: offset, next: next, event: message, raw: message, context: context,
                         boundTo: configuration.nativeTenant)
        }
        submitMapped(partition: partition, offset: offset, next: next, message: message, mapper: mapper, context: context)
    }

    /// Decodes one wire-contract event and hands it to its shard; `raw` is what a dead letter
    /// keeps. What `configuration.contextMetadata` asks of `context` is added to its metadata.
    /// With `binding`, an event of another tenant than the binding names is dead-lettered.
    /// `record` is the event's place among its message's records (0: the message is one event).
    func route(partition: Int32, offset: Int64, next: Mark, event message: UnsafeRawBufferPointer, raw: UnsafeRawBufferPointer,
               context: MessageContext? = nil, boundTo binding: TenantRule? = nil, record: Int32 = 0) {
        switch decoder.decode(message) {
        case .success(let event) where binding != nil && Self.mismatch(event.tenantID, binding!, context) != nil:
            let detail = Self.mismatch(event.tenantID, binding!, context)!
            reject(partition: partition, offset: offset, next: next, rawMessage: raw,
                   rejection: Rejection(.tenantMismatch, detail, tenantID: event.tenantID), record: record)
        case .success(var event):
            if let context, let members = context.metadataMembers(configuration.contextMetadata) {
                let metadata = MetadataMerge.merge(event.metadata, adding: members)
                return metadata.withUnsafeBytes { metadata in
                    event.metadata = metadata
                    enqueueAsStored(partition: partition, offset: offset, next: next, event: event, wire: message, raw: raw,
                                    record: record)
                }
            }
            enqueueAsStored(partition: partition, offset: offset, next: next, event: event, wire: message, raw: raw, record: record)
        case .failure(let rejection):
            reject(partition: partition, offset: offset, next: next, rawMessage: raw, rejection: rejection, record: record)
        }
    }

    /// Why `tenant` is not the tenant `binding` names for this message, or nil when it is.
    static func mismatch(_ tenant: UUIDValue, _ binding: TenantRule, _ context: MessageContext?) -> String? {
        switch binding {
        case .fixed(let bound):
            return UUIDValue(bound) == tenant ? nil : "tenant_id \(tenant), but this source writes tenant \(bound) only"
        case .header(let name):
            let value: String?
            do { value = try context?.singleHeader(name) } catch { return error.detail }
            guard let value, let bound = UUIDValue(value) else {
                return "header \(name), which names the tenant, is missing or not a UUID"
            }
            return bound == tenant ? nil : "tenant_id \(tenant), but header \(name) names tenant \(value.lowercased())"
        case .field:
            return nil  // refused by the command line: a native event's tenant is its tenant_id
        }
    }

    /// `enqueue` with the metadata as jsonb prints it, or a dead letter when jsonb would refuse it;
    /// redacted when rules apply to its tenant (`wire` is the event as it came).
    @inline(__always)
    private func enqueueAsStored(partition: Int32, offset: Int64, next: Mark, event: AuditEvent, wire: UnsafeRawBufferPointer,
                                 raw: UnsafeRawBufferPointer, record: Int32) {
        var event = event
        if let metadata = event.metadata {
            do {
                event.metadata = try storedMetadata.canonical(metadata, maxDepth: configuration.decoder.maxMetadataDepth)
            } catch {
                var rejection = error
                rejection.tenantID = event.tenantID
                return reject(partition: partition, offset: offset, next: next, rawMessage: raw, rejection: rejection, record: record)
            }
        }
        if let rules = redaction.rules(for: event.tenantID) {
            let failed = redacting(event, wire: wire, by: rules) { event, redactedRaw in
                enqueue(partition: partition, offset: offset, next: next, event: event, raw: redactedRaw, record: record)
            }
            if var failed {
                failed.tenantID = event.tenantID
                reject(partition: partition, offset: offset, next: next, rawMessage: raw, rejection: failed, record: record)
            }
            return
        }
        enqueue(partition: partition, offset: offset, next: next, event: event, raw: raw, record: record)
    }

    /// Hands a decoded event to its shard (or dead-letters it for an unknown tenant).
    @inline(__always)
    private func enqueue(partition: Int32, offset: Int64, next: Mark, event: AuditEvent, raw: UnsafeRawBufferPointer, record: Int32) {
        let shard = router.shard(for: event.tenantID)
        guard !alreadyStored(partition, offset, shard, event.tenantID) else { return }
        if configuration.unknownTenants == .deadLetter, !knownTenants.contains(event.tenantID) {
            deadLetter(DeadLetter(partition: partition, offset: offset, next: next, record: record, tenantID: event.tenantID,
                                  rawMessage: Array(raw), reason: Rejection.Kind.unknownTenant.rawValue,
                                  detail: Self.ofRecord(record, "tenant \(event.tenantID) is not registered in tenant")), to: shard)
            return
        }
        encoder.removeAll()
        event.appendCopyRow(to: &encoder)
        let batch = fillingBatch(for: shard, withRoomFor: encoder.count + raw.count)
        encoder.withUnsafeBytes { row in
            batch.append(partition: partition, offset: offset, next: next, tenantID: event.tenantID, timestamp: event.timestamp,
                         record: record, row: row, raw: raw)
        }
        if batch.isFull, !routingRecords { handOver(shard) }
    }

    /// Routes the records of one message (`body` routes each) so that each shard gets its records
    /// of it in one batch. A flusher commits the batches it accepted whole, and with each row the
    /// message's `next`: were a message's records split over two flushes, the first would store
    /// the position past the message with its later records still in flight, and a crash between
    /// the two would lose them.
    func keepingRecordsTogether(_ body: () -> Void) {
        routingRecords = true
        body()
        routingRecords = false
        for shard in filling.indices where filling[shard]?.isFull == true { handOver(shard) }
    }

    /// Dead-letters a message that is not an event (or that the source could not hand over
    /// whole: `rawMessage` is then the first KiB of an over-long line).
    func reject(partition: Int32, offset: Int64, next: Mark, rawMessage: UnsafeRawBufferPointer, rejection: Rejection,
                record: Int32 = 0) {
        producer.check()
        let shard = router.shard(tenantID: rejection.tenantID, offset: offset)
        guard !alreadyStored(partition, offset, shard, rejection.tenantID) else { return }
        var kept = rawMessage
        var detail = Self.ofRecord(record, rejection.detail)
        if rawMessage.count > configuration.decoder.maxEventBytes {
            // Keep what identifies it, not megabytes: its first KiB, its length and a hash.
            var hasher = PrefixHasher()
            hasher.update(rawMessage)
            kept = UnsafeRawBufferPointer(rebasing: rawMessage.prefix(1024))
            let hash = String(UInt64(bitPattern: hasher.value), radix: 16)
            // An `event too large` detail gives the size already.
            let size = rejection.kind == .tooLarge ? "" : "\(rawMessage.count) bytes, "
            detail += "; \(size)64-bit hash \(hash); raw_payload holds its first KiB"
        }
        var payload = Array(kept)
        if let rules = redaction.rules(for: rejection.tenantID) {
            let redacted = redactedPayload(kept, size: rawMessage.count, tenant: rejection.tenantID, rules: rules)
            payload = redacted.payload
            if let note = redacted.note { detail += "; \(note)" }
        }
        deadLetter(DeadLetter(partition: partition, offset: offset, next: next, record: record, tenantID: rejection.tenantID,
                              rawMessage: payload, reason: rejection.reason, detail: detail), to: shard)
    }

    /// Sends a dead letter to its shard: a record's goes into the batch its message's other
    /// records of that shard are in (`keepingRecordsTogether`), a message's through the ring.
    private func deadLetter(_ deadLetter: DeadLetter, to shard: Int) {
        guard routingRecords else { return push(.deadLetter(deadLetter), to: shard) }
        fillingBatch(for: shard, withRoomFor: 0).deadLetters.append(deadLetter)
    }

    private static func ofRecord(_ record: Int32, _ detail: String) -> String {
        record > 0 ? "record \(record): \(detail)" : detail
    }

    @inline(__always)
    private func alreadyStored(_ partition: Int32, _ offset: Int64, _ shard: Int, _ tenantID: UUIDValue?) -> Bool {
        if let newFrom, newFrom.partition == partition, offset >= newFrom.offset { return false }
        guard let stored = positions[partition] else {
            newFrom = (partition, .min)
            return false
        }
        newFrom = (partition, stored.storedBelow)
        guard stored.isStored(offset: offset, shard: shard, tenantID: tenantID) else { return false }
        skippedAsCommitted += 1
        return true
    }

    /// Tells every shard that all positions of `partition` below `next` have been submitted,
    /// so shards that saw none of them still advance their stored offset.
    func watermark(partition: Int32, next: Mark) {
        producer.check()
        publishSkipped()
        for shard in 0..<pool.count { push(.watermark(partition: partition, next: next), to: shard) }
    }

    /// Takes over `partitions` at the positions stored in PostgreSQL (after a rebalance another
    /// process may have advanced them). Call before submitting any of their messages.
    func resetPartitions(_ partitions: [Int32], to stored: StoredPositions) {
        producer.check()
        for partition in partitions {
            let adopted = stored.byPartition[partition] ?? PartitionPositions(shards: Array(repeating: 0, count: pool.count))
            for shard in 0..<pool.count {
                push(.resetPartition(partition: partition, committed: adopted.committed(shard: shard), layout: adopted.layout),
                     to: shard)
            }
            positions[partition] = adopted
            newFrom = nil
        }
    }

    /// Adds the skipped and extra records counted since the last watermark to `statistics`.
    func publishSkipped() {
        guard skippedAsCommitted > 0 || extraRecords > 0 else { return }
        let (skipped, extra) = (skippedAsCommitted, extraRecords)
        skippedAsCommitted = 0
        extraRecords = 0
        statistics.update {
            $0.alreadyCommitted += skipped
            $0.extraRecords += extra
        }
    }
}
