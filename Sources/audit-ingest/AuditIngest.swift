import ArgumentParser
import ConfigFile
import Foundation

@main
struct AuditIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit-ingest",
        abstract: "Ingest audit events from Kafka or NDJSON files into a multi-tenant PostgreSQL schema.",
        discussion: """
            Settings come from flags, a configuration file (--config) or the environment: DATABASE_URL \
            (a libpq URI or keyword/value string), KAFKA_BROKERS, ADMIN_TOKEN (enables the admin API's \
            POST endpoints). Passwords and other secrets are masked in every message. Start with: \
            audit-ingest migrate.
            """,
        subcommands: [Migrate.self, Backfill.self, Consume.self, BenchCommand.self, KafkaCommand.self, Health.self, Stats.self,
                      Optimize.self, Vacuum.self, Reindex.self, Tenant.self, PartitionsCommand.self, Metrics.self, Admin.self, StreamCommand.self,
                      Generate.self, Events.self, ConfigCommand.self, Verify.self, Checkpoint.self, Keys.self, ProofCommand.self]
    )

    // Read by `ConfigFileArguments` before parsing (anywhere on the command line); declared here for --help.
    @Option(help: ArgumentHelp("""
        A TOML file setting any command's options: keys are the long option names (batch-size = 5000; \
        flags true or false), at the top level for every command that has the option, in [consume], \
        [backfill], [admin.serve], ... for one command and those below it. "${NAME}" takes an \
        environment variable (${NAME:-default}; $$ is a literal $). Flags on the command line win; \
        repeatable options (-X) get the file's values, then the command line's. Unknown keys are \
        errors. Check a file with: audit-ingest config check. Default: $AUDIT_INGEST_CONFIG.
        """, valueName: "file"))
    var config: String?

    /// Puts the configuration file's settings before the command line's own arguments, then parses
    /// and runs. A file that cannot be used stops here, with status 64, before anything runs.
    static func main() async {
        let arguments: [String]
        do {
            arguments = try ConfigFileArguments.expand(Array(CommandLine.arguments.dropFirst()),
                                                       environment: ProcessInfo.processInfo.environment)
        } catch let error as ConfigFileError {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
        await main(arguments)
    }
}
