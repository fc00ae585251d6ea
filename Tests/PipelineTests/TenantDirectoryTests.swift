import Foundation
import Pipeline
import Postgres
import Testing

/// The unknown-tenant rule reads the registered tenants through a cache: a tenant registered
/// during a run is known from the next refresh on, and the engine's clock decides when that is.
@Suite struct TenantDirectoryTests {
    @Test func aNewTenantIsKnownOnceTheCacheIsOlderThanTheRefreshInterval() throws {
        let fixture = try PipelineFixture(tenants: 2)
        let (clock, _) = ThreadClock.manual()
        let directory = TenantDirectory(refreshInterval: .seconds(10), clock: clock)
        try directory.refreshIfStale(on: fixture.connection)  // never loaded: loads
        #expect(directory.count == 2)

        try fixture.connection.query("INSERT INTO tenant (id, name, code) VALUES ($1, 'Late', 'late')", [UUID().uuidString.lowercased()])
        clock.sleep(.seconds(9))
        try directory.refreshIfStale(on: fixture.connection)
        #expect(directory.count == 2, "the cache is 9 s old: not stale yet")
        clock.sleep(.seconds(2))
        try directory.refreshIfStale(on: fixture.connection)
        #expect(directory.count == 3, "the cache is 11 s old: reloaded")
    }
}
