import Foundation
import Logging
import Postgres

/// Folds the run's counts (`TenantCountFold`) every `IngestConfiguration.foldEvery`, on a thread
/// and a connection of its own, opened for each fold. A fold of a minute of deltas can take
/// seconds on a large run; done on a flusher's thread it stopped that shard for as long, and
/// through backpressure every shard with it. Here the flushes go on: the fold only deletes the
/// deltas it moves, and the flushes only append.
final class CountFolder: Sendable {
    private let wake = DispatchSemaphore(value: 0)
    private let ended = DispatchSemaphore(value: 0)
    private let stopped = StopSignal()
    private let started = StopSignal()
    private let database: PostgresConfiguration
    private let every: Duration
    private let logger: Logger

    /// `lockTimeout` bounds a fold's wait for a lock another session holds on tenant_metrics, so
    /// the end of a run (`stop()`) never waits on it for longer.
    init(database: PostgresConfiguration, every: Duration, lockTimeout: Duration, logger: Logger) {
        var session = database
        session.sessionSettings["lock_timeout"] = session.sessionSettings["lock_timeout"] ?? "\(max(lockTimeout.milliseconds, 1))"
        self.database = session
        self.every = every
        self.logger = logger
    }

    func start() {
        started.raise()
        let thread = Thread { [self] in
            defer { ended.signal() }
            // A zero interval (tests) still waits a little between folds.
            let interval = max(every, .milliseconds(10))
            while wake.wait(timeout: .now() + .nanoseconds(Int(interval.secondsDouble * 1e9))) == .timedOut, !stopped.isRaised {
                fold()
            }
        }
        thread.name = "count-fold"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// Ends the thread, and returns once the fold it may be in is over: the engine's last fold
    /// then finds no fold holding the lock. Safe to call more than once, and from any thread.
    func stop() {
        guard started.isRaised else { return }
        stopped.raise()
        wake.signal()
        ended.wait()
        ended.signal()  // for the next stop()
    }

    private func fold() {
        do {
            let connection = try PostgresConnection(configuration: database)
            defer { connection.close() }
            try TenantCountFold.fold(on: connection)
        } catch {
            logger.warning("could not fold counts into tenant_metrics; the next fold takes them", metadata: [LogKey.error: "\(error)"])
        }
    }
}
