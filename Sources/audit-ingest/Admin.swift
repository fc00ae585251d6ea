import AdminServer
import ArgumentParser
import Foundation
import Logging
import Migrations
import Pipeline
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

        func run() async throws {
            let server = AdminServer(configuration: try admin.configuration(database: database, location: location, port: admin.port ?? 9090))
            print("admin API on http://\(server.configuration.host):\(server.configuration.port)")
            fflush(nil)
            try await ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "audit-ingest.services"))).run()
        }
    }
}

/// Admin server flags, shared by `admin serve` and `consume --admin-port`.
struct AdminOptions: ParsableArguments {
    static let endpointsHelp = """
        GET  /utils/db/health                  200, or 503 when unhealthy
        GET  /utils/db/stats
        POST /utils/db/optimize[?premake=3]    needs Authorization: Bearer $ADMIN_TOKEN
        POST /utils/db/vacuum[?table=T&analyze=true]
        POST /utils/db/reindex[?table=T]
        GET  /utils/db/tenant/{id}/performance 400 for a malformed id, 404 for an unknown one
        GET  /metrics                          Prometheus text
        Without ADMIN_TOKEN in the environment the POST endpoints answer 401.
        """

    @Option(help: "Admin API port (consume: off unless given).") var adminPort: Int?
    @Option(help: "Admin API address. Default: 127.0.0.1 (loopback only).") var adminHost: String = "127.0.0.1"

    var port: Int? { adminPort }

    func configuration(database: DatabaseOptions, location: Migrate.Location, port: Int) throws -> AdminServer.Configuration {
        let expected = (try? location.load())?.reduce(into: [Int: String]()) { $0[$1.version] = $1.checksum } ?? [:]
        return AdminServer.Configuration(host: adminHost, port: port, token: ProcessInfo.processInfo.environment["ADMIN_TOKEN"],
                                         database: try database.configuration(), expectedMigrations: expected)
    }
}
