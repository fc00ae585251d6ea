import Foundation
import Postgres
import TestSupport
import Testing
@testable import AdminServer

/// The OpenAPI document the admin server ships and serves (`/openapi.json`) describes exactly the
/// routes it registers, and every status a live server answers is one the document lists for that
/// operation. (scripts/check-openapi runs schemathesis against a live server for the rest: bodies,
/// parameters and content types.)
@Suite(.serialized, .timeLimit(.minutes(3))) struct OpenAPIContractTests {
    static let documentFile = TestDatabase.repositoryRoot.appendingPathComponent("Sources/AdminServer/openapi.json")

    /// `path → method → documented statuses`.
    static func operations(_ document: Data) throws -> [String: [String: Set<String>]] {
        let object = try #require(try JSONSerialization.jsonObject(with: document) as? [String: Any])
        #expect(object["openapi"] as? String == "3.1.0")
        let paths = try #require(object["paths"] as? [String: [String: Any]])
        return paths.mapValues { item in
            item.filter { ["get", "post", "put", "patch", "delete"].contains($0.key) }.mapValues { operation in
                Set(((operation as? [String: Any])?["responses"] as? [String: Any] ?? [:]).keys)
            }
        }
    }

    @Test func everyRegisteredRouteIsDocumentedAndEveryDocumentedOperationIsRegistered() throws {
        let server = AdminServer(configuration: .init(token: "unused", database: PostgresConfiguration(
            connectionString: ConnectionString("postgresql://127.0.0.1:1/unused")), expectedMigrations: [:]))
        let registered = Set(server.makeRouter().routes.map { route in
            let path = route.path.description.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
            return "\(route.method.rawValue.lowercased()) /" + path.joined(separator: "/")
        })
        let documented = Set(try Self.operations(Data(contentsOf: Self.documentFile)).flatMap { path, methods in
            methods.keys.map { "\($0) \(path)" }
        })
        #expect(registered.count >= 20)
        #expect(registered.subtracting(documented).isEmpty, "registered, not documented: \(registered.subtracting(documented).sorted())")
        #expect(documented.subtracting(registered).isEmpty, "documented, not registered: \(documented.subtracting(registered).sorted())")
    }

    @Test func theServedDocumentIsTheShippedOneAndEveryStatusAnsweredIsDocumented() throws {
        let fixture = try ReadFixture(prefix: "openapi")
        try fixture.insertSeries(tenant: ReadFixture.tenantA, count: 20)
        // With a stream secret key, so that tenants' destinations are served too.
        let key = FileManager.default.temporaryDirectory.appendingPathComponent("stream-\(UUID()).key").path
        #expect(try Shell.run(Shell.executable(named: "audit-ingest"), ["stream", "secret-key", "generate", "--out", key]).exitCode == 0)
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: ReadFixture.adminToken,
                                                  extraArguments: ["--stream-secret-key-file", key])
        defer { server.stop() }
        let served = try server.request("/openapi.json")
        #expect(served.status == 200 && served.headers["content-type"] == "application/json")
        #expect(Data(served.body.utf8) == (try Data(contentsOf: Self.documentFile)), "/openapi.json is not the shipped document")
        let operations = try Self.operations(Data(served.body.utf8))

        let token = try fixture.createToken(tenant: ReadFixture.tenantA)
        let event = try #require(try fixture.owner.execute("SELECT id::text FROM audit_log LIMIT 1").scalar)
        let values = ["tenant_id": ReadFixture.tenantA, "id": ReadFixture.tenantA, "event_id": event,
                      "destination_id": "00000000-0000-4000-8000-000000000001"]
        var answered = 0
        for (path, methods) in operations.sorted(by: { $0.key < $1.key }) {
            let concrete = values.reduce(path) { $0.replacingOccurrences(of: "{\($1.key)}", with: $1.value) }
            for (method, statuses) in methods where method == "get" || path.hasSuffix("/test") == false && method != "delete" {
                // Admin token, tenant token, none, and a malformed query: each answer is documented.
                for (credential, query) in [(ReadFixture.adminToken, ""), (token, ""), (nil, ""), (ReadFixture.adminToken, "?limit=x")] {
                    let reply = try server.request(concrete + query, method: method.uppercased(), token: credential)
                    answered += 1
                    #expect(statuses.contains(String(reply.status)), "\(method) \(concrete)\(query) answered \(reply.status): \(reply.body.prefix(200))")
                    #expect(reply.status != 500, "\(method) \(concrete)\(query): \(reply.status) \(reply.body.prefix(200))")
                }
            }
        }
        #expect(answered >= 60)
    }

    /// Found by schemathesis: inputs that PostgreSQL or an HTTP client would refuse later (a 500,
    /// an export cut after its 200, a secret quoted back in an error) are refused up front.
    @Test func inputsThatWouldFailLaterAreRefusedWith400() throws {
        let fixture = try ReadFixture(prefix: "openapi")
        let key = FileManager.default.temporaryDirectory.appendingPathComponent("stream-\(UUID()).key").path
        #expect(try Shell.run(Shell.executable(named: "audit-ingest"), ["stream", "secret-key", "generate", "--out", key]).exitCode == 0)
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: ReadFixture.adminToken,
                                                  extraArguments: ["--stream-secret-key-file", key, "--allow-local-destinations"])
        defer { server.stop() }
        let tenant = "/v1/tenants/\(ReadFixture.tenantA)"
        for path in ["/events?since=2026-01-01T00:00:00%2B16:00", "/events/export?until=2026-01-01T00:00:00-23:59"] {
            let reply = try server.request(tenant + path, token: ReadFixture.adminToken)
            #expect(reply.status == 400 && reply.body.contains("error"), "\(path): \(reply.status) \(reply.body)")
        }
        #expect(try server.request(tenant + "/events?since=2026-01-01T00:00:00%2B15:59", token: ReadFixture.adminToken).status == 200)
        for (body, field) in [(#"{"name":"h","url":"https://1.1.1.1/a","kind":"splunk_hec","secret":"0123456789abcdef\u000b"}"#, "secret"),
                              (#"{"name":"n","url":"https://1.1.1.1/a\u0000b"}"#, "url"),
                              (#"{"name":"p","url":"https://1.1.1.1:99999/a"}"#, "url"),
                              (#"{"name":"b","url":"https://1.1.1.1/a","batch_size":true}"#, "batch_size")] {
            let reply = try server.request(tenant + "/stream/destinations", method: "POST", token: ReadFixture.adminToken, json: body)
            #expect(reply.status == 400 && reply.body.contains(field), "\(body): \(reply.status) \(reply.body)")
        }
    }
}
