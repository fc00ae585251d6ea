import Foundation
import Logging
import Postgres

/// Runs the tenant_metrics rollup for today (UTC) on a thread of its own every `interval`, while
/// the pipeline runs (`rollup_tenant_metrics`, schemas/migrations/0005). Stops with `stop`.
public final class MetricsRollupService: Sendable {
    private let database: PostgresConfiguration
    private let interval: Duration
    private let stop: StopSignal
    private let logger: Logger

    public init(database: PostgresConfiguration, interval: Duration, stop: StopSignal,
                logger: Logger = Logger(label: "audit-ingest.rollup")) {
        self.database = database
        self.interval = interval
        self.stop = stop
        self.logger = logger
    }

    public func start() {
        let thread = Thread { self.loop() }
        thread.name = "metrics-rollup"
        thread.start()
    }

    private func loop() {
        var next = ContinuousClock.now + interval
        while !stop.isRaised {
            guard ContinuousClock.now >= next else {
                usleep(200_000)
                continue
            }
            next = ContinuousClock.now + interval
            do {
                let connection = try PostgresConnection(configuration: database)
                defer { connection.close() }
                let rows = try connection.transaction { connection in
                    try connection.execute("SELECT rollup_tenant_metrics((now() AT TIME ZONE 'UTC')::date)").scalar ?? "0"
                }
                logger.debug("metrics rollup", metadata: ["tenants": "\(rows)"])
            } catch {
                logger.warning("metrics rollup failed; will retry", metadata: ["error": "\(error)"])
            }
        }
    }
}
