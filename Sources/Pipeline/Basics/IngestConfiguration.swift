import AuditCore
import Foundation

/// How the engine runs.
package struct IngestConfiguration: Sendable {
    /// Flusher shards, each with its own ring, thread and connection. Default: one per core.
    package var shards: Int
    /// Rows (and dead letters) per flush transaction. Default: 10,000 (see docs/benchmarks.md).
    package var batchSize: Int
    /// A partial batch is flushed once its oldest item is this old. Default: 200 ms.
    package var maxBatchAge: Duration
    /// Slots per shard ring (a power of two). Default: 16,384. Rows travel in batches, so a shard
    /// holds at most `eventsInFlight` events in its ring and unflushed batch.
    package var ringCapacity: Int
    /// What to do with events of tenants not in `tenant`. Default: dead-letter them.
    package var unknownTenants: UnknownTenantPolicy
    package var decoder: DecoderConfiguration
    /// Bytes of messages one shard may hold in its ring and batch before the source waits; a
    /// batch is flushed once it holds half. Default: 64 MiB.
    package var maxShardBytes: Int
    /// Maps messages of another format into the wire contract before decoding; nil for `native`.
    package var mapper: FormatMapper?
    /// Native events only: the tenant their source may write (`fixed`) or a header naming it
    /// (`header`, set by a trusted gateway). An event whose own tenant_id differs is
    /// dead-lettered `tenant mismatch`, so a producer on a per-tenant topic cannot write another
    /// tenant's trail. nil: the event's tenant_id is trusted.
    package var nativeTenant: TenantRule?
    /// How often a run folds the counts in tenant_metrics_delta into tenant_metrics while it
    /// goes on, beside the flushes (`CountFolder`; each run also folds when it ends): keeps the
    /// delta table small under a consume that never ends. Default: 60 s.
    package var foldEvery: Duration = .seconds(60)
    /// How long a flush statement waits for a lock another session holds (an operator's
    /// `CREATE INDEX`, `VACUUM FULL` or `LOCK` on a month) before it gives up and the flush is
    /// retried (the session's `lock_timeout`; kept under the statement timeout, so a wait is
    /// told from a slow statement). Default: 5 s.
    package var lockTimeout: Duration = .seconds(5)
    /// How many statement timeouts in a row, of the same flush statement, stop the run (the
    /// batch stays uncommitted for the next run). Default: 5.
    package var timeoutsBeforeStopping = 5
    /// What of a message's context (Kafka topic, headers, ...) is kept in `custom_metadata`.
    /// Default: nothing.
    package var contextMetadata = ContextMetadata()
    /// The time every cadence and deadline of the run is read from: batch age, folds, retries,
    /// the engine's ticks, the consumer's idleness and reports. Tests pass `ThreadClock.manual()`.
    package var clock: ThreadClock = .system
    /// The key `hmac` redaction rules hash under (`--redaction-key-file`). Without it, a run
    /// with such a rule in force refuses to start (`RedactionPolicy.KeyMismatch`).
    package var redactionKey: RedactionKey?

    /// True when messages must come with their context (`SourceBatch.Message.context`):
    /// something is kept from it, or the mapper reads headers. Sources build none otherwise.
    package var needsMessageContext: Bool {
        if case .header = nativeTenant { return true }
        return !contextMetadata.isEmpty || mapper?.readsMessageContext == true
    }

    /// The largest message a file source hands over whole: an event's limit, or for a format of
    /// delivery files (CloudTrail: 10,000 records, often 3 to 5 MB on one line) 64 MiB, whose
    /// records each meet the event's limits. A longer line is dead-lettered `event too large`.
    package var maxMessageBytes: Int {
        mapper?.format.deliversManyRecords == true ? max(64 << 20, decoder.maxEventBytes) : decoder.maxEventBytes
    }

    /// Events one shard may hold, in its ring and its unflushed batch: as many as a ring of
    /// single events plus a batch held.
    package var eventsInFlight: Int { ringCapacity + batchSize }

    package init(shards: Int = ProcessInfo.processInfo.activeProcessorCount, batchSize: Int = 10_000,
                maxBatchAge: Duration = .milliseconds(200), ringCapacity: Int = 16_384,
                unknownTenants: UnknownTenantPolicy = .deadLetter, decoder: DecoderConfiguration = .init(),
                maxShardBytes: Int = 64 << 20, mapper: FormatMapper? = nil) {
        self.shards = max(1, shards)
        self.batchSize = max(1, batchSize)
        self.maxBatchAge = maxBatchAge
        self.ringCapacity = ringCapacity
        self.unknownTenants = unknownTenants
        self.decoder = decoder
        self.maxShardBytes = max(1 << 20, maxShardBytes)
        self.mapper = mapper
    }
}

package enum UnknownTenantPolicy: String, Sendable, CaseIterable {
    /// Dead-letter with reason `unknown tenant`.
    case deadLetter = "dead-letter"
    /// Store the event anyway.
    case accept
}
