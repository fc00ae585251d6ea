import Postgres

/// Where messages come from: a file, standard input or Kafka. A source reads on the engine's
/// thread and hands everything to an `IngestFeed`, in order: the partitions it is given and
/// loses (`assign`, `revoke`), each message with its position, and watermarks. Decoded rows
/// reach the flushers in batches: a watermark hands them over, and a source that may wait for
/// input without one calls `feed.handOverRows()` first. It never calls back into the engine from
/// another thread or from inside a library's callback.
///
/// `IngestEngine.run` drives one: `identify`, then `run(into:)` until the input ends or the feed
/// says stop, then (after the engine committed what it holds) `finish`.
public protocol IngestSource: AnyObject {
    /// The name positions are stored under in `ingest_offsets`. Called once, first, with the
    /// engine's connection: a file's name depends on what earlier runs stored.
    func identify(on control: PostgresConnection) throws -> String

    /// Where the run's partitions are stored, given its name from `identify`. Default: every
    /// partition under that name (`SourceStreams.single`).
    func streams(named name: String) -> SourceStreams

    /// Reads until the input ends or `feed.shouldStop`.
    func run(into feed: IngestFeed) throws -> SourceTotals

    /// Called once the engine has flushed what it holds (`committed`) or given up waiting
    /// (PostgreSQL down at a stop). A Kafka source records positions for lag tools and leaves
    /// its group here.
    func finish(committed: Bool)
}

extension IngestSource {
    public func streams(named name: String) -> SourceStreams { .single(name) }

    public func finish(committed: Bool) {}
}

/// What a source saw, for the summary.
public struct SourceTotals: Sendable {
    /// Messages in the input: lines of a file (before the resume point too), Kafka messages consumed.
    public var messages: Int64
    /// Messages before the resume point that the source did not hand over (stored by earlier runs).
    public var skippedBeforeResume: Int64
    /// Bytes of a file's unfinished last line left for a later run (not a message yet).
    public var heldBackBytes: Int

    public init(messages: Int64, skippedBeforeResume: Int64 = 0, heldBackBytes: Int = 0) {
        self.messages = messages
        self.skippedBeforeResume = skippedBeforeResume
        self.heldBackBytes = heldBackBytes
    }
}
