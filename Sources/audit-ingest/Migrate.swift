import ArgumentParser
import Foundation
import Logging
import Migrations
import Postgres

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the schema migrations (tenants, users, items, audit log, metrics, RLS).",
        discussion: """
            Applies every pending file of schemas/migrations in order, each in its own transaction, \
            and records it in schema_migrations with its checksum. Safe to run again (it changes \
            nothing when up to date) and from several processes at once (they take turns on an \
            advisory lock). Stops with an error naming the file if an applied migration was edited.
            """,
        subcommands: [Apply.self, Status.self],
        defaultSubcommand: Apply.self
    )

    struct Location: ParsableArguments {
        @Option(help: ArgumentHelp(
            "Directory of NNNN_name.sql files. Default: $AUDIT_INGEST_MIGRATIONS, ./schemas/migrations, or the one above the executable.",
            valueName: "dir"))
        var migrationsDir: String?

        func load() throws -> [Migration] {
            guard let directory = migrationsDir.map({ URL(fileURLWithPath: $0) }) ?? Migration.defaultDirectory() else {
                throw ValidationError("cannot find schemas/migrations: pass --migrations-dir or set AUDIT_INGEST_MIGRATIONS")
            }
            return try Migration.load(from: directory)
        }
    }

    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "apply", abstract: "Apply pending migrations (the default).")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var location: Location

        func run() throws {
            let migrator = Migrator(migrations: try location.load(), logger: Logger(label: "audit-ingest.migrate"))
            let connection = try database.connect()
            let applied = try migrator.apply(on: connection)
            if applied.isEmpty {
                print("schema is up to date (\(migrator.migrations.count) migrations applied)")
            } else {
                print("applied \(applied.count) migration(s): \(applied.map(\.fileName).joined(separator: ", "))")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "List applied and pending migrations.")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var location: Location

        func run() throws {
            let migrator = Migrator(migrations: try location.load())
            let statuses = try migrator.status(on: try database.connect())
            print("version  state         applied at                name")
            for status in statuses {
                let version = String(format: "%04d", status.version)
                print("\(version.padding(toLength: 9, withPad: " ", startingAt: 0))"
                      + "\(status.state.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0))"
                      + "\((status.appliedAt ?? "-").padding(toLength: 26, withPad: " ", startingAt: 0))"
                      + status.name)
            }
            let pending = statuses.filter { $0.state != .applied }.count
            print(pending == 0 ? "up to date" : "\(pending) migration(s) need attention: run audit-ingest migrate")
        }
    }
}
