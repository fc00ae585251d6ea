import Dispatch
import Synchronization

/// Wakes a thread that waits for another to do something: the source waiting for a flusher to
/// free room (bytes or events of its budget, or ring slots), a flusher waiting for the source to
/// hand it an item. The waiter sleeps until then instead of polling in short sleeps, each of
/// which costs a context switch (measured: a Kafka consumer held up by PostgreSQL spent about 5%
/// of its CPU waking every 200 µs to look).
///
/// One waiter, any number of ringers. A wait also ends at its timeout, so a wake-up that is lost
/// or comes late only delays: the waiter re-checks its condition, an abort among them, every
/// time it wakes.
final class Doorbell: Sendable {
    private let waiting = Atomic<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)

    /// Returns when `ready` holds, when another thread rang, or after `timeout`. Callers loop on
    /// their condition: a wake-up may also be one left over from an earlier wait.
    func wait(timeout: Duration, unless ready: () -> Bool) {
        // Announce the wait before the last look: a ringer that acts after that look sees the
        // flag and rings (each side puts a full fence between its store and its load).
        waiting.store(true, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if !ready() {
            let nanoseconds = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
            _ = semaphore.wait(timeout: .now() + .nanoseconds(nanoseconds))
        }
        waiting.store(false, ordering: .relaxed)
    }

    /// Called after doing what the waiter may wait for: wakes it if it waits.
    func ring() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if waiting.load(ordering: .relaxed), waiting.exchange(false, ordering: .acquiringAndReleasing) {
            semaphore.signal()
        }
    }
}
