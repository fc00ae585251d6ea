import Dispatch
import Foundation
import Hummingbird
import ServiceLifecycle
import Logging
import Operations
import Pipeline
import Postgres
import Prometheus
import Streaming

/// The admin HTTP API: the seed document's `/utils/db/...` endpoints, Prometheus `/metrics` and
/// the tenant read API (`/v1/tenants/...`, `TenantReadAPI`, with tenant tokens of its own), and
/// the probes `/livez` and `/readyz` (Readiness.swift).
///
/// Binds to 127.0.0.1 by default. Every endpoint except `/metrics`, `/livez` and `/readyz` needs
/// `Authorization: Bearer <ADMIN_TOKEN>`; without a configured token they answer 401. Requests
/// must name this server in their Host header (see `AdminAccess`), and a connection that sends
/// nothing for `requestIdleTimeout` (a stalled header or body) is closed. Database work runs on
/// Dispatch threads, never on Swift's cooperative pool, through a small connection pool of its own;
/// tenant exports through a second one, as many at once as `ExportAdmission` admits.
public final class AdminServer: Service, Sendable {
    public struct Configuration: Sendable {
        /// Default: 127.0.0.1.
        public var host: String
        /// Default: 9090.
        public var port: Int
        /// Bearer token for every endpoint but `/metrics`, `/livez` and `/readyz`; nil (or empty) refuses them all.
        public var token: String?
        /// Host names (besides the bound address) clients may use, e.g. a DNS name behind a proxy.
        public var allowedHosts: [String]
        /// A connection that sends nothing for this long while a request is read (or between
        /// requests) is closed. Default: 10 s.
        public var requestIdleTimeout: Duration
        public var database: PostgresConfiguration
        /// The tenant read API's own login (`--read-database-url`); nil: `database`'s. Tenant tokens
        /// are served only over a login fit for them (`ReadLogin`).
        public var readDatabase: PostgresConfiguration?
        /// Serve tenant tokens even when the read API's login is privileged (development only).
        public var allowPrivilegedReadLogin = false
        /// Version -> the checksums that count as applied, of the migrations this binary ships (health).
        public var expectedMigrations: [Int: Set<String>]
        /// Months of partitions `optimize` makes ahead. Default: 3.
        public var premake: Int
        /// `/readyz` fails once the consumer has paused fetching for longer. Default: 30 s.
        public var readyMaximumPause: Duration = .seconds(30)
        /// Exports at once per tenant (default 2) and in all (default 4, on a pool of their own).
        public var exportsPerTenant = 2
        public var exports = 4
        /// An export whose client takes nothing for this long is aborted. Default: 30 s.
        public var exportStallTimeout: Duration = .seconds(30)
        /// The feed_horizon_stalled alert fires once the horizon stays at one writer this long. Default: 300 s.
        public var feedHorizonAlertAge: Duration = .seconds(300)
        /// The stream_lag alert fires once an active destination's oldest undelivered event is this old. Default: 600 s.
        public var streamLagAlertAge: Duration = .seconds(600)
        /// Tenants' own destinations (`TenantStreamAPI`): the key that seals their secrets (nil:
        /// they are refused with 503), and whether their URLs may be local (development).
        public var streamSecrets = Streamer.Secrets()

        public init(host: String = "127.0.0.1", port: Int = 9090, token: String?, allowedHosts: [String] = [],
                    requestIdleTimeout: Duration = .seconds(10), database: PostgresConfiguration,
                    expectedMigrations: [Int: Set<String>], premake: Int = 3) {
            self.host = host
            self.port = port
            self.token = token
            self.allowedHosts = allowedHosts
            self.requestIdleTimeout = requestIdleTimeout
            self.database = database
            self.expectedMigrations = expectedMigrations
            self.premake = premake
        }
    }

    public let configuration: Configuration
    let pipeline: (any PipelineStatusProvider)?
    private let pool: ConnectionPool
    /// The tenant read API's pools, on `readDatabase`'s login.
    private let readPool: ConnectionPool
    private let exportPool: ConnectionPool
    private let metrics: ScrapedMetrics
    private let tenantRead: TenantReadAPI
    private let tenantStream: TenantStreamAPI
    let readiness = ReadinessProbe()
    /// Held by a maintenance command while it runs.
    private let maintenanceTurn = NSLock()
    let logger: Logger

    /// - Parameters:
    ///   - pipeline: the running pipeline's status (alerts, ring capacity), if any.
    ///   - registry: the registry `/metrics` renders. Pass the one swift-metrics was bootstrapped
    ///     with, so the pipeline's counters, flush durations, lag and rings are in it; the admin
    ///     server adds its own figures to it at every scrape.
    package init(configuration: Configuration, pipeline: (any PipelineStatusProvider)? = nil,
                registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), logger: Logger = Logger(label: "audit-ingest.admin")) {
        self.configuration = configuration
        self.pipeline = pipeline
        self.logger = logger
        pool = ConnectionPool(configuration.database,
                              configuration: ConnectionPoolConfiguration(size: 2, maxOverflow: 4, checkoutTimeout: .seconds(10)),
                              logger: logger)
        let limits = ExportAdmission.Limits(perTenant: configuration.exportsPerTenant, total: configuration.exports,
                                            stallTimeout: configuration.exportStallTimeout)
        let reads = configuration.readDatabase
        readPool = reads.map { ConnectionPool($0, configuration: ConnectionPoolConfiguration(size: 2, maxOverflow: 4, checkoutTimeout: .seconds(10)),
                                              logger: logger) } ?? pool
        // Exports never wait for a connection: admission lets in no more than the pool holds.
        exportPool = ConnectionPool(reads ?? configuration.database,
                                    configuration: ConnectionPoolConfiguration(size: 1, maxOverflow: limits.total - 1,
                                                                               checkoutTimeout: .seconds(10)),
                                    logger: logger)
        metrics = ScrapedMetrics(registry: registry, feedHorizonAlertAge: configuration.feedHorizonAlertAge,
                                 streamLagAlertAge: configuration.streamLagAlertAge)
        tenantRead = TenantReadAPI(adminToken: configuration.token, pool: readPool, exportPool: exportPool,
                                   admission: ExportAdmission(limits: limits),
                                   login: ReadLogin(allowPrivileged: configuration.allowPrivilegedReadLogin, logger: logger),
                                   logger: logger)
        tenantStream = TenantStreamAPI(read: tenantRead, pool: readPool, secrets: configuration.streamSecrets)
    }

    /// Serves until graceful shutdown (in a `ServiceGroup`) or cancellation.
    public func run() async throws {
        // Says at start, when the database answers, whether tenant tokens will be served.
        DispatchQueue.global().async { [readPool, tenantRead, logger] in
            do {
                tenantRead.login.record(try readPool.withConnection { try ReadLogin.check(on: $0) })
            } catch {
                logger.warning("cannot check the read API's login yet; tenant tokens are checked at their first request",
                                    metadata: [LogKey.error: "\(error)"])
            }
        }
        let idleNanoseconds = Int64(configuration.requestIdleTimeout.secondsDouble * 1e9)
        let app = Application(router: makeRouter(),
                              server: .http1(configuration: .init(idleTimeout: .nanoseconds(idleNanoseconds))),
                              configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                   serverName: "audit-ingest"),
                              logger: logger)
        try await app.run()
    }

    func makeRouter() -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        router.add(middleware: AdminErrorLogging())
        router.add(middleware: AdminAccess(token: configuration.token, boundHost: configuration.host,
                                           allowedHosts: configuration.allowedHosts))
        router.get("/livez") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.get("/readyz") { _, _ in try await self.readyz() }
        router.get("/utils/db/health") { _, _ in
            let report = try await self.blocking {
                HealthReport.check(self.configuration.database, acceptedMigrations: self.configuration.expectedMigrations,
                                   pool: self.pool.statistics)
            }
            return try Self.json(report, status: report.healthy ? .ok : .serviceUnavailable)
        }
        router.get("/utils/db/stats") { _, _ in
            try Self.json(try await self.withConnection { try DatabaseStatistics.collect(on: $0, pool: self.pool.statistics) })
        }
        router.post("/utils/db/optimize") { request, _ in
            let given = request.uri.queryParameters.get("premake")
            guard let premake = given.map({ Int($0) }) ?? self.configuration.premake else {
                return try Self.error("premake must be a whole number of months, not \(given ?? "")", status: .badRequest)
            }
            return try await self.maintenance { try OptimizeReport.run(monthsAhead: premake, on: $0) }
        }
        router.post("/utils/db/vacuum") { request, _ in
            let table = request.uri.queryParameters.get("table")
            let analyze = request.uri.queryParameters.get("analyze") == "true"
            return try await self.maintenance { try Maintenance.vacuum(table: table, analyze: analyze, on: $0) }
        }
        router.post("/utils/db/reindex") { request, _ in
            let table = request.uri.queryParameters.get("table")
            return try await self.maintenance { try Maintenance.reindex(table: table, on: $0) }
        }
        router.get("/utils/db/tenant/:id/performance") { _, context in
            let id = context.parameters.get("id") ?? ""
            do {
                return try Self.json(try await self.withConnection { try TenantReport.build(tenantID: id, on: $0) })
            } catch TenantReport.Lookup.malformedID {
                return try Self.error("\(id) is not a tenant id (expected a UUID)", status: .badRequest)
            } catch TenantReport.Lookup.notFound {
                return try Self.error("no tenant \(id)", status: .notFound)
            }
        }
        router.get("/metrics") { _, _ in
            let text = try await self.blocking {
                self.metrics.scrape(pipeline: self.pipeline?.currentStatus(), pool: self.pool.statistics,
                                    database: { try self.pool.withConnection { try DatabaseStatistics.collect(on: $0) } },
                                    feedHorizon: { try self.pool.withConnection { try FeedHorizon.read(on: $0) } },
                                    streams: { try self.pool.withConnection { try StreamLag.read(on: $0) } })
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        tenantRead.register(on: router)
        tenantStream.register(on: router)
        StaticDocuments.register(on: router)
        return router
    }

    // MARK: Helpers

    /// Runs one maintenance command at a time (REINDEX CONCURRENTLY and optimize's ANALYZE
    /// deadlock when they meet); one that still deadlocks with another session's answers 409.
    private func maintenance<T: Encodable & Sendable>(_ work: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> Response {
        do {
            return try Self.json(try await withConnection { connection in try self.maintenanceTurn.withLock { try work(connection) } })
        } catch let error as OperationsError {
            return try Self.error(error.message, status: .badRequest)
        } catch let error as PostgresError where error.sqlState == "40P01" {
            return try Self.error("deadlocked with another session's maintenance (\(error.message)); run it again", status: .conflict)
        }
    }

    private func withConnection<T: Sendable>(_ work: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await blocking { try self.pool.withConnection(work) }
    }

    /// Runs blocking libpq work on a Dispatch thread.
    func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await runBlocking(work)
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static func error(_ message: String, status: HTTPResponse.Status) throws -> Response {
        try json(["error": message], status: status)
    }
}
