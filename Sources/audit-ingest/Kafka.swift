import ArgumentParser
import Foundation
import Kafka
import Logging
import ServiceLifecycle

struct KafkaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka",
        abstract: "Kafka helpers: an embedded cluster for demos and tests, and a producer.",
        subcommands: [Embedded.self, Produce.self]
    )

    struct Embedded: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run an embedded Kafka cluster (librdkafka's mock cluster) until stopped.",
            discussion: """
                Prints "bootstrap: HOST:PORT" and serves the real Kafka protocol (consumer groups \
                included) on localhost until SIGINT or SIGTERM. For demos and tests, not production: \
                librdkafka 2.0.2's mock cluster keeps only about 5 MB or 100,000 messages per \
                partition and deletes older segments.
                """
        )
        @Option(help: "Topic to create.") var topic: String = "audit-events"
        @Option(help: "Partitions of the topic.") var partitions: Int = 4
        @Option(help: "Brokers in the cluster.") var brokers: Int = 1

        func run() async throws {
            let cluster = try EmbeddedKafkaCluster(brokers: brokers)
            try cluster.createTopic(topic, partitions: partitions)
            print("bootstrap: \(cluster.bootstrapServers)")
            print("topic: \(topic) (\(partitions) partitions)")
            fflush(nil)  // all streams: stdout may be a pipe (block-buffered)
            // Served by librdkafka's threads until SIGINT or SIGTERM reach the group.
            try await ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [.init(service: UntilShutdown())], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "audit-ingest.services"))).run()
            withExtendedLifetime(cluster) {}
        }

        /// A service that only waits for the group's graceful shutdown.
        private struct UntilShutdown: Service {
            func run() async throws {
                try await gracefulShutdown()
            }
        }
    }

    struct Produce: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish each line of NDJSON files (or standard input) as one message.",
            discussion: """
                Messages are keyed by line number, so they spread over the topic's partitions. Batches \
                for up to 100 ms (linger.ms) for throughput; -X linger.ms=N overrides it.
                """
        )
        @Option(help: ArgumentHelp("Bootstrap brokers. Default: $KAFKA_BROKERS.", valueName: "list")) var brokers: String?
        @Option(help: "Topic.") var topic: String
        @Option(name: [.customShort("X"), .customLong("kafka-property")], help: ArgumentHelp("A librdkafka property (repeatable); key=@/path reads the value from a file.", valueName: "key=value"))
        var properties: [String] = []
        @Argument(help: "NDJSON files; - or none for standard input.") var files: [String] = []

        func run() throws {
            var configuration = KafkaConfiguration()
            guard let brokers = brokers ?? ProcessInfo.processInfo.environment["KAFKA_BROKERS"], !brokers.isEmpty else {
                throw ValidationError("no brokers given: pass --brokers or set KAFKA_BROKERS")
            }
            configuration["bootstrap.servers"] = brokers
            // A bulk load: batch for up to 100 ms so each partition gets large record batches.
            configuration["linger.ms"] = "100"
            do { try configuration.apply(properties) } catch { throw ValidationError("\(error)") }
            let producer = try KafkaProducer(configuration: configuration)
            var count = 0
            func send(_ line: ArraySlice<UInt8>) throws {
                try producer.send(topic: topic, key: Array(String(count).utf8), value: Array(line))
                count += 1
            }
            for path in files.isEmpty ? ["-"] : files {
                guard let handle = path == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: path) else {
                    throw ValidationError("cannot read \(path)")
                }
                var pending: [UInt8] = []
                while true {
                    let chunk = handle.readData(ofLength: 1 << 20)
                    pending.append(contentsOf: chunk)
                    var lineStart = pending.startIndex
                    while let newline = pending[lineStart...].firstIndex(of: 0x0A) {
                        try send(pending[lineStart..<newline])
                        lineStart = newline + 1
                    }
                    pending.removeFirst(lineStart)  // once per chunk: the partial last line stays
                    if chunk.isEmpty { break }
                }
                if !pending.isEmpty { try send(pending[...]) }
            }
            try producer.flush()
            print("produced \(count) message(s) to \(topic)")
        }
    }
}
