import Foundation
import Kafka
import Logging
import Pipeline
import Postgres

/// audit-ingest's side of a benchmark: the real engine in this process, from the NDJSON file
/// (backfill) or from Kafka (the events produced to the topic first, not timed).
struct IngestRun {
    let options: BenchOptions
    let url: String
    let data: BenchData
    let latencies: FlushLatencies
    let postmaster: pid_t?
    let logger: Logger
    let progress: (String) -> Void

    struct Outcome {
        var result: PathResult
        var summary: IngestSummary
        var rate: [[Double]]
        /// Seconds spent producing the events to Kafka before the measured run (0 for backfill).
        var producingSeconds: Double
    }

    /// How long a consume run waits with nothing new before it ends (not counted in its time).
    static let idleExit: Duration = .milliseconds(500)

    /// - Parameters:
    ///   - starting: called just before the measured run starts (after any producing).
    ///   - settled: waits until the server has counted the sessions' CPU time.
    func measure(starting: () -> Void, settled: () -> Void) throws -> Outcome {
        let engine = IngestEngine(database: PostgresConfiguration(connectionString: ConnectionString(url)),
                                  configuration: options.engine, metricsFactory: latencies, logger: logger)
        // Consume modes produce the events first: neither that time nor that CPU is measured.
        let producingStarted = ContinuousClock.now
        let kafka = options.mode == .backfill ? nil : try kafkaSource()
        let producingSeconds = kafka == nil ? 0 : producingStarted.duration(to: .now).secondsDouble
        starting()
        var rate: [[Double]] = []
        var last = (seconds: 0.0, stored: 0)
        let started = ContinuousClock.now
        let progress: (IngestStatistics.Snapshot) -> Void = { snapshot in
            let seconds = started.duration(to: .now).secondsDouble
            if seconds > last.seconds { rate.append([seconds, Double(snapshot.stored - last.stored) / (seconds - last.seconds)]) }
            last = (seconds, snapshot.stored)
        }
        let cpuBefore = ResourceUsage.processCPU()
        let cores = CPUSampler(postmaster: postmaster)
        let serverBefore = ResourceUsage.serverCPU(postmaster: postmaster)
        let summary: IngestSummary
        var wall: Double
        if let (source, cluster) = kafka {
            summary = try withExtendedLifetime(cluster) { try engine.run(source, progress: progress) }
            wall = started.duration(to: .now).secondsDouble - Self.idleExit.secondsDouble
        } else {
            summary = try engine.ingest(try FileSource(path: data.ndjsonPath), progress: progress)
            wall = started.duration(to: .now).secondsDouble
        }
        // Read before the sampler's thread ends, while its time can still be told apart.
        let cpu = ResourceUsage.processCPU() - cpuBefore
        let coreSamples = cores.stop()
        settled()
        let serverCPU = ResourceUsage.serverCPU(postmaster: postmaster).flatMap { after in serverBefore.map { after - $0 } }
        return Outcome(result: PathResult(wallSeconds: wall, eventsPerSecond: Double(summary.stored + summary.deadLetteredTotal) / wall,
                                          ingestCPUSeconds: cpu, serverCPUSeconds: serverCPU, cpu: coreSamples),
                       summary: summary, rate: rate, producingSeconds: producingSeconds)
    }

    /// Produces the events to a new topic (on the embedded cluster unless `brokers` is set) and
    /// returns a source that reads it.
    private func kafkaSource() throws -> (KafkaSource, EmbeddedKafkaCluster?) {
        let cluster = options.brokers == nil ? try EmbeddedKafkaCluster() : nil
        let brokers = options.brokers ?? cluster!.bootstrapServers
        let topic = "audit-bench-\(UUID().uuidString.prefix(8).lowercased())"
        // The embedded cluster keeps only about 5 MB or 100,000 messages per partition: 5,000
        // events (about 2 MB) per partition keep them all.
        let partitions = max(4, (data.lines + 4999) / 5000, data.ndjsonBytes / (2 << 20) + 1)
        if let cluster { try cluster.createTopic(topic, partitions: partitions) }
        let producer = try KafkaProducer(configuration: KafkaConfiguration(["bootstrap.servers": brokers, "linger.ms": "100"]))
        // Keyed, so the partitioner spreads them evenly (unkeyed, sticky batches fill a few partitions).
        var index = 0
        try LineChunks.forEachLine(of: data.ndjsonPath) { line in
            try producer.send(topic: topic, key: Array(String(index).utf8), value: Array(line))
            index += 1
            if index % 100_000 == 0 { progress("produced \(index) of \(data.lines) events to \(topic)") }
        }
        try producer.flush(timeoutMilliseconds: 120_000)
        let assignment: KafkaConsumer.Assignment = options.mode == .consumeStatic ? .allPartitions : .group
        let source = KafkaSource(kafka: KafkaConfiguration(["bootstrap.servers": brokers]), topic: topic,
                                 group: "audit-bench-\(UUID().uuidString.prefix(8))",
                                 options: KafkaSource.Options(assignment: assignment, exitWhenIdle: Self.idleExit), logger: logger)
        return (source, cluster)
    }
}
