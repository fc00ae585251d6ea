import Foundation
import Postgres
import TestSupport
import Testing

/// What a tenant, or anyone holding a tenant token, could do to the read API and no longer can:
/// inject SQL through an export's filters, starve everyone with stalled exports, keep reading
/// while suspended, plant formulas in a CSV, and trip the server with out-of-range times.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ReadAPIAbuseTests {
    static let a = "/v1/tenants/\(ReadFixture.tenantA)"

    /// With `standard_conforming_strings=off` a backslash escapes a quote, which once let an
    /// export filter close its literal and run SQL. Every value now reaches the server as data.
    @Test func exportFiltersAreDataEvenWithStandardConformingStringsOff() throws {
        let fixture = try ReadFixture()
        let database = try #require(fixture.url.split(separator: "/").last.map { String($0.split(separator: "?")[0]) })
        try fixture.owner.execute("ALTER DATABASE \(database) SET standard_conforming_strings = off")
        try fixture.insertSeries(tenant: ReadFixture.tenantB, count: 50)
        let hostile: [(action: String, resourceType: String)] = [
            (#"\'"#, #" OR true --"#),
            (#"\'"#, #") UNION SELECT * FROM audit_log --"#),
            (#"x\"#, #"' OR tenant_id IS NOT NULL OR '"#),
            (#"$$"#, #"$$ OR true OR $$"#),
        ]
        try fixture.insert(hostile.map { ReadFixture.Event(action: $0.action, resourceType: $0.resourceType) })
        try fixture.insert([ReadFixture.Event(action: "user.login", resourceType: "doc")])
        let server = try fixture.startServer()
        defer { server.stop() }
        #expect(try server.request("\(Self.a)/events", token: ReadFixture.adminToken).ids.count == hostile.count + 1)

        for value in hostile {
            for format in ["ndjson", "csv"] {
                let path = "\(Self.a)/events/export?format=\(format)&action=\(q(value.action))&resource_type=\(q(value.resourceType))"
                let reply = try server.request(path, token: ReadFixture.adminToken)
                #expect(reply.status == 200, "\(value): \(reply.body)")
                let lines = reply.body.split(separator: "\n").filter { !$0.hasPrefix("id,") }
                #expect(lines.count == 1, "exactly the event whose action is \(value.action): \(reply.body)")
                #expect(!reply.body.contains(ReadFixture.tenantB), "nothing of another tenant")
            }
            let cli = try fixture.cli(["events", "export", "--tenant", ReadFixture.tenantA, "--action", value.action,
                                       "--resource-type", value.resourceType, "-o", "-"])
            #expect(cli.exitCode == 0 && cli.output.contains("exported 1 event(s)"), "\(cli.output)")
        }
    }

    /// Six exports whose clients read nothing hold six export turns (three tenants, two each);
    /// a seventh is refused at once, and searches, feeds and health go on answering at once.
    @Test func stalledExportsStarveNobody() throws {
        let fixture = try ReadFixture()
        let tenantD = "0000000d-0000-4000-8000-000000000000"
        try fixture.owner.execute("SET audit.scope = 'system'; INSERT INTO tenant (id, name, code) VALUES ('\(tenantD)', 'Dune', 'dune')")
        for tenant in [ReadFixture.tenantA, ReadFixture.tenantB, ReadFixture.tenantC] { try Self.insertLargeEvents(tenant, on: fixture) }
        try fixture.insertSeries(tenant: tenantD, count: 20)
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: ReadFixture.adminToken,
                                                  extraArguments: ["--admin-exports", "6", "--admin-exports-per-tenant", "2",
                                                                   "--admin-export-stall-timeout", "120"])
        defer { server.stop() }
        var stalled: [StalledClient] = []
        for tenant in [ReadFixture.tenantA, ReadFixture.tenantB, ReadFixture.tenantC] {
            for _ in 0..<2 {
                let client = try StalledClient(port: server.port, path: "/v1/tenants/\(tenant)/events/export", token: ReadFixture.adminToken)
                #expect(client.status() == 200)
                stalled.append(client)
            }
        }
        let third = try server.request("\(Self.a)/events/export", token: ReadFixture.adminToken)
        #expect(third.status == 429, "\(third.body)")
        #expect(third.headers["retry-after"] == "5")
        #expect(third.json?["error"] as? String == "tenant \(ReadFixture.tenantA) already runs 2 export(s), its most at once: try again in 5 s")
        let overall = try server.request("/v1/tenants/\(tenantD)/events/export", token: ReadFixture.adminToken)
        #expect(overall.status == 503 && overall.headers["retry-after"] == "5", "\(overall.body)")

        for path in ["/v1/tenants/\(tenantD)/events", "/v1/tenants/\(tenantD)/feed", "\(Self.a)/events?limit=5"] {
            let started = ContinuousClock.now
            let reply = try server.request(path, token: ReadFixture.adminToken)
            #expect(reply.status == 200, "\(path): \(reply.body)")
            #expect(ContinuousClock.now - started < .seconds(1), "\(path) answered at once")
        }
        #expect(try server.request("/utils/db/health", token: ReadFixture.adminToken).status == 200)
        stalled.removeAll()  // closed: the server's writes fail and the exports end
    }

    /// A client that takes nothing for the stall timeout loses its export: the connection is
    /// closed and the turn is free for the next export at once.
    @Test func anExportWhoseClientTakesNothingIsAbortedAndItsTurnFreed() throws {
        let fixture = try ReadFixture()
        try Self.insertLargeEvents(ReadFixture.tenantA, on: fixture)
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: ReadFixture.adminToken,
                                                  extraArguments: ["--admin-exports-per-tenant", "1", "--admin-export-stall-timeout", "2"])
        defer { server.stop() }
        let client = try StalledClient(port: server.port, path: "\(Self.a)/events/export", token: ReadFixture.adminToken)
        #expect(client.status() == 200)
        #expect(try server.request("\(Self.a)/events/export", token: ReadFixture.adminToken).status == 429, "the one turn is taken")
        #expect(waitUntil(timeout: .seconds(30)) { server.child.outputSoFar.contains("export aborted: its client took nothing") })
        #expect(client.drainUntilClosed(timeout: .seconds(30)), "the server closed the stalled connection")
        let next = try server.request("\(Self.a)/events/export?action=none", token: ReadFixture.adminToken)
        #expect(next.status == 200 && next.body.isEmpty, "the turn is free again: \(next.status) \(next.body)")
    }

    /// A suspended or inactive tenant's tokens read nothing, and it gets no new ones; the
    /// operator (admin token, CLI) still reads it.
    @Test func suspendedAndInactiveTenantsReadNothing() throws {
        let fixture = try ReadFixture()
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: 5)
        let token = try fixture.createToken(tenant: ReadFixture.tenantA)
        let server = try fixture.startServer()
        defer { server.stop() }
        #expect(try server.request("\(Self.a)/events", token: token).status == 200)
        for status in ["suspended", "inactive"] {
            try fixture.owner.execute("SET audit.scope = 'system'; UPDATE tenant SET status = '\(status)' WHERE id = '\(ReadFixture.tenantA)'; RESET audit.scope")
            for path in ["\(Self.a)/events", "\(Self.a)/feed", "\(Self.a)/events/export"] {
                let reply = try server.request(path, token: token)
                #expect(reply.status == 403, "\(status) \(path): \(reply.status)")
                #expect((reply.json?["error"] as? String)?.contains("is \(status)") == true, "\(reply.body)")
            }
            #expect(try server.request("\(Self.a)/events", token: ReadFixture.adminToken).ids.count == 5, "the operator reads on")
            let create = try fixture.cli(["tenant", "token", "create", "--tenant", ReadFixture.tenantA])
            #expect(create.exitCode == 2 && create.output.contains("tokens are issued to active tenants only"), "\(create.output)")
        }
        try fixture.owner.execute("SET audit.scope = 'system'; UPDATE tenant SET status = 'active' WHERE id = '\(ReadFixture.tenantA)'; RESET audit.scope")
        #expect(try server.request("\(Self.a)/events", token: token).status == 200, "active again: the token reads again")
    }

    /// Cells that a spreadsheet would run as a formula are prefixed with ' in every CSV output,
    /// unless asked to keep them; NDJSON keeps every value as stored.
    @Test func csvCellsNeverStartAFormula() throws {
        let fixture = try ReadFixture()
        let formulas = [#"=HYPERLINK("http://evil","x")"#, #"=cmd|' /C calc'!A0"#, "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
        try fixture.insert(formulas.enumerated().map { index, text in
            ReadFixture.Event(action: text, resourceType: text, resourceID: text, timestamp: "2026-03-10T08:00:0\(index)Z")
        })
        let server = try fixture.startServer()
        defer { server.stop() }
        let csv = try server.request("\(Self.a)/events/export?format=csv", token: ReadFixture.adminToken)
        let kept = try server.request("\(Self.a)/events/export?format=csv&csv_formulas=keep", token: ReadFixture.adminToken)
        let ndjson = try server.request("\(Self.a)/events/export", token: ReadFixture.adminToken)
        let search = try fixture.cli(["events", "search", "--tenant", ReadFixture.tenantA, "--format", "csv", "--order", "asc"])
        let searchKept = try fixture.cli(["events", "search", "--tenant", ReadFixture.tenantA, "--format", "csv", "--order", "asc",
                                          "--keep-formulas"])
        for (name, text) in [("export", csv.body), ("search", search.output)] {
            let cells = Self.csvCells(text)
            for formula in formulas {
                #expect(cells.filter { $0 == "'" + formula }.count == 3, "\(name): action, resource_type, resource_id of \(formula.debugDescription)")
                #expect(!cells.contains(formula), "\(name): \(formula.debugDescription) never as it is")
            }
        }
        for (name, text) in [("export", kept.body), ("search", searchKept.output)] {
            let cells = Self.csvCells(text)
            #expect(formulas.allSatisfy { formula in cells.filter { $0 == formula }.count == 3 }, "\(name) keeps them when asked")
        }
        #expect(try server.request("\(Self.a)/events/export?format=csv&csv_formulas=run", token: ReadFixture.adminToken).status == 400)
        let actions = ndjson.body.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["action"] as? String
        }
        #expect(actions == formulas, "NDJSON is data, not a sheet: as stored")
    }

    /// Times PostgreSQL cannot read are refused as bad parameters (400), never a 500 or an export
    /// that starts and then aborts.
    @Test func timesOutsidePostgreSQLsRangeAre400() throws {
        let fixture = try ReadFixture()
        let server = try fixture.startServer()
        defer { server.stop() }
        let fraction = "2026-03-01T00:00:00." + String(repeating: "1", count: 5000) + "Z"
        for text in ["0000-01-01T00:00:00Z", fraction, "2026-03-01T00:00:00.1234567891Z"] {
            for path in ["\(Self.a)/events?since=\(q(text))", "\(Self.a)/events/export?until=\(q(text))"] {
                let reply = try server.request(path, token: ReadFixture.adminToken)
                #expect(reply.status == 400, "\(path.prefix(80)): \(reply.status)")
                #expect(reply.body.count < 400, "the message does not repeat 5000 digits")
            }
        }
        #expect(try server.request("\(Self.a)/events?since=\(q("0001-01-02T00:00:00.123456789+14:00"))", token: ReadFixture.adminToken).status == 200)
    }

    /// `events search` prints a table for a person: a stored line feed, ESC sequence or bidi
    /// override shows as an escape and cannot forge a row or rewrite the screen.
    @Test func theSearchTableShowsControlCharactersAsEscapes() throws {
        let fixture = try ReadFixture()
        let forged = "doc-1\n2026-03-10T09:00:00.000000Z  INFO      user.logout"
        try fixture.insert([ReadFixture.Event(action: "\u{1B}[2J\u{1B}[31mred", resourceType: "a\u{202E}txt.exe", resourceID: forged)])
        let table = try fixture.cli(["events", "search", "--tenant", ReadFixture.tenantA])
        #expect(table.exitCode == 0, "\(table.output)")
        #expect(table.output.split(separator: "\n").count == 2, "a header and one row: \(table.output)")
        #expect(table.output.contains(#"doc-1\n2026-03-10T09:00:00"#))
        #expect(table.output.contains(#"\u{1B}[2J\u{1B}[31mred"#) && table.output.contains(#"a\u{202E}txt.exe"#))
        #expect(!table.output.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{202E}" })
    }

    /// A refused Host header is logged quoted, controls escaped, and not once per request.
    @Test func aRefusedHostIsLoggedQuotedAndRarely() throws {
        let fixture = try ReadFixture()
        let server = try fixture.startServer()
        defer { server.stop() }
        let hostile = "evil.example level=info msg=forged"
        for _ in 0..<20 {
            #expect(try server.request("/livez", headers: ["Host: \(hostile)"]).status == 403)
        }
        #expect(waitUntil(timeout: .seconds(10)) { server.child.outputSoFar.contains("refused a request for a host") })
        let lines = server.child.outputSoFar.split(separator: "\n").filter { $0.contains("refused a request for a host") }
        #expect(lines.count == 1, "one line per 10 s, not 20: \(lines)")
        #expect(lines.first?.contains("host=\"\(hostile)\"") == true, "quoted: \(lines)")
        let port = try fixture.cli(["admin", "serve", "--admin-port", "70000"])
        #expect(port.exitCode == 64 && port.output.contains("--admin-port must be a TCP port, 1-65535, not 70000"), "\(port.output)")
    }

    // MARK: Helpers

    /// 2,500 events of about 2 KiB each (5 MiB): more than the sockets between server and a
    /// stalled client hold, so its export is still running while the test looks.
    static func insertLargeEvents(_ tenant: String, on fixture: ReadFixture) throws {
        try fixture.owner.execute("""
            INSERT INTO audit_log (id, tenant_id, action, severity, "timestamp", custom_metadata)
            SELECT gen_random_uuid(), '\(tenant)', 'bulk', 'INFO', timestamptz '2026-02-01 00:00+00' + i * interval '1 second',
                   jsonb_build_object('padding', repeat('x', 2000))
            FROM generate_series(1, 2500) i
            """)
    }

    /// Every cell of a CSV text (RFC 4180 quoting), rows and header alike.
    static func csvCells(_ text: String) -> [String] {
        var cells: [String] = [], cell = "", quoted = false, previous: Character? = nil
        for character in text {
            if quoted {
                if character == "\"" { quoted = false } else { cell.append(character) }
            } else if character == "\"" {
                if previous == "\"" { cell.append("\"") }
                quoted = true
            } else if character == "," || character == "\n" {
                cells.append(cell)
                cell = ""
            } else {
                cell.append(character)
            }
            previous = character
        }
        return cells
    }
}
