import ArgumentParser
import Foundation
import Postgres

/// `--database-url`, shared by every command that talks to PostgreSQL.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"),
            help: ArgumentHelp("PostgreSQL connection URI or keyword/value string. Default: $DATABASE_URL.",
                               valueName: "url"))
    var databaseURL: String?

    @Option(help: ArgumentHelp("Statement timeout in seconds (0 = server default).", valueName: "seconds"))
    var statementTimeout: Int = 30

    func configuration() throws -> PostgresConfiguration {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
            throw ValidationError("no database given: pass --database-url or set DATABASE_URL (e.g. postgresql://user@localhost/audit)")
        }
        return PostgresConfiguration(
            connectionString: ConnectionString(url),
            statementTimeout: statementTimeout > 0 ? .seconds(statementTimeout) : nil
        )
    }

    func connect() throws -> PostgresConnection {
        try PostgresConnection(configuration: configuration())
    }
}
