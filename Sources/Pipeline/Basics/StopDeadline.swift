import Foundation

/// The hard end of a graceful stop: once `stop` is raised, waits `timeout`, then calls `expire`
/// (which aborts the flushers) unless `cancel` came first. A stop may come while the source
/// waits for room in a shard or while the run drains, and both wait on flushers that cannot
/// commit while PostgreSQL is down or a lock is held: this bounds that wait. It keeps the system
/// clock (not `IngestConfiguration.clock`): it bounds real time spent blocked in libpq.
final class StopDeadline: Sendable {
    private let finished = DispatchSemaphore(value: 0)
    private let expiredFlag = StopSignal()

    init(stop: StopSignal, timeout: Duration, expire: @escaping @Sendable () -> Void) {
        let finished = finished, expiredFlag = expiredFlag
        let thread = Thread {
            var deadline: ContinuousClock.Instant?
            while finished.wait(timeout: .now() + .milliseconds(20)) == .timedOut {
                guard stop.isRaised else { continue }
                let due = deadline ?? .now + timeout
                deadline = due
                if ContinuousClock.now >= due {
                    expiredFlag.raise()
                    expire()
                    return
                }
            }
        }
        thread.name = "stop-deadline"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// True when the deadline passed and `expire` was called.
    var hasExpired: Bool { expiredFlag.isRaised }

    /// The run is over: no expiry any more.
    func cancel() { finished.signal() }
}
