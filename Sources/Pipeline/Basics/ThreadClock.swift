import Foundation
import Synchronization

/// Time for the engine's threads (they block in libpq and librdkafka, so they wait by sleeping,
/// not with `Clock.sleep`): `system` reads `ContinuousClock` and sleeps; `manual()` moves only
/// when something sleeps on it, so tests of waits run at once and see exactly what was waited.
package struct ThreadClock: Sendable {
    package var now: @Sendable () -> ContinuousClock.Instant
    package var sleep: @Sendable (Duration) -> Void

    package init(now: @escaping @Sendable () -> ContinuousClock.Instant, sleep: @escaping @Sendable (Duration) -> Void) {
        self.now = now
        self.sleep = sleep
    }

    package static let system = ThreadClock(now: { .now }, sleep: { duration in
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
    })

    /// A clock that starts now and advances by what is slept on it; `slept` sums those sleeps.
    package static func manual() -> (clock: ThreadClock, slept: @Sendable () -> Duration) {
        let start = ContinuousClock.now
        let elapsed = Mutex<Duration>(.zero)
        let clock = ThreadClock(now: { start + elapsed.withLock { $0 } },
                                sleep: { duration in elapsed.withLock { $0 += duration } })
        return (clock, { elapsed.withLock { $0 } })
    }
}
