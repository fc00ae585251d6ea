import CoreMetrics
import Synchronization

/// A swift-metrics backend that keeps every flush duration (`audit_ingest_flush_duration_seconds`)
/// for percentiles, and drops everything else.
final class FlushLatencies: MetricsFactory, Sendable {
    private let recorder = Recorder()

    /// The p-th percentile (0...1) in milliseconds; nil without samples.
    func percentile(_ p: Double) -> Double? {
        let sorted = recorder.samples.withLock { $0 }.sorted()
        guard !sorted.isEmpty else { return nil }
        return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1_000_000
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        label == "audit_ingest_flush_duration_seconds" ? recorder : NOOPMetricsHandler.instance
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { NOOPMetricsHandler.instance }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { NOOPMetricsHandler.instance }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}

    private final class Recorder: TimerHandler, Sendable {
        let samples = Mutex<[Int64]>([])
        func recordNanoseconds(_ duration: Int64) { samples.withLock { $0.append(duration) } }
    }
}
