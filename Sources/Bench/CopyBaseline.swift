import Foundation
import Postgres

extension Benchmark {
    /// `COPY audit_log FROM STDIN (FORMAT csv)` of the valid rows on one connection, as psql's
    /// `\copy` does; its progress sampled from another session (pg_stat_progress_copy).
    /// - Parameter settled: waits until the server has counted the session's CPU time.
    func copyBaseline(url: String, data: BenchData, postmaster: pid_t?, settled: () -> Void) throws -> (PathResult, [[Double]]) {
        let serverBefore = ResourceUsage.serverCPU(postmaster: postmaster)
        let sampler = RateSampler(url: url, query: "SELECT coalesce(sum(tuples_processed), 0) FROM pg_stat_progress_copy")
        let cpu = CPUSampler(postmaster: postmaster)
        let started = ContinuousClock.now
        let connection = try PostgresConnection(configuration: PostgresConfiguration(
            connectionString: ConnectionString(url), statementTimeout: nil))
        let columns = #"id, tenant_id, user_id, action, resource_type, resource_id, severity, "timestamp", ip_address, user_agent, custom_metadata"#
        try connection.copyText("COPY audit_log (\(columns)) FROM STDIN (FORMAT csv)") { writer in
            try LineChunks.forEachChunk(of: data.csvPath) { bytes in
                var offset = 0
                while offset < bytes.count {
                    let end = min(offset + 64 * 1024, bytes.count)
                    writer.encoder.appendEncodedRows(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                    try writer.send()
                    offset = end
                }
            }
        }
        connection.close()
        let wall = started.duration(to: .now).secondsDouble
        let rate = sampler.stop()
        let cores = cpu.stop()
        settled()
        let rows = Double(data.validRows)
        let serverCPU = ResourceUsage.serverCPU(postmaster: postmaster).flatMap { after in serverBefore.map { after - $0 } }
        return (PathResult(wallSeconds: wall, eventsPerSecond: rows / wall, ingestCPUSeconds: nil, serverCPUSeconds: serverCPU,
                           cpu: cores.map { [$0[0], $0[1]] }), rate)
    }
}

/// Samples a count from its own session every 250 ms on a thread of its own, as events per second.
final class RateSampler: @unchecked Sendable {  // `samples` is read after the thread ended
    private let done = DispatchSemaphore(value: 0)
    private let stopped = StopFlag()
    private var samples: [[Double]] = []

    init(url: String, query: String) {
        let thread = Thread { [self] in
            defer { done.signal() }
            guard let connection = try? PostgresConnection(url) else { return }
            defer { connection.close() }
            let started = ContinuousClock.now
            var last = (seconds: 0.0, count: 0.0)
            while !stopped.isSet {
                usleep(250_000)
                guard let count = (try? connection.execute(query).scalar).flatMap({ $0.flatMap(Double.init) }) else { continue }
                let seconds = started.duration(to: .now).secondsDouble
                if count >= last.count, seconds > last.seconds {
                    samples.append([seconds, (count - last.count) / (seconds - last.seconds)])
                }
                last = (seconds, count)
            }
        }
        thread.start()
    }

    /// Stops sampling; returns (seconds since start, events/s) pairs.
    func stop() -> [[Double]] {
        stopped.set()
        done.wait()
        return samples
    }
}

/// A flag set once, read from another thread.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
