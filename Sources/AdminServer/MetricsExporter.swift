import Foundation
import Operations
import Pipeline
import Postgres
import Synchronization

/// Renders the Prometheus text exposition (format 0.0.4) of what is not a swift-metrics value:
/// pipeline status (alerts, ring capacity), the admin pool and the database. Database figures (partition count, table
/// sizes) are cached for 30 s so frequent scrapes do not load the catalog.
final class MetricsExporter: Sendable {
    private let cachedDatabase = Mutex<(at: ContinuousClock.Instant, statistics: DatabaseStatistics)?>(nil)

    func render(pipeline: PipelineStatus?, pool: ConnectionPoolStatistics,
                database: () throws -> DatabaseStatistics) -> String {
        var out = PrometheusText()
        if let pipeline {  // its counters, flush durations, lag and rings are swift-metrics values (IngestMetrics)
            out.gauge("audit_ingest_ring_capacity", "Events a shard may hold, in its ring and its unflushed batch.", [([:], Double(pipeline.ringCapacity))])
            out.gauge("audit_ingest_alert", "1 while an alert fires.",
                      pipeline.alerts.sorted { $0.key < $1.key }.map { (["alert": $0.key], $0.value ? 1 : 0) })
            if let consumer = pipeline.consumer { render(consumer, taken: pipeline.taken, into: &out) }
        }
        out.gauge("audit_ingest_pool_connections", "Admin connection pool connections, by state.",
                  [(["state": "open"], Double(pool.open)), (["state": "idle"], Double(pool.idle)), (["state": "in_use"], Double(pool.inUse))])
        out.counter("audit_ingest_pool_waits_total", "Checkouts that had to wait.", [([:], Double(pool.waits))])
        out.counter("audit_ingest_pool_timeouts_total", "Checkouts that timed out.", [([:], Double(pool.timeouts))])
        if let statistics = try? cachedStatistics(database) {
            out.gauge("audit_ingest_db_partitions", "Month partitions of audit_log and tenant_metrics.", [([:], Double(statistics.partitionCount))])
            out.gauge("audit_ingest_db_table_bytes", "Total size (table, indexes, TOAST) per table and partition.",
                      statistics.tables.map { (["table": $0.name], Double($0.totalBytes)) })
            out.gauge("audit_ingest_db_up", "1 when the database answered.", [([:], 1)])
        } else {
            out.gauge("audit_ingest_db_up", "1 when the database answered.", [([:], 0)])
        }
        return out.text
    }

    /// The Kafka consumer's state (what `/readyz` checks), as of the status taken at `taken`.
    private func render(_ consumer: ConsumerState, taken: ContinuousClock.Instant, into out: inout PrometheusText) {
        out.gauge("audit_ingest_kafka_assigned_partitions", "Partitions this process reads.",
                  [([:], Double(consumer.assignedPartitions))])
        out.gauge("audit_ingest_kafka_brokers_down", "1 while every broker connection is down.",
                  [([:], consumer.brokersDown ? 1 : 0)])
        out.gauge("audit_ingest_kafka_fetch_paused_seconds", "How long fetching has been paused (flushers behind); 0 while fetching.",
                  [([:], consumer.pausedSince.map { $0.duration(to: taken).secondsDouble.rounded() } ?? 0)])
    }

    private func cachedStatistics(_ load: () throws -> DatabaseStatistics) throws -> DatabaseStatistics {
        if let cached = cachedDatabase.withLock({ $0 }), cached.at.duration(to: .now) < .seconds(30) { return cached.statistics }
        let fresh = try load()
        cachedDatabase.withLock { $0 = (.now, fresh) }
        return fresh
    }
}

/// Builds Prometheus text: `# HELP`, `# TYPE`, then samples with escaped label values.
struct PrometheusText {
    private(set) var text = ""

    mutating func counter(_ name: String, _ help: String, _ samples: [([String: String], Double)]) {
        family(name, help, "counter", samples)
    }

    mutating func gauge(_ name: String, _ help: String, _ samples: [([String: String], Double)]) {
        family(name, help, "gauge", samples)
    }

    private mutating func family(_ name: String, _ help: String, _ type: String, _ samples: [([String: String], Double)]) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        for (labels, value) in samples { text += "\(name)\(Self.labels(labels)) \(Self.number(value))\n" }
    }

    static func labels(_ labels: [String: String]) -> String {
        guard !labels.isEmpty else { return "" }
        let escaped = labels.sorted { $0.key < $1.key }.map { key, value in
            let value = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            return "\(key)=\"\(value)\""
        }
        return "{" + escaped.joined(separator: ",") + "}"
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
