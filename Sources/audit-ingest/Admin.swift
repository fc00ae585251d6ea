import AdminServer
import ArgumentParser
import Foundation
import Logging
import Migrations
import Operations
import Pipeline
import Postgres
import ServiceLifecycle

struct Admin: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The admin HTTP API.", subcommands: [Serve.self])

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the /utils/db/... endpoints and Prometheus /metrics until SIGTERM or SIGINT.",
            discussion: AdminOptions.endpointsHelp)
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var admin: AdminOptions
        @OptionGroup var location: Migrate.Location
        @OptionGroup var integrator: IntegratorOptions

        func run() async throws {
            let server = AdminServer(configuration: try admin.configuration(database: database, location: location, port: admin.port ?? 9090))
            print("admin API on http://\(server.configuration.host):\(server.configuration.port)")
            fflush(nil)
            let services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)]
                + [try integrator.service(database: database)].compactMap { $0 }
            try await ServiceGroup(configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "audit-ingest.services"))).run()
        }
    }
}

/// Admin server flags, shared by `admin serve` and `consume --admin-port`.
struct AdminOptions: ParsableArguments {
    static let endpointsHelp = """
        Every endpoint but /metrics, /livez and /readyz needs Authorization: Bearer $ADMIN_TOKEN (or the \
        content of the file $ADMIN_TOKEN_FILE); without a token they all answer 401. Requests \
        must name this server in their Host header: the bound address, or a name given with \
        --admin-allowed-host (protection against DNS rebinding).
        GET  /livez                            200 while the process serves (no database, no token)
        GET  /readyz                           200 when ready (no token), else 503 naming what is not: database,
                                               migrations; with consume: partitions, brokers, fetching paused > 30 s
        GET  /metrics                          Prometheus text (no token)
        GET  /utils/db/health                  200, or 503 when unhealthy
        GET  /utils/db/stats
        POST /utils/db/optimize[?premake=3]    premake 0-\(Partitions.maxMonthsAhead)
        POST /utils/db/vacuum[?table=T&analyze=true]
        POST /utils/db/reindex[?table=T]
        GET  /utils/db/tenant/{id}/performance 400 for a malformed id, 404 for an unknown one
        The tenant read API (the admin token reads any tenant; a token from `tenant token create` its own):
        GET  /v1/tenants/{id}/events           since, until, action, user_id, resource_type, resource_id,
                                               severity (minimum), metadata (JSON object), limit, cursor, order=asc
        GET  /v1/tenants/{id}/events/export    format=ndjson|csv, csv_formulas=escape|keep and the same filters;
                                               streamed; 429/503 with Retry-After over --admin-exports(-per-tenant)
        GET  /v1/tenants/{id}/feed             after=CURSOR, limit: every event once, in commit order
        GET  /v1/tenants/{id}/events/{event_id}/proof[?checkpoint=SIZE]   the event's inclusion proof in the
                                               signed batch log (audit-ingest proof verify checks it offline)
        GET  /v1/checkpoint                    the newest signed checkpoint (any tenant token)
        GET  /v1/checkpoint/consistency?from=SIZE[&to=SIZE]   proof that the log only grew (proof consistency)
        A tenant's own stream destinations (needs --stream-secret-key-file; docs/streaming.md):
        GET  /v1/tenants/{id}/stream/destinations            its destinations: state, delivered, has_secret (never the secret)
        POST /v1/tenants/{id}/stream/destinations            201; JSON {"name","url"(https, public address),"kind":"webhook"|
                                               "splunk_hec","secret","batch_size","fail_after_seconds","from":"now"|"beginning"};
                                               a webhook without "secret" gets one, shown once as "signing_secret"
        GET|DELETE /v1/tenants/{id}/stream/destinations/{d}
        POST /v1/tenants/{id}/stream/destinations/{d}/pause|resume|test, .../rewind?to=beginning|TIME
        """

    @Option(help: "Admin API port (consume: off unless given).") var adminPort: Int?
    @Option(help: "Admin API address. Default: 127.0.0.1 (loopback only).") var adminHost: String = "127.0.0.1"
    @Option(name: .customLong("admin-allowed-host"),
            help: ArgumentHelp("A host name clients may put in the Host header besides the bound address (repeatable; also $ADMIN_ALLOWED_HOSTS, comma-separated).",
                               valueName: "name"))
    var adminAllowedHosts: [String] = []
    @Option(help: ArgumentHelp("Close an admin connection that sends nothing for this long (stalled header or body).",
                               valueName: "seconds"))
    var adminRequestTimeout: Int = 10
    @Option(help: ArgumentHelp("Tenant exports running at once for one tenant; more answer 429 with Retry-After.", valueName: "n"))
    var adminExportsPerTenant: Int = 2
    @Option(help: ArgumentHelp("Tenant exports running at once in all, each on a database connection of their own; more answer 503.",
                               valueName: "n"))
    var adminExports: Int = 4
    @Option(help: ArgumentHelp("Abort an export whose client takes nothing for this long, freeing its connection.", valueName: "seconds"))
    var adminExportStallTimeout: Int = 30
    @Option(help: ArgumentHelp("""
        Fire the feed_horizon_stalled alert (/metrics) once the feed's horizon has stayed at one running \
        writer's transaction this long: tenants' feeds deliver nothing newer meanwhile.
        """, valueName: "seconds"))
    var alertFeedHorizonAge: Int = 300
    @Option(help: ArgumentHelp("""
        Fire the stream_lag alert (/metrics) once an active stream destination's oldest undelivered event is this old.
        """, valueName: "seconds"))
    var alertStreamLag: Int = 600
    @Option(name: .customLong("read-database-url"),
            help: ArgumentHelp("""
                The tenant read API's own login (/v1/...), a member of audit_api and nothing more powerful: \
                tenant tokens are refused (503) over a superuser, the schema owner, an ingest login, or one that may \
                write the schema's tables or read the server's files (docs/security.md); restart after fixing it. \
                Visible in `ps`: prefer --read-database-url-file or READ_DATABASE_URL. \
                Default: $READ_DATABASE_URL, else the --database-url login.
                """, valueName: "url"))
    var readDatabaseURL: String?
    @Option(name: .customLong("read-database-url-file"),
            help: ArgumentHelp("Read the read API's connection string from this file. Default: $READ_DATABASE_URL_FILE.",
                               valueName: "path"))
    var readDatabaseURLFile: String?
    @Flag(help: """
        Serve tenant tokens even over a privileged login (a superuser, the owner): for a development \
        database only. A request that escaped audit_reader would hold that login's rights.
        """)
    var allowPrivilegedReadLogin = false
    @OptionGroup var streamSecrets: StreamSecretOptions

    func validate() throws {
        guard (1...3600).contains(adminRequestTimeout) else { throw ValidationError("--admin-request-timeout must be 1-3600 seconds") }
        guard (1...64).contains(adminExports), (1...adminExports).contains(adminExportsPerTenant) else {
            throw ValidationError("--admin-exports must be 1-64, and --admin-exports-per-tenant 1 to --admin-exports")
        }
        guard (1...3600).contains(adminExportStallTimeout) else { throw ValidationError("--admin-export-stall-timeout must be 1-3600 seconds") }
        guard (1...86_400).contains(alertFeedHorizonAge) else { throw ValidationError("--alert-feed-horizon-age must be 1-86400 seconds") }
        guard (1...604_800).contains(alertStreamLag) else { throw ValidationError("--alert-stream-lag must be 1-604800 seconds") }
        if readDatabaseURL != nil, readDatabaseURLFile != nil {
            throw ValidationError("give either --read-database-url or --read-database-url-file, not both")
        }
        if let adminPort, !(1...65535).contains(adminPort) {
            throw ValidationError("--admin-port must be a TCP port, 1-65535, not \(adminPort)")
        }
    }

    var port: Int? { adminPort }

    func configuration(database: DatabaseOptions, location: Migrate.Location, port: Int) throws -> AdminServer.Configuration {
        let expected = (try? location.load())?.reduce(into: [Int: Set<String>]()) { $0[$1.version] = $1.acceptedChecksums } ?? [:]
        let environment = ProcessInfo.processInfo.environment
        let allowed = adminAllowedHosts + (environment["ADMIN_ALLOWED_HOSTS"] ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var configuration = AdminServer.Configuration(host: adminHost, port: port, token: try Self.token(environment), allowedHosts: allowed,
                                                      requestIdleTimeout: .seconds(adminRequestTimeout),
                                                      database: try database.configuration(), expectedMigrations: expected)
        configuration.exportsPerTenant = adminExportsPerTenant
        configuration.exports = adminExports
        configuration.exportStallTimeout = .seconds(adminExportStallTimeout)
        configuration.feedHorizonAlertAge = .seconds(alertFeedHorizonAge)
        configuration.streamLagAlertAge = .seconds(alertStreamLag)
        configuration.readDatabase = try DatabaseOptions.connectionString(flag: readDatabaseURL, file: readDatabaseURLFile,
                                                                          name: "read-database-url").map { text in
            PostgresConfiguration(connectionString: ConnectionString(text), applicationName: "audit-ingest read API",
                                  statementTimeout: configuration.database.statementTimeout)
        }
        configuration.allowPrivilegedReadLogin = allowPrivilegedReadLogin
        configuration.streamSecrets = try streamSecrets.secrets()
        return configuration
    }

    /// ADMIN_TOKEN, else the content of the file ADMIN_TOKEN_FILE names (trailing line break removed).
    static func token(_ environment: [String: String]) throws -> String? {
        if let token = environment["ADMIN_TOKEN"], !token.isEmpty { return token }
        guard let path = environment["ADMIN_TOKEN_FILE"], !path.isEmpty else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("ADMIN_TOKEN_FILE: cannot read \(path) (missing, or not readable by this user)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }
}
