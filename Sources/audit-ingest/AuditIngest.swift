import ArgumentParser

@main
struct AuditIngest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit-ingest",
        abstract: "Ingest audit events from Kafka or NDJSON files into a multi-tenant PostgreSQL schema.",
        discussion: """
            Connection settings come from flags or the environment: DATABASE_URL (a libpq URI or \
            keyword/value string). Passwords are masked in every message.
            """,
        subcommands: [Migrate.self, Backfill.self, Consume.self, KafkaCommand.self, Health.self, Stats.self, Optimize.self,
                      Vacuum.self, Reindex.self, Tenant.self, PartitionsCommand.self, Metrics.self, Admin.self, Generate.self]
    )
}
