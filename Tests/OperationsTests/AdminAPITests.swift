import Foundation
import Postgres
import TestSupport
import Testing

/// The admin HTTP API through a real HTTP client (curl) against `audit-ingest admin serve`.
@Suite(.serialized, .timeLimit(.minutes(3))) struct AdminAPITests {
    struct Server {
        let child: Shell.Child
        let base: String
        let databaseURL: String
    }

    func startServer(token: String? = "s3cret-token") throws -> Server {
        let url = try TestDatabase.createMigrated(prefix: "admin")
        let connection = try PostgresConnection(url)
        try connection.execute("""
            INSERT INTO tenant (id, name, code) VALUES ('00000000-0000-4000-8000-00000000000a', 'Acme', 'acme');
            SELECT ensure_month_partitions('2026-03-01');
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp")
            VALUES (gen_random_uuid(), '00000000-0000-4000-8000-00000000000a', 'user.login', 'INFO', '2026-03-10 08:00+00');
            """)
        let port = try freeTCPPort()
        let child = try Shell.spawn(Shell.executable(named: "audit-ingest"),
                                    ["admin", "serve", "--admin-port", "\(port)", "--database-url", url,
                                     "--migrations-dir", TestDatabase.migrationsDirectory.path],
                                    environment: token.map { ["ADMIN_TOKEN": $0] } ?? ["ADMIN_TOKEN": ""])
        let server = Server(child: child, base: "http://127.0.0.1:\(port)", databaseURL: url)
        for _ in 0..<100 {
            if (try? curl(server, "/utils/db/health").status) != nil { return server }
            usleep(100_000)
        }
        child.signal(SIGKILL)
        throw TestDatabase.Unavailable(description: "admin server did not start: \(child.outputSoFar)")
    }

    struct Reply {
        let status: Int
        let body: String
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
    }

    func curl(_ server: Server, _ path: String, method: String = "GET", token: String? = nil) throws -> Reply {
        var arguments = ["-s", "-S", "-X", method, "-w", "\n%{http_code}", server.base + path]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        let result = try Shell.run("/usr/bin/curl", arguments)
        guard result.exitCode == 0, let newline = result.output.lastIndex(of: "\n"),
              let status = Int(result.output[result.output.index(after: newline)...]) else {
            throw TestDatabase.Unavailable(description: "curl failed: \(result.output)")
        }
        return Reply(status: status, body: String(result.output[..<newline]))
    }

    @Test func readEndpointsAnswerWithStableJSON() throws {
        let server = try startServer()
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        let health = try curl(server, "/utils/db/health")
        #expect(health.status == 200)
        #expect(health.json?["healthy"] as? Bool == true)
        #expect(health.json?["migrationsUpToDate"] as? Bool == true)
        #expect(health.json?["pool"] is [String: Any])

        let stats = try curl(server, "/utils/db/stats")
        #expect(stats.status == 200)
        let tables = stats.json?["tables"] as? [[String: Any]] ?? []
        #expect(tables.contains { $0["name"] as? String == "audit_log_2026_03" && $0["parent"] as? String == "audit_log" })
        #expect(stats.json?["slowQueriesNote"] is String)

        let report = try curl(server, "/utils/db/tenant/00000000-0000-4000-8000-00000000000a/performance")
        #expect(report.status == 200)
        #expect(report.json?["auditEventsTotal"] as? Int == 1)
        #expect(report.json?["code"] as? String == "acme")
        #expect(try curl(server, "/utils/db/tenant/acme/performance").status == 400)
        #expect(try curl(server, "/utils/db/tenant/99999999-0000-4000-8000-000000000000/performance").status == 404)
    }

    @Test func postEndpointsNeedTheBearerToken() throws {
        let server = try startServer()
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        #expect(try curl(server, "/utils/db/vacuum", method: "POST").status == 401)
        #expect(try curl(server, "/utils/db/vacuum", method: "POST", token: "wrong").status == 401)
        let vacuum = try curl(server, "/utils/db/vacuum?table=audit_log&analyze=true", method: "POST", token: "s3cret-token")
        #expect(vacuum.status == 200)
        #expect(vacuum.json?["tables"] as? [String] == ["audit_log"])
        #expect(try curl(server, "/utils/db/vacuum?table=pg_authid", method: "POST", token: "s3cret-token").status == 400)
        let reindex = try curl(server, "/utils/db/reindex?table=audit_log_2026_03", method: "POST", token: "s3cret-token")
        #expect(reindex.status == 200, "\(reindex.body)")
        let optimize = try curl(server, "/utils/db/optimize?premake=1", method: "POST", token: "s3cret-token")
        #expect(optimize.status == 200)
        #expect(optimize.json?["partitionsCreated"] as? Int == 4)
    }

    @Test func withoutATokenPostEndpointsAreDisabled() throws {
        let server = try startServer(token: nil)
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        let reply = try curl(server, "/utils/db/optimize", method: "POST", token: "")
        #expect(reply.status == 401)
        #expect(reply.body.contains("ADMIN_TOKEN"))
    }

    @Test func unhealthyDatabaseAnswers503() throws {
        let server = try startServer()
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        try PostgresConnection(server.databaseURL).execute("DELETE FROM schema_migrations WHERE version = 5")
        let health = try curl(server, "/utils/db/health")
        #expect(health.status == 503)
        #expect((health.json?["problems"] as? [String])?.first?.contains("run audit-ingest migrate") == true)
    }

    @Test func metricsParseAsPrometheusText() throws {
        let server = try startServer()
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        let metrics = try curl(server, "/metrics")
        #expect(metrics.status == 200)
        let problems = PrometheusFormat.problems(in: metrics.body)
        #expect(problems.isEmpty, "\(problems)")
        #expect(metrics.body.contains("audit_ingest_db_up 1"))
        #expect(metrics.body.contains("audit_ingest_db_table_bytes{table=\"audit_log_2026_03\"}"))
    }
}

/// A strict-enough check of Prometheus text format 0.0.4: every family has HELP and TYPE before
/// its samples, sample lines are `name{labels} value`, label values are quoted and escaped.
enum PrometheusFormat {
    static func problems(in text: String) -> [String] {
        var problems: [String] = []
        var typed: [String: String] = [:]
        let sample = try! NSRegularExpression(pattern:
            #"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")*\})? (-?[0-9.]+(e[+-]?[0-9]+)?|NaN|[+-]Inf)$"#)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) where !line.isEmpty {
            if line.hasPrefix("# HELP ") { continue }
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[3])) else {
                    problems.append("bad TYPE line: \(line)")
                    continue
                }
                typed[String(parts[2])] = String(parts[3])
                continue
            }
            let range = NSRange(line.startIndex..., in: line)
            guard let match = sample.firstMatch(in: line, range: range), let nameRange = Range(match.range(at: 1), in: line) else {
                problems.append("bad sample line: \(line)")
                continue
            }
            let name = String(line[nameRange])
            let family = ["_bucket", "_sum", "_count"].reduce(name) { name, suffix in
                name.hasSuffix(suffix) && typed[String(name.dropLast(suffix.count))] == "histogram" ? String(name.dropLast(suffix.count)) : name
            }
            if typed[family] == nil { problems.append("sample before its TYPE: \(line)") }
        }
        return problems
    }
}
