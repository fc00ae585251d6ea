import ArgumentParser

@main
struct AuditIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit-ingest",
        abstract: "Ingest audit events from Kafka or NDJSON files into a multi-tenant PostgreSQL schema.",
        discussion: """
            Settings come from flags or the environment: DATABASE_URL (a libpq URI or keyword/value \
            string), KAFKA_BROKERS, ADMIN_TOKEN (enables the admin API's POST endpoints). Passwords \
            and other secrets are masked in every message. Start with: audit-ingest migrate.
            """,
        subcommands: [Migrate.self, Backfill.self, Consume.self, BenchCommand.self, KafkaCommand.self, Health.self, Stats.self,
                      Optimize.self, Vacuum.self, Reindex.self, Tenant.self, PartitionsCommand.self, Metrics.self, Admin.self,
                      Generate.self, Events.self]
    )
}
