import Foundation

/// How long to wait before retrying a transient failure (connection loss, server restart,
/// serialization failure): exponential from `initial`, capped at `maximum`. One policy for every
/// retry loop of the engine.
struct RetryPolicy: Sendable {
    /// Default: 200 ms.
    var initial: Duration = .milliseconds(200)
    /// Default: 5 s.
    var maximum: Duration = .seconds(5)
    var clock: ThreadClock = .system

    /// The wait before retry number `attempt` (1 for the first retry).
    func delay(attempt: Int) -> Duration {
        let doubled = initial * (1 << min(max(attempt - 1, 0), 16))
        return min(doubled, maximum)
    }

    /// Waits before retry `attempt`, in short steps so a raised `stop` ends the wait at once.
    /// Returns false when `stop` was raised.
    func wait(attempt: Int, unless stop: StopSignal) -> Bool {
        let deadline = clock.now() + delay(attempt: attempt)
        while clock.now() < deadline {
            if stop.isRaised { return false }
            clock.sleep(min(.milliseconds(20), clock.now().duration(to: deadline)))
        }
        return !stop.isRaised
    }
}
