import Foundation
import Operations
import Postgres
import TestSupport
import Testing

/// Where the database secret may come from (never argv alone) and that no answer shows it.
@Suite(.timeLimit(.minutes(2))) struct SecretSourcesTests {
    let binary = Shell.executable(named: "audit-ingest")

    func secretFile(_ content: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID())").path
        try Data(content.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    @Test func connectionStringFromAFileOrTheEnvironment() throws {
        let url = try TestDatabase.createMigrated(prefix: "secrets")
        let file = try secretFile(url + "\n")
        let fromFile = try Shell.run(binary, ["health", "--database-url-file", file], environment: ["DATABASE_URL": ""])
        #expect(fromFile.exitCode == 0, "\(fromFile.output)")
        let fromEnvironment = try Shell.run(binary, ["health"], environment: ["DATABASE_URL": url])
        #expect(fromEnvironment.exitCode == 0, "\(fromEnvironment.output)")
        let fromEnvironmentFile = try Shell.run(binary, ["health"], environment: ["DATABASE_URL": "", "DATABASE_URL_FILE": file])
        #expect(fromEnvironmentFile.exitCode == 0, "\(fromEnvironmentFile.output)")

        let both = try Shell.run(binary, ["health", "--database-url", url, "--database-url-file", file])
        #expect(both.exitCode == 64)
        #expect(both.output.contains("either --database-url or --database-url-file"))
        let missing = try Shell.run(binary, ["health", "--database-url-file", "/nonexistent/db-url"])
        #expect(missing.exitCode != 0)
        #expect(missing.output.contains("--database-url-file: cannot read /nonexistent/db-url"))
        let help = try Shell.run(binary, ["backfill", "--help"])
        #expect(help.output.contains("--database-url-file") && help.output.contains("DATABASE_URL"))
    }

    @Test func passwordWithAQuestionMarkIsNeverShown() throws {
        let url = "postgresql://ingest:hun?ter2@127.0.0.1:1/audit?connect_timeout=2&password=hun?ter3"
        let report = HealthReport.check(PostgresConfiguration(connectionString: ConnectionString(url)), expectedMigrations: [:])
        let text = "\(report.problems)"
        #expect(!report.reachable)
        #expect(text.contains("127.0.0.1:1"), "the answer still says where: \(text)")
        #expect(!text.contains("hun") && !text.contains("ter2") && !text.contains("ter3"), "\(text)")

        let file = try secretFile(url)
        let health = try Shell.run(binary, ["health", "--database-url-file", file])
        #expect(health.exitCode != 0)
        #expect(!health.output.contains("hun") && !health.output.contains("ter2"), "\(health.output)")
        let keywordValue = try Shell.run(binary, ["health"], environment: [
            "DATABASE_URL": "host=127.0.0.1 port=1 connect_timeout=2 password='hun ter2'"])
        #expect(!keywordValue.output.contains("hun") && !keywordValue.output.contains("ter2"), "\(keywordValue.output)")
    }
}
