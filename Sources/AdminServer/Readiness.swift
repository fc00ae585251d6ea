import Foundation
import Hummingbird
import Logging
import Operations
import Postgres
import Pipeline
import Synchronization

/// `GET /readyz`, for Kubernetes readiness probes (no token, like `/livez`): ready when the
/// database answers, its migrations are this binary's, and, when a consumer runs in this
/// process, it has partitions, a broker answers, fetching is not paused for longer than
/// `maximumPause`, and its loop renewed its status within `maximumStatusAge`.
///
/// The body names what is not ready in a few words and never a connection string or a server
/// message: the endpoint is unauthenticated. The token-protected `/utils/db/health` and the log
/// (a warning each time readiness is lost) have the details.
struct ReadinessReport: Codable, Sendable, Equatable {
    var ready: Bool
    /// Check name -> passed: `database`, `migrations`, and with a consumer `kafka_partitions`,
    /// `kafka_brokers`, `kafka_fetching`, `kafka_loop`.
    var checks: [String: Bool]
    /// One line per failed check.
    var problems: [String]

    struct Limits: Sendable {
        /// Default: 30 s.
        var maximumPause: Duration = .seconds(30)
        /// The consumer publishes its status about once a second. Default: 30 s.
        var maximumStatusAge: Duration = .seconds(30)
    }

    /// - Parameters:
    ///   - consumer: the running pipeline's status provider, nil when no consumer runs here.
    ///   - health: the database's; nil while the first check is still running.
    static func evaluate(database health: HealthReport?, consumer: (any PipelineStatusProvider)?, limits: Limits,
                         now: ContinuousClock.Instant = .now) -> ReadinessReport {
        var report = ReadinessReport(ready: true, checks: [:], problems: [])
        let databaseProblem: String? = switch health {
        case nil: "database: the first check is still running"
        case let health? where !health.reachable: "database: unreachable"
        case let health? where health.migrationsApplied == nil: "database: reachable, but its catalog could not be read"
        default: nil
        }
        report.check("database", databaseProblem == nil, databaseProblem ?? "")
        if let health, let applied = health.migrationsApplied {
            report.check("migrations", health.migrationsUpToDate, """
                migrations: \(applied) applied, \(health.migrationsExpected) expected with this binary's checksums: \
                run audit-ingest migrate
                """)
        } else {
            report.check("migrations", false, "migrations: unknown (the database did not answer)")
        }
        guard let consumer else { return report }
        guard let status = consumer.currentStatus(), let state = status.consumer else {
            report.check("kafka_loop", false, "kafka: the consumer has not started yet")
            return report
        }
        let age = status.taken.duration(to: now)
        report.check("kafka_loop", age <= limits.maximumStatusAge,
                     "kafka: the consumer loop has not reported for \(Int(age.secondsDouble)) s")
        report.check("kafka_partitions", state.assignedPartitions > 0, "kafka: no partitions assigned")
        report.check("kafka_brokers", !state.brokersDown, "kafka: every broker connection is down")
        let paused = state.pausedSince.map { $0.duration(to: now) } ?? .zero
        report.check("kafka_fetching", paused <= limits.maximumPause, """
            kafka: fetching paused for \(Int(paused.secondsDouble)) s (limit \(Int(limits.maximumPause.secondsDouble)) s): \
            the flushers are behind or PostgreSQL is down
            """)
        return report
    }

    private mutating func check(_ name: String, _ passed: Bool, _ problem: @autoclosure () -> String) {
        checks[name] = passed
        if !passed {
            ready = false
            problems.append(problem())
        }
    }
}

/// Runs the database part of readiness at most once at a time and reuses a result for
/// `reuseFor`, so frequent probes (or a server that does not answer) cannot pile up
/// connections; logs when readiness is lost and regained.
final class ReadinessProbe: Sendable {
    private struct State {
        var last: (at: ContinuousClock.Instant, health: HealthReport)?
        var checking = false
        var wasReady: Bool?
    }

    private let state = Mutex(State())
    /// Default: 1 s.
    let reuseFor: Duration

    init(reuseFor: Duration = .seconds(1)) {
        self.reuseFor = reuseFor
    }

    /// The latest database health: a fresh one from `check` (blocking; run it on a thread that
    /// may block) unless one is recent or another caller is checking already.
    /// nil while the first check runs for another caller.
    func databaseHealth(check: () -> HealthReport) -> HealthReport? {
        enum Decision { case reuse(HealthReport?), run }
        let decision: Decision = state.withLock { state in
            if let last = state.last, state.checking || last.at.duration(to: .now) < reuseFor { return .reuse(last.health) }
            if state.checking { return .reuse(nil) }
            state.checking = true
            return .run
        }
        guard case .run = decision else {
            if case .reuse(let health) = decision { return health }
            return nil
        }
        let health = check()
        state.withLock {
            $0.last = (.now, health)
            $0.checking = false
        }
        return health
    }

    /// Logs a warning when readiness is lost (with the database's detailed, masked problems) and
    /// a notice when it is regained.
    func record(_ report: ReadinessReport, health: HealthReport?, logger: Logger) {
        let changed = state.withLock { state -> Bool in
            defer { state.wasReady = report.ready }
            return state.wasReady != report.ready
        }
        guard changed else { return }
        if report.ready {
            logger.notice("ready")
        } else {
            var metadata: Logger.Metadata = [LogKey.problems: "\(report.problems)"]
            if let health, !health.problems.isEmpty { metadata[LogKey.database] = "\(health.problems)" }  // masked by PostgresError
            logger.warning("not ready", metadata: metadata)
        }
    }
}

extension AdminServer {
    /// `GET /readyz`: 200 or 503 with a `ReadinessReport`.
    func readyz() async throws -> Response {
        let database = configuration.database
        let expected = configuration.expectedMigrations
        let health = try await blocking {
            self.readiness.databaseHealth { HealthReport.check(database, acceptedMigrations: expected) }
        }
        let report = ReadinessReport.evaluate(database: health, consumer: pipeline,
                                              limits: .init(maximumPause: configuration.readyMaximumPause))
        readiness.record(report, health: health, logger: logger)
        return try Self.json(report, status: report.ready ? .ok : .serviceUnavailable)
    }
}
