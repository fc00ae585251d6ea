import Foundation
import TestSupport
import Testing

/// `--config FILE` as an operator uses it: the file's settings take effect, flags on the command
/// line win, `${NAME}` comes from the environment, and a broken file stops every command before
/// it runs, naming the file, the section and the key.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ConfigFileCommandTests {
    let binary = Shell.executable(named: "audit-ingest")
    static let example = TestDatabase.repositoryRoot.appendingPathComponent("ops/audit-ingest.toml")
    /// Where a run goes if it ignores the file's database-url: nowhere.
    static let nowhere = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"

    @Test func backfillTakesTheDatabaseAndPoliciesFromTheFile() throws {
        let fixture = try PipelineFixture(tenants: 0)  // every tenant is unknown
        let events = try sampleFile(events: 200)
        let config = try configFile("""
            database-url = "${CONFIG_TEST_DATABASE}"

            [backfill]
            unknown-tenants = "accept"
            batch-size = 50
            progress = false
            """)
        let result = try Shell.run(binary, ["--config", config, "backfill", events.path],
                                   environment: ["CONFIG_TEST_DATABASE": fixture.url, "DATABASE_URL": Self.nowhere])
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == events.lines)
    }

    @Test func flagsOnTheCommandLineWin() throws {
        let fixture = try PipelineFixture(tenants: 0)
        let events = try sampleFile(events: 100)
        let config = try configFile("""
            [backfill]
            database-url = "\(Self.nowhere)"
            unknown-tenants = "accept"
            batch-size = 0
            progress = true
            """)
        let refused = try Shell.run(binary, ["backfill", "--config", config, events.path])
        #expect(refused.exitCode == 64, "\(refused.output)")
        #expect(refused.output.contains("--batch-size must be at least 1"))

        let result = try Shell.run(binary, ["backfill", "--config", config, "--batch-size", "25", "--unknown-tenants", "dead-letter",
                                            "--database-url", fixture.url, "--no-progress", events.path])
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 0)
        #expect(try fixture.count("SELECT count(*) FROM audit_dead_letter WHERE reason = 'unknown tenant'") == events.lines)
    }

    @Test func anUnsetVariableIsAnErrorUnlessItHasADefault() throws {
        let fixture = try PipelineFixture()
        let events = try sampleFile(events: 50)
        let name = "CONFIG_TEST_UNSET_" + UUID().uuidString.replacingOccurrences(of: "-", with: "_")
        let unset = try configFile("database-url = \"${\(name)}\"\n")
        let refused = try Shell.run(binary, ["--config", unset, "backfill", "--no-progress", events.path])
        #expect(refused.exitCode == 64, "\(refused.output)")
        #expect(refused.output.contains("\(unset), top level: database-url: environment variable \(name) is not set"))
        #expect(!refused.output.contains("lines read"))

        let defaulted = try configFile("database-url = \"${\(name):-\(fixture.url)}\"\n")
        let result = try Shell.run(binary, ["--config", defaulted, "backfill", "--no-progress", events.path],
                                   environment: ["DATABASE_URL": Self.nowhere])
        #expect(result.exitCode == 0, "\(result.output)")

        // An empty value is given as empty: an empty --database-url falls back to DATABASE_URL.
        let empty = try configFile("database-url = \"${\(name):-}\"\n")
        let fallback = try Shell.run(binary, ["--config", empty, "backfill", "--no-progress", events.path],
                                     environment: ["DATABASE_URL": fixture.url])
        #expect(fallback.exitCode == 0, "\(fallback.output)")
    }

    @Test(arguments: [
        ("[backfill]\nbatch-sise = 10\n", "[backfill]: batch-sise: unknown key: no option of backfill is called --batch-sise; did you mean batch-size?"),
        ("statment-timeout = 5\n", "top level: statment-timeout: unknown key: no option of any command is called --statment-timeout; did you mean statement-timeout?"),
        ("[consum]\ntopic = \"t\"\n", "[consum]: unknown section: consum is no subcommand of audit-ingest; did you mean [consume]?"),
        ("[consume]\nbatch-size = [1, 2]\n", "[consume]: batch-size: expected a single value"),
        ("[consume.kafka-property]\nacks = 1\n", "[consume]: kafka-property: expected a value, found a table"),
        ("[bench]\njson = \"yes\"\n", "[bench]: json: expected true or false (--json is a flag), found a string"),
    ])
    func aBrokenFileStopsAnyCommandBeforeItRuns(text: String, message: String) throws {
        let config = try configFile(text)
        // `health` would try the database: a file is checked whole, whichever command runs.
        let result = try Shell.run(binary, ["--config", config, "health", "--database-url", Self.nowhere])
        #expect(result.exitCode == 64, "\(result.output)")
        #expect(result.output.contains("Error: \(config), \(message)"), "\(result.output)")
        #expect(!result.output.contains("reachable"))
    }

    @Test func configCheckShowsEachCommandsArgumentsWithSecretsMasked() throws {
        let config = try configFile("""
            database-url = "postgresql://ingest:s3cret@db.example/audit"

            [consume]
            topic = "audit-events"
            kafka-property = ["sasl.password=${CONFIG_TEST_KAFKA_PASSWORD}", "client.id=$$x"]
            read-database-url = "postgresql://audit_read_api:r3ader@db.example/audit"
            """)
        let result = try Shell.run(binary, ["--config", config, "config", "check", "consume"],
                                   environment: ["CONFIG_TEST_KAFKA_PASSWORD": "hunter2"])
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.output.contains("consume: --topic=audit-events --kafka-property=sasl.password=*** '--kafka-property=client.id=$x'"))
        #expect(result.output.contains("--database-url=postgresql://ingest:***@db.example/audit"))
        #expect(result.output.contains("--read-database-url=postgresql://audit_read_api:***@db.example/audit"))
        #expect(!result.output.contains("s3cret") && !result.output.contains("hunter2") && !result.output.contains("r3ader"))
    }

    /// ops/audit-ingest.toml is the file operators start from: every section of it is accepted.
    @Test func theExampleFileSetsEverySection() throws {
        let sections = try String(contentsOf: Self.example, encoding: .utf8).split(separator: "\n")
            .filter { $0.hasPrefix("[") }
            .map { $0.dropFirst().dropLast().replacingOccurrences(of: ".", with: " ") }
        #expect(sections.count >= 5)
        let result = try Shell.run(binary, ["--config", Self.example.path, "config", "check"],
                                   environment: ["KAFKA_BROKERS": "kafka-1.example:9092"])
        #expect(result.exitCode == 0, "\(result.output)")
        let commands = result.output.split(separator: "\n").compactMap { $0.split(separator: ":").first.map(String.init) }
        for section in sections {
            #expect(commands.contains { $0 == section || $0.hasPrefix(section + " ") }, "[\(section)] gives no command anything")
        }
    }

    @Test func theExampleFileRunsABackfill() throws {
        let fixture = try PipelineFixture()
        let events = try sampleFile(events: 300, months: 24)  // partly beyond the example's 400 days
        let result = try Shell.run(binary, ["backfill", events.path],
                                   environment: ["AUDIT_INGEST_CONFIG": Self.example.path, "DATABASE_URL": fixture.url])
        #expect(result.exitCode == 0, "\(result.output)")
        let stored = try fixture.count("SELECT count(*) FROM audit_log")
        let tooOld = try fixture.count("SELECT count(*) FROM audit_dead_letter WHERE reason = 'older than retention'")
        #expect(stored > 0 && tooOld > 0 && stored + tooOld == events.lines, "\(stored) stored, \(tooOld) too old")
    }

    private func configFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("audit-ingest-\(UUID()).toml").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}
