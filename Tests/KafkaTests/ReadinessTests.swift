import Foundation
import Kafka
import TestSupport
import Testing

/// `/readyz` and what `consume` says when Kafka or PostgreSQL go away: a real `consume` with an
/// admin port, probed with curl.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ReadinessTests {
    @Test func readyWhileConsumingAndNotReadyWhilePostgresIsStopped() throws {
        let (postgres, fixture) = try KafkaFixture.onPrivateCluster(partitions: 2)
        try fixture.produce(events: 2000)
        let admin = try AdminPort()
        let consumer = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                       fixture.consumeArguments(exitWhenIdle: nil) + admin.arguments)
        #expect(try fixture.waitForStored(atLeast: fixture.produced))
        let ready = admin.waitFor("/readyz") { $0.status == 200 }
        #expect(ready?.json?["ready"] as? Bool == true, "\(ready?.body ?? "no answer"): \(consumer.outputSoFar.suffix(2000))")
        #expect((ready?.json?["checks"] as? [String: Bool])?.values.allSatisfy { $0 } == true)
        // Caught up: every partition's lag in seconds is 0, beside its lag in messages.
        let lagSeconds = admin.waitFor("/metrics", timeout: 20) { Self.samples("audit_ingest_kafka_lag_seconds", in: $0.body) == [0, 0] }
        #expect(lagSeconds.map { Self.samples("audit_ingest_kafka_lag_seconds", in: $0.body) } == [0, 0], "\(admin.get("/metrics")?.body ?? "")")

        try postgres.stop()
        let down = admin.waitFor("/readyz") { $0.status == 503 }
        #expect(down?.json?["ready"] as? Bool == false, "\(down?.body ?? "no answer")")
        let problems = down?.json?["problems"] as? [String] ?? []
        #expect(problems.contains("database: unreachable"), "\(problems)")
        let body = down?.body ?? ""
        #expect(!body.contains("\(postgres.port)"), "an unauthenticated probe names no server: \(body)")
        #expect(admin.get("/livez")?.status == 200, "liveness does not depend on the database")

        try postgres.start()
        #expect(admin.waitFor("/readyz") { $0.status == 200 } != nil, "ready again once PostgreSQL is back")
        consumer.signal(SIGTERM)
        let result = consumer.wait()
        #expect(result.exitCode == 0, "\(result.output.suffix(3000))")
        #expect(result.output.contains("not ready"), "losing readiness is logged")
    }

    /// `admin serve` (no consumer) against a database `migrate` has not run on: reachable, not ready.
    @Test func aDatabaseWithoutThisBinarysMigrationsIsNotReady() throws {
        let url = try TestDatabase.create(prefix: "unmigrated")
        let admin = try AdminPort()
        let server = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                     ["admin", "serve", "--database-url", url] + admin.arguments)
        let reply = admin.waitFor("/readyz") { $0.status == 503 }
        server.signal(SIGTERM)
        _ = server.wait(timeout: 20)
        #expect(reply?.json?["checks"] as? [String: Bool] == ["database": true, "migrations": false], "\(reply?.body ?? "no answer")")
        let problems = reply?.json?["problems"] as? [String] ?? []
        #expect(problems.count == 1 && problems[0].hasPrefix("migrations: 0 applied, "), "\(problems)")
    }

    /// The embedded cluster's only broker goes down mid-run: the progress line says so, /readyz
    /// fails naming the brokers, and both recover once the broker is back.
    @Test func brokersDownShowInTheProgressLineAndReadiness() throws {
        let fixture = try KafkaFixture(partitions: 2)
        try fixture.produce(events: 1000)
        let admin = try AdminPort()
        let consumer = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                       fixture.consumeArguments(exitWhenIdle: nil) + admin.arguments)
        #expect(try fixture.waitForStored(atLeast: fixture.produced))
        #expect(admin.waitFor("/readyz") { $0.status == 200 } != nil, "\(consumer.outputSoFar.suffix(2000))")

        try fixture.cluster.setBroker(1, up: false)
        let down = admin.waitFor("/readyz") { ($0.json?["problems"] as? [String])?.contains("kafka: every broker connection is down") == true }
        #expect(down?.status == 503, "\(down?.body ?? "no answer"): \(consumer.outputSoFar.suffix(2000))")
        #expect(waitUntil { consumer.outputSoFar.contains("brokers=down") }, "\(consumer.outputSoFar.suffix(2000))")

        try fixture.cluster.setBroker(1, up: true)
        let back = admin.waitFor("/readyz", timeout: 90) { $0.status == 200 }
        #expect(back != nil, "\(admin.get("/readyz")?.body ?? ""): \(consumer.outputSoFar.suffix(2000))")
        consumer.signal(SIGTERM)
        let result = consumer.wait()
        #expect(result.exitCode == 0, "\(result.output.suffix(3000))")
        let lastProgress = result.output.split(separator: "\n").last { $0.contains("progress") } ?? ""
        #expect(lastProgress.contains("brokers=up"), "\(lastProgress)")
        #expect(lastProgress.contains("events_per_second_since_assignment="), "\(lastProgress)")
        #expect(lastProgress.contains("events_per_second_overall="), "\(lastProgress)")
        #expect(result.output.contains("  seconds assigned    ") && result.output.contains("  events/s assigned   "),
                "the summary gives the rate since the first assignment: \(result.output.suffix(800))")
        #expect(!result.output.contains("%3|"), "librdkafka printed to stderr itself: \(result.output.suffix(3000))")
    }

    /// Nothing listens on the brokers' port: librdkafka's connection failures come out as
    /// swift-log lines (label audit-ingest.kafka, level mapped), never as its own `%3|` lines.
    @Test func librdkafkaLinesGoThroughSwiftLog() throws {
        let database = try PipelineDatabase()
        let admin = try AdminPort()
        let consumer = try Shell.spawn(Shell.executable(named: "audit-ingest"), [
            "consume", "--brokers", "127.0.0.1:\(try freeTCPPort())", "--topic", "nowhere", "--database-url", database.url,
            "--report-interval", "0.5"] + admin.arguments)
        #expect(waitUntil { consumer.outputSoFar.contains("brokers=down") }, "\(consumer.outputSoFar.suffix(2000))")
        let notReady = admin.waitFor("/readyz") { ($0.json?["problems"] as? [String])?.contains("kafka: every broker connection is down") == true }
        #expect(notReady?.status == 503)
        let problems = notReady?.json?["problems"] as? [String] ?? []
        #expect(problems.contains("kafka: every broker connection is down"), "\(problems)")
        #expect(problems.contains("kafka: no partitions assigned"), "\(problems)")
        consumer.signal(SIGTERM)
        let result = consumer.wait()
        #expect(result.exitCode == 0, "\(result.output.suffix(3000))")
        let lines = result.output.split(separator: "\n")
        #expect(lines.contains { $0.contains(" error audit-ingest.kafka: client=rdkafka#consumer-1 facility=FAIL ")
            && $0.contains("Connection refused") }, "\(result.output.prefix(3000))")
        #expect(lines.contains { $0.contains(" error audit-ingest.kafka: ") && $0.contains("All broker connections are down") })
        #expect(!result.output.contains("%3|"), "librdkafka printed to stderr itself: \(result.output.prefix(3000))")
    }
}

extension ReadinessTests {
    /// The values of `name`'s samples in Prometheus text, in order.
    static func samples(_ name: String, in text: String) -> [Double] {
        text.split(separator: "\n").filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }
}

/// An admin port for a `consume` child and curl against it.
struct AdminPort {
    let port: Int
    var arguments: [String] { ["--admin-port", "\(port)", "--migrations-dir", TestDatabase.migrationsDirectory.path] }

    init() throws { port = try freeTCPPort() }

    struct Reply {
        let status: Int
        let body: String
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
    }

    /// One GET; nil when nothing answers.
    func get(_ path: String) -> Reply? {
        guard let result = try? Shell.run("/usr/bin/curl", ["-s", "-m", "10", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"]),
              result.exitCode == 0, let newline = result.output.lastIndex(of: "\n"),
              let status = Int(result.output[result.output.index(after: newline)...]) else { return nil }
        return Reply(status: status, body: String(result.output[..<newline]))
    }

    /// Polls `path` until a reply satisfies `condition`; that reply, or nil after `timeout` seconds.
    func waitFor(_ path: String, timeout: TimeInterval = 60, _ condition: (Reply) -> Bool) -> Reply? {
        var found: Reply?
        waitUntil(timeout: .seconds(timeout), interval: .milliseconds(200)) {
            found = get(path).flatMap { condition($0) ? $0 : nil }
            return found != nil
        }
        return found
    }
}

