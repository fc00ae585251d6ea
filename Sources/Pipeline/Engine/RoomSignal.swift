import Dispatch
import Synchronization

/// Wakes the source thread when a flusher frees room (bytes or events of its budget, or ring
/// slots), so a source that must wait for room sleeps until then instead of polling in short
/// sleeps, each of which costs a context switch (measured: a Kafka consumer held up by
/// PostgreSQL spent about 5% of its CPU waking every 200 µs to look).
///
/// One waiter (the source thread), any number of ringers (the flushers). A wait also ends at its
/// timeout, so a wake-up that is lost or comes late only delays: the waiter re-checks its
/// condition, an abort among them, every time it wakes.
final class RoomSignal: Sendable {
    private let waiting = Atomic<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)

    /// Returns when `hasRoom` holds, when a flusher rang, or after `timeout`. Callers loop on
    /// their condition: a wake-up may also be one left over from an earlier wait.
    func wait(timeout: Duration, unless hasRoom: () -> Bool) {
        // Announce the wait before the last look: a flusher that frees room after that look
        // sees the flag and rings (both sides order flag and room with a full fence).
        waiting.store(true, ordering: .sequentiallyConsistent)
        if !hasRoom() {
            let nanoseconds = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
            _ = semaphore.wait(timeout: .now() + .nanoseconds(nanoseconds))
        }
        waiting.store(false, ordering: .relaxed)
    }

    /// Called by a flusher after it freed room: wakes the source if it waits.
    func ring() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if waiting.load(ordering: .relaxed), waiting.exchange(false, ordering: .acquiringAndReleasing) {
            semaphore.signal()
        }
    }
}
