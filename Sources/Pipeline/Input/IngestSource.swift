import AuditCore
import Postgres

/// Where messages come from: files, standard input or Kafka. A source is pulled: the engine's
/// loop (`IngestLoop`) asks it for what happened next, with how much room the rings have, and
/// does everything else itself — positions, room and pauses, watermarks, tenant refreshes,
/// progress. A source never calls into the engine; the engine calls it on one thread.
///
/// `IngestEngine.run` drives one: `identify`, `open`, then `next(room:)` until `.end` or a stop,
/// then (after the engine committed what it holds) `finish`.
package protocol IngestSource: AnyObject {
    /// The name positions are stored under in `ingest_offsets`. Called once, first, with the
    /// engine's connection: a file's name depends on what earlier runs stored.
    func identify(on control: PostgresConnection) throws -> String

    /// Where the run's partitions are stored, given its name from `identify`. Default: every
    /// partition under that name (`SourceStreams.single`).
    func streams(named name: String) -> SourceStreams

    /// Opens the input (a consumer joins its group). `run` is what the source may ask of the run.
    func open(_ run: SourceRun) throws

    /// What happened next: a rebalance, up to `room` messages (valid until the next call), nothing
    /// for a while (`.idle`), or the end of the input. May wait for input about 100 ms at most.
    /// With `room` 0 the rings are full: return a pending rebalance (or `.end`), else `.idle`
    /// at once, and read nothing.
    func next(room: Int) throws -> SourceEvent

    /// After `.assigned(partitions)`: the engine adopted what PostgreSQL holds for them; the source
    /// starts each at `stored.resumeOffset(partition:)`.
    func confirm(_ partitions: [Int32], stored: StoredPositions) throws

    /// After `.revoked` or `.lost`: everything handed over of every partition is committed; the
    /// source lets `partitions` go.
    func release(_ partitions: [Int32]) throws

    /// How long an assignment or revocation may wait for PostgreSQL before the run ends (nil:
    /// retry until a stop). Kafka: under max.poll.interval.ms.
    var rebalanceTimeout: Duration? { get }

    /// How long the rings may stay (nearly) full before the engine pauses the source (`pause`,
    /// `resume`: a Kafka consumer stops fetching but keeps serving its group). nil: never
    /// paused; the engine waits for room.
    var pauseAfter: Duration? { get }
    func pause()
    func resume()

    /// Called by the engine about ten times a second: a source reports its status here.
    func tick()

    /// What the source read, for the summary.
    var totals: SourceTotals { get }

    /// Called once the engine has flushed what it holds (`committed`) or given up waiting
    /// (PostgreSQL down at a stop). A Kafka source records positions for lag tools and leaves
    /// its group here.
    func finish(committed: Bool)
}

extension IngestSource {
    package func streams(named name: String) -> SourceStreams { .single(name) }
    package var rebalanceTimeout: Duration? { nil }
    package var pauseAfter: Duration? { nil }
    package func pause() {}
    package func resume() {}
    package func tick() {}
    package func finish(committed: Bool) {}
}

/// What a source's `next` saw.
package enum SourceEvent {
    /// Partitions given to this run: the engine adopts their stored positions, then `confirm`s.
    case assigned([Int32])
    /// Partitions being taken away: the engine commits what it holds, then `release`s.
    case revoked([Int32])
    /// Partitions taken away without a handover (a Kafka session timeout): handled as `revoked`;
    /// the flushes' compare-and-set fences what another owner committed since.
    case lost([Int32])
    /// Messages, in order per partition, and where each partition they touched stands.
    case messages(SourceBatch)
    /// Nothing arrived (the source waited for it).
    case idle
    /// The input ended.
    case end
}

/// Messages a source hands the engine in one `next`: their bytes are views into the source's
/// buffers and stay valid until its next call (the contract of `KafkaMessage`). The source owns
/// one and refills it each call.
package final class SourceBatch {
    /// One message: its position, where the partition goes on after it, and its bytes.
    package struct Message {
        package var partition: Int32
        package var offset: Int64
        package var next: Mark
        package var bytes: UnsafeRawBufferPointer
        /// What it came with besides its bytes (when `IngestConfiguration.needsMessageContext`).
        package var context: MessageContext?
        /// Set when the source could not hand it over whole (an over-long line, a tombstone):
        /// it is dead-lettered with this reason and `bytes` (owned by `kept`).
        package var rejection: Rejection?
    }

    package private(set) var messages: [Message] = []
    /// Per partition, a position every message below has been handed over by (the engine's
    /// watermark): at least the last message's `next`, further when the source skipped input.
    package private(set) var watermarks: [(partition: Int32, next: Mark)] = []
    /// Copies of rejected messages' bytes (their `bytes` point here), freed by `removeAll`.
    private var kept: [UnsafeMutableRawBufferPointer] = []

    package init(reservingCapacity capacity: Int = 0) {
        messages.reserveCapacity(capacity)
    }

    deinit { freeKept() }

    package var isEmpty: Bool { messages.isEmpty && watermarks.isEmpty }

    /// Empties it for the next call (the views handed out before are no longer used).
    package func removeAll() {
        messages.removeAll(keepingCapacity: true)
        watermarks.removeAll(keepingCapacity: true)
        freeKept()
    }

    private func freeKept() {
        for copy in kept { copy.deallocate() }
        kept.removeAll(keepingCapacity: true)
    }

    package func append(partition: Int32, offset: Int64, next: Mark, bytes: UnsafeRawBufferPointer, context: MessageContext? = nil) {
        messages.append(Message(partition: partition, offset: offset, next: next, bytes: bytes, context: context))
    }

    /// A message that is dead-lettered with `rejection`; `raw` (its first bytes) is copied.
    package func reject(partition: Int32, offset: Int64, next: Mark, raw: UnsafeRawBufferPointer, rejection: Rejection) {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: raw.count, alignment: 1)
        if raw.count > 0 { copy.copyMemory(from: raw) }
        kept.append(copy)
        messages.append(Message(partition: partition, offset: offset, next: next, bytes: UnsafeRawBufferPointer(copy), rejection: rejection))
    }

    /// Every position of `partition` below `next` is handed over by this batch or earlier ones.
    package func watermark(partition: Int32, next: Mark) {
        if let last = watermarks.indices.last, watermarks[last].partition == partition {
            watermarks[last].next = next
        } else {
            watermarks.append((partition, next))
        }
    }
}

/// What a source saw, for the summary.
package struct SourceTotals: Sendable {
    /// Messages in the input: lines of a file (before the resume point too), Kafka messages consumed.
    package var messages: Int64
    /// Messages before the resume point that the source did not hand over (stored by earlier runs).
    package var skippedBeforeResume: Int64
    /// Bytes of a file's unfinished last line left for a later run (not a message yet).
    package var heldBackBytes: Int

    package init(messages: Int64, skippedBeforeResume: Int64 = 0, heldBackBytes: Int = 0) {
        self.messages = messages
        self.skippedBeforeResume = skippedBeforeResume
        self.heldBackBytes = heldBackBytes
    }
}
