import Foundation
import Logging
import Pipeline
import Postgres

/// The batch log's integrator inside a long-running process (`consume`, `admin serve`): a
/// `LogIntegrator` round every `interval` on a thread of its own, with a connection per round.
/// Several processes may run it: the advisory lock lets one sign per round, and the others'
/// rounds find it held and sign nothing. A failed round is logged and retried at the next.
public final class LogIntegratorService: Sendable {
    private let integrator: LogIntegrator
    private let database: PostgresConfiguration
    private let interval: Duration
    private let clock: ThreadClock
    private let logger: Logger

    package init(integrator: LogIntegrator, database: PostgresConfiguration, interval: Duration, clock: ThreadClock = .system,
                 logger: Logger = Logger(label: "audit-ingest.checkpoint")) {
        self.integrator = integrator
        self.database = database
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    /// One round on a new connection; nil when another integrator held the lock.
    public func runOnce() throws -> LogIntegrator.Round? {
        let connection = try PostgresConnection(configuration: database)
        defer { connection.close() }
        return try integrator.run(on: connection)
    }

    /// A round at once, then every `interval`, until `stop` is raised. Blocks: run it on a
    /// thread of its own (`ThreadService`).
    package func loop(until stop: StopSignal) {
        var next = clock.now()
        while !stop.isRaised {
            guard clock.now() >= next else {
                clock.sleep(.milliseconds(200))  // a stop is noticed within 200 ms
                continue
            }
            next = clock.now() + interval
            do {
                if let round = try runOnce(), round.appended > 0 {
                    logger.info("checkpoint signed", metadata: [LogKey.batches: "\(round.treeSize)", LogKey.appended: "\(round.appended)"])
                }
            } catch {
                logger.error("checkpoint round failed; will retry", metadata: [LogKey.error: "\(error)"])
            }
        }
    }
}
