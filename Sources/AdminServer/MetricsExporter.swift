import Foundation
import Operations
import Pipeline
import Postgres
import Synchronization

/// Renders Prometheus text exposition (format 0.0.4). Database figures (partition count, table
/// sizes) are cached for 30 s so frequent scrapes do not load the catalog.
final class MetricsExporter: Sendable {
    private let cachedDatabase = Mutex<(at: ContinuousClock.Instant, statistics: DatabaseStatistics)?>(nil)

    func render(pipeline: PipelineStatus?, pool: ConnectionPoolStatistics,
                database: () throws -> DatabaseStatistics) -> String {
        var out = PrometheusText()
        if let pipeline {
            let s = pipeline.statistics
            let source = ["source": pipeline.source]
            out.counter("audit_ingest_events_received_total", "Messages handed to the pipeline.", [(source, Double(s.received))])
            out.counter("audit_ingest_events_stored_total", "Rows committed to audit_log.", [(source, Double(s.stored))])
            out.counter("audit_ingest_events_dead_lettered_total", "Rows committed to audit_dead_letter, by reason.",
                        s.deadLettered.sorted { $0.key < $1.key }.map { (source.merging(["reason": $0.key]) { $1 }, Double($0.value)) })
            out.counter("audit_ingest_kafka_messages_unavailable_total",
                        "Kafka messages deleted by retention after the stored position, before they were read.",
                        [(source, Double(s.unavailable))])
            out.counter("audit_ingest_kafka_pauses_total", "Times fetching paused because the flushers were behind.",
                        [(source, Double(s.pauses))])
            out.counter("audit_ingest_flush_retries_total", "Flush transactions retried after a transient error.", [(source, Double(s.retries))])
            out.histogram("audit_ingest_flush_duration_seconds", "Flush transaction duration.", bounds: IngestStatistics.flushLatencyBounds,
                          counts: s.flushLatencyCounts, sum: s.flushSeconds, labels: source)
            out.gauge("audit_ingest_ring_occupancy", "Messages waiting in each shard's ring.",
                      pipeline.ringOccupancy.enumerated().map { (["shard": "\($0.offset)"], Double($0.element)) })
            out.gauge("audit_ingest_ring_capacity", "Slots per shard ring.", [([:], Double(pipeline.ringCapacity))])
            out.gauge("audit_ingest_consumer_lag", "High watermark minus next offset, per partition.",
                      pipeline.lag.sorted { $0.key < $1.key }.map { (source.merging(["partition": "\($0.key)"]) { $1 }, Double($0.value)) })
            out.gauge("audit_ingest_alert", "1 while an alert fires.",
                      pipeline.alerts.sorted { $0.key < $1.key }.map { (["alert": $0.key], $0.value ? 1 : 0) })
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

    mutating func histogram(_ name: String, _ help: String, bounds: [Double], counts: [Int], sum: Double, labels: [String: String]) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        var cumulative = 0
        for (index, bound) in bounds.enumerated() {
            cumulative += counts[index]
            text += "\(name)_bucket\(Self.labels(labels.merging(["le": "\(bound)"]) { $1 })) \(cumulative)\n"
        }
        cumulative += counts.last ?? 0
        text += "\(name)_bucket\(Self.labels(labels.merging(["le": "+Inf"]) { $1 })) \(cumulative)\n"
        text += "\(name)_sum\(Self.labels(labels)) \(Self.number(sum))\n"
        text += "\(name)_count\(Self.labels(labels)) \(cumulative)\n"
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
