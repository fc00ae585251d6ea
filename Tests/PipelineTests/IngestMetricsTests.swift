import CoreMetrics
import MetricsTestKit
import Pipeline
import Testing

/// The pipeline's figures are swift-metrics values (what `/metrics` exports through swift-prometheus).
@Suite(.timeLimit(.minutes(2))) struct IngestMetricsTests {
    @Test func backfillReportsStoredDeadLetteredAndFlushDurations() throws {
        let fixture = try PipelineFixture()
        let file = try sampleFile(events: 2000, invalidRatio: 0.05)
        let metrics = TestMetrics()
        let summary = try fixture.engine(batchSize: 300, metrics: metrics).ingest(try FileSource(path: file.path))
        let source = [("source", summary.source)]

        #expect(try metrics.expectCounter("audit_ingest_events_stored_total", source).totalValue == Int64(summary.stored))
        #expect(try metrics.expectCounter("audit_ingest_events_received_total", source).totalValue == 2000)
        #expect(summary.deadLetteredTotal > 0)
        for (reason, count) in summary.deadLettered {
            let counter = try metrics.expectCounter("audit_ingest_events_dead_lettered_total", [("reason", reason)] + source)
            #expect(counter.totalValue == Int64(count), "\(reason)")
        }
        let flushes = try metrics.expectTimer("audit_ingest_flush_duration_seconds", source).values
        #expect(flushes.count >= (2000 / 300) / 3 && flushes.allSatisfy { $0 > 0 })
    }
}
