import Foundation
import Postgres
import TestSupport
import Testing

/// The admin HTTP API through a real HTTP client (curl) against `audit-ingest admin serve`.
@Suite(.serialized, .timeLimit(.minutes(3))) struct AdminAPITests {
    typealias Server = AdminServerProcess

    static let token = "s3cret-token"

    func startServer(token: String? = token, extraArguments: [String] = []) throws -> Server {
        let url = try TestDatabase.createMigrated(prefix: "admin")
        let connection = try PostgresConnection(url)
        try connection.execute("""
            INSERT INTO tenant (id, name, code) VALUES ('00000000-0000-4000-8000-00000000000a', 'Acme', 'acme');
            SELECT ensure_month_partitions('2026-03-01');
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp")
            VALUES (gen_random_uuid(), '00000000-0000-4000-8000-00000000000a', 'user.login', 'INFO', '2026-03-10 08:00+00');
            """)
        return try AdminServerProcess.start(databaseURL: url, token: token, extraArguments: extraArguments)
    }

    func curl(_ server: Server, _ path: String, method: String = "GET", token: String? = Self.token,
              headers: [String] = []) throws -> AdminServerProcess.Reply {
        try server.request(path, method: method, token: token, headers: headers)
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
        #expect(try curl(server, "/utils/db/vacuum", method: "POST", token: nil).status == 401)
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

    @Test func withoutATokenOnlyMetricsAndLivenessAnswer() throws {
        let server = try startServer(token: nil)
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        let reply = try curl(server, "/utils/db/optimize", method: "POST", token: "")
        #expect(reply.status == 401)
        #expect(reply.body.contains("ADMIN_TOKEN"))
        for path in ["/utils/db/health", "/utils/db/stats", "/utils/db/tenant/00000000-0000-4000-8000-00000000000a/performance"] {
            #expect(try curl(server, path, token: nil).status == 401, "\(path)")
            #expect(try curl(server, path, token: "anything").status == 401, "\(path)")
        }
        #expect(try curl(server, "/metrics", token: nil).status == 200)
        #expect(try curl(server, "/livez", token: nil).status == 200)
    }

    @Test func readEndpointsNeedTheBearerToken() throws {
        let server = try startServer()
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        for path in ["/utils/db/health", "/utils/db/stats", "/utils/db/tenant/00000000-0000-4000-8000-00000000000a/performance"] {
            let anonymous = try curl(server, path, token: nil)
            #expect(anonymous.status == 401, "\(path)")
            #expect(!anonymous.body.contains("acme") && !anonymous.body.contains("postgres"), "\(anonymous.body)")
            #expect(try curl(server, path, token: "s3cret-tokeN").status == 401, "\(path)")
            #expect(try curl(server, path, token: "s3cret-token-and-more").status == 401, "\(path)")
            #expect(try curl(server, path, token: nil, headers: ["Authorization: Basic czNjcmV0LXRva2Vu"]).status == 401)
        }
        #expect(try curl(server, "/utils/db/health", token: nil, headers: ["Authorization: bearer s3cret-token"]).status == 200)
        #expect(try curl(server, "/metrics", token: nil).status == 200)
    }

    @Test func hostHeaderMustNameThisServer() throws {
        let server = try startServer(extraArguments: ["--admin-allowed-host", "audit-admin.internal"])
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        let port = server.base.split(separator: ":").last!
        for host in ["attacker.example", "attacker.example:\(port)", "127.0.0.1.attacker.example"] {
            let reply = try curl(server, "/utils/db/health", headers: ["Host: \(host)"])
            #expect(reply.status == 403, "\(host): \(reply.status)")
            #expect(try curl(server, "/metrics", token: nil, headers: ["Host: \(host)"]).status == 403, "\(host)")
        }
        for host in ["127.0.0.1:\(port)", "localhost:\(port)", "audit-admin.internal", "AUDIT-ADMIN.internal:\(port)"] {
            #expect(try curl(server, "/utils/db/health", headers: ["Host: \(host)"]).status == 200, "\(host)")
        }
    }

    @Test func stalledRequestIsClosed() throws {
        let server = try startServer(extraArguments: ["--admin-request-timeout", "1"])
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        let port = Int(server.base.split(separator: ":").last!)!
        let started = ContinuousClock.now
        let closed = try StalledClient.sendsPartialHeaderUntilClosed(port: port, giveUpAfter: 8)
        #expect(closed, "the server kept a connection whose request header never completed")
        #expect(started.duration(to: .now) < .seconds(8))
    }

    @Test func failureAnswers500AndIsLoggedWithItsCause() throws {
        let server = try startServer()
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        let name = String(server.databaseURL.split(separator: "/").last!)
        try PostgresConnection(try TestDatabase.baseURL()).execute("DROP DATABASE \(name) WITH (FORCE)")
        let reply = try curl(server, "/utils/db/stats")
        #expect(reply.status == 500)
        #expect(!reply.body.contains(name), "no internals in the answer: \(reply.body)")
        #expect(server.child.outputSoFar.contains("admin request failed"))
        #expect(server.child.outputSoFar.contains("\(name)\" does not exist"), "\(server.child.outputSoFar)")
    }

    @Test func refusedByTheDatabaseIs403NotA500() throws {
        let owner = try startServer()
        defer { owner.child.signal(SIGTERM); _ = owner.child.wait(timeout: 20) }
        let admin = try PostgresConnection(owner.databaseURL)
        let role = "admin_ingest_\(UUID().uuidString.prefix(8).lowercased())"
        try admin.execute("CREATE ROLE \(role) LOGIN IN ROLE audit_ingest")
        defer { _ = try? admin.execute("DROP ROLE \(role)") }
        let port = try freeTCPPort()
        let child = try Shell.spawn(Shell.executable(named: "audit-ingest"), [
            "admin", "serve", "--admin-port", "\(port)",
            "--database-url", owner.databaseURL.replacingOccurrences(of: "://postgres@", with: "://\(role)@"),
            "--migrations-dir", TestDatabase.migrationsDirectory.path], environment: ["ADMIN_TOKEN": Self.token])
        defer { child.signal(SIGTERM); _ = child.wait(timeout: 20) }
        let server = Server(child: child, base: "http://127.0.0.1:\(port)", databaseURL: owner.databaseURL)
        let deadline = ContinuousClock.now + .seconds(10)
        while (try? curl(server, "/livez").status) != 200 && ContinuousClock.now < deadline {}
        let reply = try curl(server, "/utils/db/tenant/00000000-0000-4000-8000-00000000000a/performance")
        #expect(reply.status == 403, "\(reply.status) \(reply.body)")
        #expect(reply.body.contains("schema owner"), "\(reply.body)")
    }

    @Test func premakeIsBounded() throws {
        let server = try startServer()
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        let huge = try curl(server, "/utils/db/optimize?premake=100000", method: "POST")
        #expect(huge.status == 400)
        #expect(huge.body.contains("between 0 and 24"))
        #expect(try curl(server, "/utils/db/optimize?premake=-1", method: "POST").status == 400)
        #expect(try curl(server, "/utils/db/optimize?premake=lots", method: "POST").status == 400)
        #expect(try PostgresConnection(server.databaseURL).execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass").scalar == "1")
        let cli = try Shell.run(Shell.executable(named: "audit-ingest"),
                                ["partitions", "ensure", "--premake", "1000", "--database-url", server.databaseURL])
        #expect(cli.exitCode == 64)
        #expect(cli.output.contains("premake must be between 0 and 24 months, not 1000"))
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
        #expect(metrics.body.contains("audit_ingest_feed_horizon_age_seconds 0"))
        #expect(metrics.body.contains("audit_ingest_alert{alert=\"feed_horizon_stalled\"} 0"))
    }

    /// A writer that does not end holds every tenant's feed back: its age shows, and past
    /// --alert-feed-horizon-age the alert fires; once it commits, both clear.
    @Test func aWriterThatDoesNotEndRaisesTheFeedHorizonAlert() throws {
        let server = try startServer(extraArguments: ["--alert-feed-horizon-age", "1"])
        defer { server.child.signal(SIGTERM); _ = server.child.wait(timeout: 20) }
        let writer = try PostgresConnection(server.databaseURL)
        try writer.execute("BEGIN; LOCK TABLE feed_writer IN ROW EXCLUSIVE MODE; SELECT pg_current_xact_id()")
        // A later transaction commits: the feed now holds back what comes after the writer.
        try PostgresConnection(server.databaseURL).execute("SELECT pg_current_xact_id()")
        let stalled = "audit_ingest_alert{alert=\"feed_horizon_stalled\"} 1"
        var body = ""
        waitUntil(timeout: .seconds(30), interval: .milliseconds(200)) {
            body = try curl(server, "/metrics").body
            return body.contains(stalled)
        }
        #expect(body.contains(stalled), "\(body)")
        let age = body.split(separator: "\n").first { $0.hasPrefix("audit_ingest_feed_horizon_age_seconds ") }
        #expect(age.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 >= 1 } == true, "\(age ?? "no age")")

        try writer.execute("COMMIT")
        waitUntil(timeout: .seconds(30), interval: .milliseconds(200)) {
            body = try curl(server, "/metrics").body
            return body.contains("audit_ingest_alert{alert=\"feed_horizon_stalled\"} 0")
        }
        #expect(body.contains("audit_ingest_feed_horizon_age_seconds 0"), "\(body)")
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

/// A client that sends half a request header and then nothing (a slowloris).
enum StalledClient {
    /// True when the server closes the connection within `giveUpAfter` seconds.
    static func sendsPartialHeaderUntilClosed(port: Int, giveUpAfter seconds: Int) throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestDatabase.Unavailable(description: "cannot connect to 127.0.0.1:\(port)") }
        let partial = "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        _ = partial.withCString { send(fd, $0, strlen($0), 0) }
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 512)
        let received = recv(fd, &buffer, buffer.count, 0)
        return received == 0 || (received < 0 && errno == ECONNRESET)  // EOF: closed; -1 EAGAIN: still open
    }
}
