import ArgumentParser
import AuditCore
import Foundation
import Kafka
import Logging
import AdminServer
import Metrics
import Operations
import Pipeline
import Prometheus
import Postgres
import ServiceLifecycle
import Streaming

struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume audit events from Kafka topics into PostgreSQL, exactly once.",
        discussion: """
            Joins consumer group --group on the --topic(s) (or every topic --topic-pattern \
            matches) and stores every message in audit_log or, when it is not a valid event (null \
            values and tombstones included), in audit_dead_letter. Positions are stored in \
            PostgreSQL (ingest_offsets, source kafka:GROUP:TOPIC for each topic) in the same \
            transaction as the rows: after a crash or a rebalance every message lands exactly \
            once. A new group starts at the earliest offset. Run more processes with the same \
            group to share the partitions. Offsets are also committed to Kafka, for lag tools only.

            --instance-id makes the member static (KIP-345, group.instance.id): a restarted \
            process with the same id takes its partitions back at once, without a rebalance, if it \
            returns within session.timeout.ms (45 s by default; raise it, e.g. -X \
            session.timeout.ms=120000, to cover a deploy). Give each process its own id.

            --kafka-metadata keeps topic, partition, offset, Kafka timestamp, key and headers \
            in custom_metadata under "kafka"; --keep-traceparent keeps a valid W3C traceparent \
            header (and tracestate) under "traceparent" ("tracestate"). Mapped formats can take \
            the tenant from a header (--tenant-from header:NAME), and --format cloudevents reads \
            binary mode (ce_* headers, the value is the data) beside structured JSON.

            --partitions all (or a list such as 0-3,8: those partitions of every --topic) reads \
            without joining the group, as Flink and Spark do (not with --topic-pattern or \
            --instance-id): no group join (about 3 s) and no rebalances, for a single \
            process or a fixed split. Positions still come from PostgreSQL. Processes must not \
            overlap: a process that finds a partition committed by another one since it started \
            stops with an error and writes nothing (fencing).

            SIGTERM or SIGINT: stop fetching, flush and commit what is held, leave the group, exit 0; \
            if that takes longer than --stop-timeout (PostgreSQL down), exit 1 without losing anything.
            """
    )

    @Option(help: ArgumentHelp("Bootstrap brokers, host:port,... Default: $KAFKA_BROKERS.", valueName: "list"))
    var brokers: String?

    @Option(help: ArgumentHelp("""
        A topic to consume (repeatable). Each topic's positions are stored under \
        kafka:GROUP:TOPIC, so a topic added later keeps the positions it had alone.
        """, valueName: "name"))
    var topic: [String] = []

    @Option(help: ArgumentHelp("""
        Consume every topic whose name matches this regular expression (librdkafka's syntax, \
        anchored at the start); topics created later are picked up at the next metadata refresh \
        (-X topic.metadata.refresh.interval.ms, 300000 by default). Instead of --topic.
        """, valueName: "regex"))
    var topicPattern: String?

    @Option(help: ArgumentHelp("""
        Static group membership (group.instance.id, KIP-345): a restart within \
        session.timeout.ms keeps this member's partitions without a rebalance. Unique per process.
        """, valueName: "id"))
    var instanceId: String?

    @Flag(help: "Keep topic, partition, offset, timestamp, key and headers in custom_metadata under \"kafka\".")
    var kafkaMetadata = false

    @Flag(help: "Keep a valid W3C traceparent header (and tracestate) in custom_metadata under \"traceparent\".")
    var keepTraceparent = false

    @Option(help: "Consumer group.")
    var group: String = "audit-ingest"

    @Option(help: ArgumentHelp("""
        Read these partitions of every --topic without group membership: all, or a list like 0-3,8 \
        (not with --topic-pattern or --instance-id).
        """, valueName: "list"))
    var partitions: String?

    @Option(help: ArgumentHelp("""
        Also publish each dead letter to this topic once it is committed to audit_dead_letter: the raw \
        message as value, reason, detail and source position in headers (the table stays the record).
        """, valueName: "topic"))
    var deadLetterTopic: String?

    @Option(name: [.customShort("X"), .customLong("kafka-property")], help: ArgumentHelp("A librdkafka property, key=value (repeatable): SASL, TLS, ...; key=@/path reads the value from a file (secrets).", valueName: "key=value"))
    var properties: [String] = []

    @Option(help: ArgumentHelp("Stop once nothing has arrived for this many seconds and every partition is caught up.",
                               valueName: "seconds"))
    var exitWhenIdle: Double?

    @Option(help: ArgumentHelp("Seconds between progress log lines (lag, events/s, flush latency, rings).", valueName: "seconds"))
    var reportInterval: Double = 10

    @Option(help: ArgumentHelp("Run the metrics rollup (today, UTC) every this many seconds; 0 turns it off.", valueName: "seconds"))
    var rollupInterval: Double = 300

    @Option(help: ArgumentHelp("""
        On SIGTERM/SIGINT, wait at most this many seconds for held events to commit (PostgreSQL \
        may be down), then exit with status 1; what was not committed is read again next time.
        """, valueName: "seconds"))
    var stopTimeout: Double = 10

    @Flag(help: """
        Also deliver to every active stream destination, as `stream run` does, in this process \
        (docs/streaming.md). Its login: --stream-database-url, else the --database-url login without --database-role.
        """)
    var stream = false
    @Option(help: ArgumentHelp("With --stream: how often idle destinations look for new events.", valueName: "seconds"))
    var streamPollInterval: Double = 1
    @Option(name: .customLong("stream-database-url"),
            help: ArgumentHelp("""
                With --stream: the streamer's own login (a member of audit_stream). Visible in `ps`: prefer \
                --stream-database-url-file or STREAM_DATABASE_URL.
                """, valueName: "url"))
    var streamDatabaseURL: String?
    @Option(name: .customLong("stream-database-url-file"),
            help: ArgumentHelp("With --stream: read the streamer's connection string from this file. Default: $STREAM_DATABASE_URL_FILE.",
                               valueName: "path"))
    var streamDatabaseURLFile: String?

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var engine: EngineOptions
    @OptionGroup var admin: AdminOptions
    @OptionGroup var location: Migrate.Location
    @OptionGroup var integrator: IntegratorOptions

    func validate() throws {
        switch (topic.isEmpty, topicPattern) {
        case (true, nil): throw ValidationError("give --topic NAME (repeatable) or --topic-pattern REGEX")
        case (false, .some): throw ValidationError("--topic and --topic-pattern exclude each other")
        default: break
        }
        if Set(topic).count != topic.count { throw ValidationError("--topic names a topic twice") }
        if partitions != nil, topicPattern != nil {
            throw ValidationError("--partitions needs topics by name: a --topic-pattern is followed through the group")
        }
        if partitions != nil, instanceId != nil {
            throw ValidationError("--instance-id is a group member's id: --partitions reads without the group")
        }
        if instanceId?.isEmpty == true { throw ValidationError("--instance-id must not be empty") }
        guard (0.05...60).contains(streamPollInterval) else { throw ValidationError("--stream-poll-interval must be 0.05-60 seconds") }
        if !stream, streamDatabaseURL != nil || streamDatabaseURLFile != nil {
            throw ValidationError("--stream-database-url(-file) is the streamer's login: add --stream")
        }
    }

    func run() async throws {
        let assignment = try partitions.map(Self.parseAssignment) ?? .group
        var kafka = KafkaConfiguration()
        guard let brokers = brokers ?? ProcessInfo.processInfo.environment["KAFKA_BROKERS"], !brokers.isEmpty else {
            throw ValidationError("no brokers given: pass --brokers or set KAFKA_BROKERS")
        }
        kafka["bootstrap.servers"] = brokers
        do { try kafka.apply(properties) } catch { throw ValidationError("\(error)") }
        if let instanceId { kafka["group.instance.id"] = instanceId }
        var configuration = try engine.configuration()
        configuration.contextMetadata = ContextMetadata(kafka: kafkaMetadata, traceparent: keepTraceparent)

        // The consumer, and with it the admin API and the rollup, run as services of one group:
        // SIGTERM/SIGINT shut them down gracefully, the consumer first (it drains and commits).
        // With an admin port, the pipeline's swift-metrics values are exported on /metrics.
        let registry = admin.port.map { _ in PrometheusCollectorRegistry() }
        if let registry { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
        let subscription: KafkaConsumer.Subscription = topicPattern.map { .pattern($0) } ?? .topics(topic)
        let source = KafkaSource(kafka: kafka, subscription: subscription, group: group, options: KafkaSource.Options(
            assignment: assignment, exitWhenIdle: exitWhenIdle.map { .milliseconds(Int($0 * 1000)) },
            reportEvery: .milliseconds(Int(max(reportInterval, 0.1) * 1000))))
        var deadLetterSink: (any DeadLetterSink)?
        if let deadLetterTopic {
            // The same connection settings (brokers, SASL, TLS, ...), without those only a consumer reads.
            let producer = KafkaConfiguration(kafka.properties.filter { !KafkaConfiguration.isConsumerOnly($0.key) })
            deadLetterSink = try KafkaDeadLetterTopic(topic: deadLetterTopic, configuration: producer)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let port = admin.port, let registry {
            services.append(.init(service: AdminServer(
                configuration: try admin.configuration(database: database, location: location, port: port), pipeline: source.status,
                registry: registry)))
        }
        if let integration = try integrator.service(database: database) { services.append(integration) }
        if rollupInterval > 0 {
            let rollup = MetricsRollupService(database: try database.configuration(), interval: .milliseconds(Int(rollupInterval * 1000)),
                                              stop: StopSignal(), alerts: source.status)
            services.append(.init(service: ThreadService(named: "metrics-rollup") { stop in rollup.loop(until: stop) }))
        }
        if stream { services.append(.init(service: try streamer())) }
        let engine = IngestEngine(database: try database.configuration(), configuration: configuration,
                                  logger: Logger(label: "audit-ingest.consume"))
        let stopTimeout = Duration.milliseconds(Int(self.stopTimeout * 1000))
        let consumer = ThreadService(named: "kafka-consumer") { stop in
            try engine.run(source, stop: stop, stopTimeout: stopTimeout, deadLetterSink: deadLetterSink)
        }
        services.append(.init(service: consumer, successTerminationBehavior: .gracefullyShutdownGroup))
        try await ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "audit-ingest.services"))).run()
        if let summary = consumer.output { print(summary.consumeReport(secondsAssigned: source.secondsSinceFirstAssignment)) }
    }

    /// `--stream`: the streamer, on its own login or the consumer's (without the ingest role,
    /// which may not read destinations).
    private func streamer() throws -> Streamer {
        var login = try database.configuration()
        login.sessionSetup = nil
        if let text = try DatabaseOptions.connectionString(flag: streamDatabaseURL, file: streamDatabaseURLFile, name: "stream-database-url") {
            login = PostgresConfiguration(connectionString: ConnectionString(text), statementTimeout: login.statementTimeout)
        }
        login.applicationName = "audit-ingest stream"
        return Streamer(configuration: Streamer.Configuration(database: login, pollInterval: .milliseconds(Int64(streamPollInterval * 1000)),
                                                              secrets: try admin.streamSecrets.secrets()))
    }
}

extension IngestSummary {
    /// The summary; with `secondsAssigned` (from the first partition assignment to the end) also
    /// the rate without the group join, which a short run's overall rate hides.
    func consumeReport(secondsAssigned: Double?) -> String {
        var lines = summaryLines(title: "\(source):", counts: [("messages consumed", "\(messages)"), ("already committed", "\(alreadyCommitted)")],
                                 stored: stored, deadLettered: deadLettered, partitionsCreated: partitionsCreated,
                                 seconds: seconds, eventsPerSecond: eventsPerSecond)
        if let secondsAssigned, secondsAssigned > 0 {
            let handled = Double(stored + deadLetteredTotal)
            lines.append("  seconds assigned    " + String(format: "%.2f", secondsAssigned))
            lines.append("  events/s assigned   " + String(format: "%.0f", handled / secondsAssigned))
        }
        return lines.joined(separator: "\n")
    }
}

extension Consume {
    /// `all`, or partitions and ranges separated by commas (`0-3,8`).
    static func parseAssignment(_ text: String) throws -> KafkaConsumer.Assignment {
        if text == "all" { return .allPartitions }
        var partitions: [Int32] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false).map { Int32($0.trimmingCharacters(in: .whitespaces)) }
            guard (1...2).contains(bounds.count), let low = bounds.first!, let high = bounds.last!, 0 <= low, low <= high else {
                throw ValidationError("--partitions takes all or a list like 0-3,8; cannot read \"\(item)\"")
            }
            partitions += Array(low...high)
        }
        guard Set(partitions).count == partitions.count else { throw ValidationError("--partitions lists a partition twice: \(text)") }
        return .partitions(partitions)
    }
}
