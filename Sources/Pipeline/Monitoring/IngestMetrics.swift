import CoreMetrics

/// The pipeline's figures as swift-metrics values, under Prometheus-style names. They go to
/// whatever backend the process bootstrapped (`consume --admin-port` exports them on `/metrics`
/// through swift-prometheus); without one they cost next to nothing.
///
/// Counters advance from the difference between two `IngestStatistics` snapshots, so the
/// statistics stay the single place where the pipeline counts.
struct IngestMetrics: @unchecked Sendable {  // swift-metrics handles are thread-safe
    let source: String
    let factory: MetricsFactory
    private let received: Counter
    private let stored: Counter
    private let retries: Counter
    private let unavailable: Counter
    private let pauses: Counter
    private let flushDuration: Timer

    init(source: String, factory: MetricsFactory) {
        self.source = source
        self.factory = factory
        let dimensions = [("source", source)]
        received = Counter(label: "audit_ingest_events_received_total", dimensions: dimensions, factory: factory)
        stored = Counter(label: "audit_ingest_events_stored_total", dimensions: dimensions, factory: factory)
        retries = Counter(label: "audit_ingest_flush_retries_total", dimensions: dimensions, factory: factory)
        unavailable = Counter(label: "audit_ingest_kafka_messages_unavailable_total", dimensions: dimensions, factory: factory)
        pauses = Counter(label: "audit_ingest_kafka_pauses_total", dimensions: dimensions, factory: factory)
        flushDuration = Timer(label: "audit_ingest_flush_duration_seconds", dimensions: dimensions, factory: factory)
    }

    func record(from before: IngestStatistics.Snapshot, to after: IngestStatistics.Snapshot) {
        func advance(_ counter: Counter, _ old: Int, _ new: Int) { if new > old { counter.increment(by: new - old) } }
        advance(received, before.received, after.received)
        advance(stored, before.stored, after.stored)
        advance(retries, before.retries, after.retries)
        advance(unavailable, before.unavailable, after.unavailable)
        advance(pauses, before.pauses, after.pauses)
        for (reason, count) in after.deadLettered where count > before.deadLettered[reason, default: 0] {
            Counter(label: "audit_ingest_events_dead_lettered_total", dimensions: [("reason", reason), ("source", source)], factory: factory)
                .increment(by: count - before.deadLettered[reason, default: 0])
        }
        if after.flushes == before.flushes + 1 {  // one flush per update: its duration
            flushDuration.recordNanoseconds(Int64((after.flushSeconds - before.flushSeconds) * 1e9))
        }
    }

    /// Per partition: high watermark minus the next offset to read (`audit_ingest_consumer_lag`),
    /// and how long the oldest unread message has waited at most (`audit_ingest_kafka_lag_seconds`,
    /// see `PartitionLagTimes`). Labelled with the source and partition each is stored under
    /// (`streams`: a topic's own when a run reads several).
    func recordLag(_ lag: [Int32: Int64], seconds: [Int32: Double] = [:], streams: SourceStreams) {
        for (partition, value) in lag {
            Gauge(label: "audit_ingest_consumer_lag", dimensions: dimensions(partition, streams), factory: factory).record(value)
        }
        for (partition, value) in seconds {
            Gauge(label: "audit_ingest_kafka_lag_seconds", dimensions: dimensions(partition, streams), factory: factory).record(value)
        }
    }

    /// Drops the lag of partitions this process no longer reads (another consumer reports them).
    func forgetLag(_ partitions: [Int32], streams: SourceStreams) {
        for partition in partitions {
            for label in ["audit_ingest_consumer_lag", "audit_ingest_kafka_lag_seconds"] {
                Gauge(label: label, dimensions: dimensions(partition, streams), factory: factory).destroy()
            }
        }
    }

    private func dimensions(_ partition: Int32, _ streams: SourceStreams) -> [(String, String)] {
        let location = streams.locate(partition)
        return [("partition", "\(location.partition)"), ("source", location.source)]
    }

    /// Events each shard holds, in its ring and its unflushed batch.
    func recordRingOccupancy(_ occupancy: [Int]) {
        for (shard, count) in occupancy.enumerated() {
            Gauge(label: "audit_ingest_ring_occupancy", dimensions: [("shard", "\(shard)")], factory: factory).record(count)
        }
    }
}
