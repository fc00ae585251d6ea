import Postgres

/// What a source may ask of the run it is in, besides being pulled: the run's name and
/// configuration, its counters, the rings' occupancy, stored positions and the control
/// connection for its own bookkeeping.
package final class SourceRun {
    /// The run's name (the one source positions are stored under, unless `streams` says more).
    package let source: String
    /// Where each partition is stored.
    package let streams: SourceStreams
    package let configuration: IngestConfiguration
    package let statistics: IngestStatistics
    let control: ControlConnection
    let pool: FlusherPool
    private let partitions: PartitionManager
    private let store: StreamOffsets
    private let stop: StopSignal

    init(streams: SourceStreams, configuration: IngestConfiguration, statistics: IngestStatistics, control: ControlConnection,
         pool: FlusherPool, partitions: PartitionManager, stop: StopSignal) {
        self.source = streams.name
        self.streams = streams
        self.configuration = configuration
        self.statistics = statistics
        self.control = control
        self.pool = pool
        self.partitions = partitions
        self.stop = stop
        store = StreamOffsets(streams: streams)
    }

    /// True once the run was asked to stop or a flusher failed.
    package var isStopping: Bool { stop.isRaised || pool.isAborted }

    /// Per shard, the events it holds in its ring and unflushed batch (or the ring slots in use,
    /// when more), out of `IngestConfiguration.eventsInFlight`.
    package var ringOccupancy: [Int] { pool.ringOccupancy }

    /// Month partitions this process has created so far.
    package var partitionsCreated: Int { partitions.created }

    /// Per partition, the lowest position any shard stored (nil when PostgreSQL cannot say now).
    package func lowestStoredPositions(_ partitions: [Int32]) -> [Int32: Int64]? {
        guard !partitions.isEmpty else { return nil }
        return try? control.run { try store.lowestPositions(partitions: partitions, on: $0) }
    }
}
