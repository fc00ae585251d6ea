import Foundation
import Operations
import Pipeline
import Postgres
import Prometheus
import Streaming
import Synchronization

/// The figures read when `/metrics` is scraped, written into the same swift-prometheus registry that
/// holds the pipeline's swift-metrics values, so one exporter renders everything: pipeline status
/// (alerts, ring capacity, the consumer's state), the admin pool and the database. Database figures
/// (partition count, table sizes) are cached for 30 s so frequent scrapes do not load the catalog.
///
/// A labelled family keeps only the label values of the latest scrape: a pruned partition's size or
/// a cleared alert leaves the output instead of staying at its last value.
final class ScrapedMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let state = Mutex(State())

    private struct State {
        var database: (at: ContinuousClock.Instant, statistics: DatabaseStatistics)?
        /// Every labelled gauge set by the latest scrape, by family name.
        var labelled: [String: [[String: String]: Gauge]] = [:]
        /// The feed's horizon while it is held back, and the first scrape that saw it there.
        var heldHorizon: (value: UInt64, since: ContinuousClock.Instant)?
        var streams: (at: ContinuousClock.Instant, lags: [StreamLag])?
    }

    /// Past this, feed_horizon_stalled fires.
    private let feedHorizonAlertAge: Duration
    /// Past this, stream_lag fires.
    private let streamLagAlertAge: Duration

    init(registry: PrometheusCollectorRegistry, feedHorizonAlertAge: Duration = .seconds(300), streamLagAlertAge: Duration = .seconds(600)) {
        self.registry = registry
        self.feedHorizonAlertAge = feedHorizonAlertAge
        self.streamLagAlertAge = streamLagAlertAge
    }

    /// Writes the current figures into the registry and renders the whole registry.
    func scrape(pipeline: PipelineStatus?, pool: ConnectionPoolStatistics,
                database: () throws -> DatabaseStatistics, feedHorizon: () throws -> FeedHorizon,
                streams: () throws -> [StreamLag] = { [] }) -> String {
        state.withLock { state in
            var alerts = pipeline?.alerts ?? [:]
            if let pipeline {  // its counters, flush durations, lag and rings are swift-metrics values (IngestMetrics)
                gauge("audit_ingest_ring_capacity", "Events a shard may hold, in its ring and its unflushed batch.",
                      Double(pipeline.ringCapacity))
                if let consumer = pipeline.consumer { record(consumer, taken: pipeline.taken) }
            }
            let horizonAge = (try? feedHorizon()).map { age(of: $0, in: &state) }
            gauge("audit_ingest_feed_horizon_age_seconds", """
                How long the feed's horizon has stayed at one running writer's transaction, as this server's scrapes \
                saw it (0 when none holds it back): tenants' feeds deliver nothing newer meanwhile.
                """, horizonAge.map { $0.secondsDouble.rounded() })
            if let horizonAge { alerts["feed_horizon_stalled"] = horizonAge >= feedHorizonAlertAge }
            if let lags = try? cachedStreams(streams, in: &state) { record(lags, alerts: &alerts, in: &state) }
            labelled("audit_ingest_alert", "1 while an alert fires.", alerts.map { (["alert": $0.key], $0.value ? 1 : 0) }, in: &state)
            labelled("audit_ingest_pool_connections", "Admin connection pool connections, by state.",
                     [(["state": "open"], Double(pool.open)), (["state": "idle"], Double(pool.idle)),
                      (["state": "in_use"], Double(pool.inUse))], in: &state)
            counter("audit_ingest_pool_waits_total", "Checkouts that had to wait.", pool.waits)
            counter("audit_ingest_pool_timeouts_total", "Checkouts that timed out.", pool.timeouts)
            let statistics = try? cached(database, in: &state)
            gauge("audit_ingest_db_up", "1 when the database answered.", statistics == nil ? 0 : 1)
            gauge("audit_ingest_db_partitions", "Month partitions of audit_log and tenant_metrics.",
                  statistics.map { Double($0.partitionCount) })
            labelled("audit_ingest_db_table_bytes", "Total size (table, indexes, TOAST) per table and partition.",
                     statistics?.tables.map { (["table": $0.name], Double($0.totalBytes)) } ?? [], in: &state)
            return registry.emitToString()
        }
    }

    /// The Kafka consumer's state (what `/readyz` checks), as of the status taken at `taken`.
    private func record(_ consumer: ConsumerState, taken: ContinuousClock.Instant) {
        gauge("audit_ingest_kafka_assigned_partitions", "Partitions this process reads.", Double(consumer.assignedPartitions))
        gauge("audit_ingest_kafka_brokers_down", "1 while every broker connection is down.", consumer.brokersDown ? 1 : 0)
        gauge("audit_ingest_kafka_fetch_paused_seconds", "How long fetching has been paused (flushers behind); 0 while fetching.",
              consumer.pausedSince.map { $0.duration(to: taken).secondsDouble.rounded() } ?? 0)
    }

    /// Each destination's lag and state (`stream`), and the alerts stream_destination_failed and stream_lag.
    private func record(_ lags: [StreamLag], alerts: inout [String: Bool], in state: inout State) {
        let labels = { (lag: StreamLag) in ["destination": lag.destination, "tenant": lag.tenant] }
        labelled("audit_ingest_stream_lag_events", """
            Events final in the feed that the destination has not taken yet (counted up to \(StreamLag.countLimit) per tenant).
            """, lags.map { (labels($0), Double($0.events)) }, in: &state)
        labelled("audit_ingest_stream_lag_seconds", "Age of the oldest event the destination has not taken yet (0 when none).",
                 lags.map { (labels($0), $0.seconds.rounded()) }, in: &state)
        labelled("audit_ingest_stream_destination_state", "1 for the destination's state: active, paused or failed.",
                 lags.map { (labels($0).merging(["state": $0.state.rawValue]) { $1 }, 1) }, in: &state)
        alerts["stream_destination_failed"] = lags.contains { $0.state == .failed }
        alerts["stream_lag"] = lags.contains { $0.state == .active && $0.seconds >= streamLagAlertAge.secondsDouble }
    }

    private func cachedStreams(_ load: () throws -> [StreamLag], in state: inout State) throws -> [StreamLag] {
        if let cached = state.streams, cached.at.duration(to: .now) < .seconds(5) { return cached.lags }
        let fresh = try load()
        state.streams = (.now, fresh)
        return fresh
    }

    /// How long `horizon` has been held at its value: from the first scrape that saw it there.
    private func age(of horizon: FeedHorizon, in state: inout State) -> Duration {
        guard horizon.isHeldBack else {
            state.heldHorizon = nil
            return .zero
        }
        if let held = state.heldHorizon, held.value == horizon.horizon { return held.since.duration(to: .now) }
        state.heldHorizon = (horizon.horizon, .now)
        return .zero
    }

    /// Sets an unlabelled gauge; nil removes it until it has a value again.
    private func gauge(_ name: String, _ help: String, _ value: Double?) {
        let gauge = registry.makeGauge(name: name, help: help)
        if let value { gauge.set(value) } else { registry.unregisterGauge(gauge) }
    }

    /// A counter whose total is kept elsewhere (the pool counts its own waits): shown as that total.
    private func counter(_ name: String, _ help: String, _ total: Int) {
        let counter = registry.makeCounter(name: name, help: help)
        counter.reset()
        counter.increment(by: Int64(total))
    }

    private func labelled(_ name: String, _ help: String, _ samples: [([String: String], Double)], in state: inout State) {
        var kept: [[String: String]: Gauge] = [:]
        for (labels, value) in samples {
            let gauge = state.labelled[name]?[labels]
                ?? registry.makeGauge(name: name, labels: labels.sorted { $0.key < $1.key }, help: help)
            gauge.set(value)
            kept[labels] = gauge
        }
        for (labels, gauge) in state.labelled[name] ?? [:] where kept[labels] == nil { registry.unregisterGauge(gauge) }
        state.labelled[name] = kept
    }

    private func cached(_ load: () throws -> DatabaseStatistics, in state: inout State) throws -> DatabaseStatistics {
        if let cached = state.database, cached.at.duration(to: .now) < .seconds(30) { return cached.statistics }
        let fresh = try load()
        state.database = (.now, fresh)
        return fresh
    }
}
