import Foundation
import Operations
import Postgres
import TestSupport
import Testing

/// Health after connection-pool checkout timeouts: unhealthy right after one, healthy again once
/// none happened for the window (a burst must not keep /utils/db/health at 503 for ever).
@Suite(.serialized, .timeLimit(.minutes(5))) struct HealthRecoveryTests {
    @Test func poolTimeoutsMakeHealthFailOnlyForAWhile() throws {
        let url = try TestDatabase.createMigrated(prefix: "health")
        let database = PostgresConfiguration(connectionString: ConnectionString(url))
        let pool = ConnectionPool(database, configuration: ConnectionPoolConfiguration(
            size: 1, maxOverflow: 0, checkoutTimeout: .milliseconds(50)))
        defer { pool.close() }
        let expected = try TestDatabase.migrationVersions()
        let window: Duration = .milliseconds(500)

        let held = try pool.checkout()
        #expect(throws: PostgresError.self) { try pool.checkout() }
        pool.checkin(held)
        let rightAfter = HealthReport.check(database, expectedMigrations: expected, pool: pool.statistics, poolTimeoutWindow: window)
        #expect(!rightAfter.healthy)
        #expect(rightAfter.problems.contains { $0.contains("timed out 1 time(s)") }, "\(rightAfter.problems)")

        let deadline = ContinuousClock.now + .seconds(10)
        var report = rightAfter
        while !report.healthy && ContinuousClock.now < deadline {
            report = HealthReport.check(database, expectedMigrations: expected, pool: pool.statistics, poolTimeoutWindow: window)
        }
        #expect(report.healthy, "\(report.problems)")
        #expect(report.pool?.timeouts == 1, "the counter still says what happened")
    }
}
