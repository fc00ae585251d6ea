import Foundation

/// Samples, every 250 ms on a thread of its own, how many cores the server's processes and this
/// process use: the picture of where a run's time went, beside its events/s. The thread is named
/// `bench-sampler`, and `ResourceUsage.processCPU` leaves its time out of audit-ingest's.
final class CPUSampler: @unchecked Sendable {  // `samples` is read after the thread ended
    static let threadName = "bench-sampler"
    private let done = DispatchSemaphore(value: 0)
    private let stopped = StopFlag()
    private var samples: [[Double]] = []

    /// - Parameter postmaster: the local server's postmaster (nil: the server's column is 0).
    init(postmaster: pid_t?) {
        let thread = Thread { [self] in
            defer { done.signal() }
            let started = ContinuousClock.now
            var last = (seconds: 0.0, server: ResourceUsage.serverCPUIncludingLive(postmaster: postmaster) ?? 0,
                        ingest: ResourceUsage.processCPU())
            while !stopped.isSet {
                usleep(250_000)
                let seconds = started.duration(to: .now).secondsDouble
                let server = ResourceUsage.serverCPUIncludingLive(postmaster: postmaster) ?? 0
                let ingest = ResourceUsage.processCPU()
                if seconds > last.seconds {
                    let interval = seconds - last.seconds
                    samples.append([seconds, max(0, server - last.server) / interval, max(0, ingest - last.ingest) / interval])
                }
                last = (seconds, server, ingest)
            }
        }
        thread.name = Self.threadName
        thread.start()
    }

    /// Stops sampling; returns (seconds since start, server cores busy, audit-ingest cores busy).
    func stop() -> [[Double]] {
        stopped.set()
        done.wait()
        return samples
    }
}
