import Crypto
import Foundation
import Postgres
import TestSupport
import Testing

/// Destinations a tenant manages with its own token through the admin server: sealed secrets,
/// only its own destinations, and no URL that reaches inside the operator's network.
@Suite(.serialized, .timeLimit(.minutes(5))) struct TenantDestinationTests {
    static let path = "/v1/tenants/\(StreamFixture.tenantA)/stream/destinations"

    @Test func aTenantsWebhookIsSignedWithASealedSecretAndGetsOnlyItsEvents() throws {
        let fixture = try StreamFixture()
        let key = try StreamFixture.secretKeyFile()
        defer { try? FileManager.default.removeItem(atPath: key) }
        let token = try fixture.createToken(tenant: StreamFixture.tenantA)
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        let local = ["--stream-secret-key-file", key, "--allow-local-destinations"]
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: "admin", extraArguments: local)
        defer { server.stop() }

        let created = try server.request(Self.path, method: "POST", token: token,
                                         json: #"{"name":"acme-hook","url":"\#(receiver.url)","from":"beginning","batch_size":4}"#)
        #expect(created.status == 201, "\(created.body)")
        let secret = try #require(created.json?["signing_secret"] as? String, "\(created.body)")
        #expect(secret.hasPrefix("whsec_") && secret.count > 40)
        #expect(created.json?["has_secret"] as? Bool == true && created.json?["managed_by"] as? String == "tenant")
        let id = try #require(created.json?["id"] as? String)

        // Stored sealed, for tenant A, with no reference; the secret itself is nowhere in the row.
        let row = try fixture.owner.query("""
            SELECT tenant_id::text, managed_by, secret_ref IS NULL, encode(secret_sealed, 'escape') || url || name
            FROM stream_destination WHERE id = $1::uuid
            """, [id]).rows.first
        #expect(row?[0] == StreamFixture.tenantA && row?[1] == "tenant" && row?[2] == "t")
        #expect(row?[3]?.contains(secret) == false && row?[3]?.contains(String(secret.dropFirst(6))) == false)

        try fixture.insert(tenant: StreamFixture.tenantA, count: 6)
        try fixture.insert(tenant: StreamFixture.tenantB, count: 3)
        let streamer = try fixture.startStreamer(local)
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }
        #expect(waitUntil(timeout: .seconds(30)) { receiver.acceptedIDs().count >= 6 }, "\(streamer.outputSoFar)")
        #expect(receiver.acceptedIDs() == (try fixture.feedOrder(tenant: StreamFixture.tenantA)))
        for delivery in receiver.accepted() {
            #expect(Self.isSigned(delivery, with: secret), "signed with the secret the tenant was given")
        }

        let listed = try server.request(Self.path, token: token)
        #expect(listed.status == 200 && !listed.body.contains(secret), "\(listed.body)")
        #expect(waitUntil(timeout: .seconds(10)) {
            let list = try server.request(Self.path, token: token)
            return ((try? JSONSerialization.jsonObject(with: Data(list.body.utf8))) as? [[String: Any]])?.first?["delivered"] as? Int == 6
        })
        let test = try server.request(Self.path + "/\(id)/test", method: "POST", token: token)
        #expect(test.status == 200 && test.json?["delivered"] as? Bool == true, "\(test.body)")
        #expect(receiver.accepted().last?.headers["x-audit-ingest-test"] == "1")
    }

    @Test func aTenantsTokenManagesOnlyItsOwnDestinations() throws {
        let fixture = try StreamFixture()
        let key = try StreamFixture.secretKeyFile()
        defer { try? FileManager.default.removeItem(atPath: key) }
        let tokenA = try fixture.createToken(tenant: StreamFixture.tenantA)
        let tokenB = try fixture.createToken(tenant: StreamFixture.tenantB)
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: "admin",
                                                  extraArguments: ["--stream-secret-key-file", key, "--allow-local-destinations"])
        defer { server.stop() }
        let body = #"{"name":"hook","url":"http://127.0.0.1:9/hook"}"#
        let created = try server.request(Self.path, method: "POST", token: tokenA, json: body)
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(created.json?["id"] as? String)
        let operatorMade = try fixture.createDestination(["--name", "ops-siem", "--tenant", StreamFixture.tenantA,
                                                          "--url", "http://127.0.0.1:9/ops", "--secret", "env:OPS_SECRET"])
        _ = try fixture.createDestination(["--name", "everyone", "--url", "http://127.0.0.1:9/all"])

        // Tenant B: not A's path, and A's destination is unknown on its own.
        let pathB = "/v1/tenants/\(StreamFixture.tenantB)/stream/destinations"
        #expect(try server.request(Self.path, token: tokenB).status == 403)
        #expect(try server.request(Self.path, method: "POST", token: tokenB, json: #"{"name":"x","url":"http://127.0.0.1:9/"}"#).status == 403)
        for (method, suffix) in [("GET", ""), ("DELETE", ""), ("POST", "/pause"), ("POST", "/resume"), ("POST", "/rewind?to=beginning"),
                                 ("POST", "/test")] {
            let reply = try server.request(pathB + "/\(id)" + suffix, method: method, token: tokenB)
            #expect(reply.status == 404, "\(method) \(suffix): \(reply.status) \(reply.body)")
        }
        #expect(try server.request(pathB, token: tokenB).body == "[]")
        #expect(try fixture.destinationState(id).state == "active")

        // Tenant A sees its own and its operator's (without the reference), never an every-tenant one.
        let listed = try server.request(Self.path, token: tokenA)
        let names = ((try? JSONSerialization.jsonObject(with: Data(listed.body.utf8))) as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(names == ["hook", "ops-siem"], "\(listed.body)")
        #expect(!listed.body.contains("OPS_SECRET"), "\(listed.body)")
        let ops = try server.request(Self.path + "/\(operatorMade)/pause", method: "POST", token: tokenA)
        #expect(ops.status == 403 && ops.body.contains("managed by the operator"), "\(ops.body)")
        #expect(try server.request(Self.path + "/\(operatorMade)", method: "DELETE", token: tokenA).status == 403)
        #expect(try server.request(Self.path + "/\(operatorMade)/test", method: "POST", token: tokenA).status == 403,
                "a tenant cannot make the server read its operator's secret and send it")

        // A batch in flight that does not finish (its lock held, as a streamer holds it while it
        // sends): the tenant's pause waits a bounded time and answers 503, holding no connection.
        let lockKey = "audit-ingest stream " + id
        try fixture.owner.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [lockKey])
        let stuck = try server.request(Self.path + "/\(id)/pause", method: "POST", token: tokenA)
        #expect(stuck.status == 503 && stuck.headers["retry-after"] != nil && stuck.body.contains("in flight"), "\(stuck.body)")
        #expect(try fixture.destinationState(id).state == "active")
        try fixture.owner.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [lockKey])

        // Its own: pause, resume, rewind, refusals, delete.
        let paused = try server.request(Self.path + "/\(id)/pause", method: "POST", token: tokenA)
        #expect(paused.status == 200 && paused.json?["state"] as? String == "paused", "\(paused.body)")
        #expect(try fixture.destinationState(id).state == "paused")
        #expect(try server.request(Self.path + "/\(id)/resume", method: "POST", token: tokenA).json?["state"] as? String == "active")
        #expect(try server.request(Self.path + "/\(id)/rewind?to=yesterday", method: "POST", token: tokenA).status == 400)
        for time in ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00+16:00", "0000-01-01T00:00:00Z"] {
            let rewound = try server.request(Self.path + "/\(id)/rewind?to=\(time.replacingOccurrences(of: "+", with: "%2B"))",
                                             method: "POST", token: tokenA)
            #expect(rewound.status == 200, "\(time): \(rewound.status) \(rewound.body)")
        }
        let taken = try server.request(Self.path, method: "POST", token: tokenA, json: body)
        #expect(taken.status == 409 && taken.json?["parameter"] as? String == "name", "\(taken.body)")
        let reference = try server.request(Self.path, method: "POST", token: tokenA,
                                           json: #"{"name":"y","url":"http://127.0.0.1:9/","secret_ref":"file:/etc/shadow"}"#)
        #expect(reference.status == 400 && reference.json?["parameter"] as? String == "secret_ref", "\(reference.body)")
        let splunk = try server.request(Self.path, method: "POST", token: tokenA,
                                        json: #"{"name":"s","kind":"splunk_hec","url":"http://127.0.0.1:9/"}"#)
        #expect(splunk.status == 400 && splunk.body.contains("HEC token"), "\(splunk.body)")
        #expect(try server.request(Self.path + "/\(id)", method: "DELETE", token: tokenA).status == 200)
        #expect(try server.request(Self.path + "/\(id)", token: tokenA).status == 404)
        #expect(try server.request(Self.path, token: nil).status == 401)

        // Without a stream secret key the server takes no tenant destination, and says why.
        let keyless = try AdminServerProcess.start(databaseURL: fixture.url, token: "admin")
        defer { keyless.stop() }
        let refused = try keyless.request(Self.path, method: "POST", token: tokenA, json: body)
        #expect(refused.status == 503 && refused.body.contains("stream-secret-key-file"), "\(refused.body)")
    }

    @Test func urlsThatReachInsideTheNetworkAreRefusedAtCreateAndAtDelivery() throws {
        let fixture = try StreamFixture()
        let key = try StreamFixture.secretKeyFile()
        defer { try? FileManager.default.removeItem(atPath: key) }
        let token = try fixture.createToken(tenant: StreamFixture.tenantA)
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: "admin", extraArguments: ["--stream-secret-key-file", key])
        for (url, reason) in [("http://example.com/hook", "must use https"), ("https://127.0.0.1/hook", "loopback"),
                              ("https://localhost:9090/utils/db/stats", "loopback"), ("https://[::1]/", "loopback"),
                              ("https://169.254.169.254/latest/meta-data", "cloud metadata"), ("https://10.1.2.3/", "private (10.0.0.0/8)"),
                              ("https://[::ffff:192.168.1.1]/", "private (192.168.0.0/16)"), ("https://[fd00::1]/", "unique local"),
                              ("https://100.100.1.1/", "shared address space"), ("https://0.0.0.0/", "this network"),
                              ("https://[fec0::1]/", "not global unicast"), ("https://[2002:a00:1::]/", "6to4"),
                              ("https://2130706433/", "loopback"), ("https://0x7f.1/", "loopback"),
                              ("https://user:pw@example.com/", "credentials")] {
            let reply = try server.request(Self.path, method: "POST", token: token, json: #"{"name":"x","url":"\#(url)"}"#)
            #expect(reply.status == 400 && reply.json?["parameter"] as? String == "url" && reply.body.contains(reason),
                    "\(url): \(reply.status) \(reply.body)")
        }
        server.stop()
        #expect(try fixture.owner.execute("SELECT count(*) FROM stream_destination").scalar == "0")

        // Made while local addresses were allowed; a streamer that does not allow them sends nothing.
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        let permissive = try AdminServerProcess.start(databaseURL: fixture.url, token: "admin",
                                                      extraArguments: ["--stream-secret-key-file", key, "--allow-local-destinations"])
        let created = try permissive.request(Self.path, method: "POST", token: token,
                                             json: #"{"name":"inside","url":"https://127.0.0.1:\#(receiver.port)/hook","from":"beginning"}"#)
        permissive.stop()
        #expect(created.status == 201, "\(created.body)")
        try fixture.insert(tenant: StreamFixture.tenantA, count: 3)
        let streamer = try fixture.startStreamer(["--stream-secret-key-file", key])
        defer { streamer.signal(SIGKILL); _ = streamer.wait(timeout: 10) }
        #expect(waitUntil(timeout: .seconds(30)) { streamer.outputSoFar.contains("resolves to 127.0.0.1, loopback") }, "\(streamer.outputSoFar)")
        #expect(receiver.accepted().isEmpty && receiver.refused().isEmpty)
    }

    @Test func aSealedSecretOpensOnlyUnderItsKeyAndForItsDestination() throws {
        let fixture = try StreamFixture()
        let key = try StreamFixture.secretKeyFile()
        let otherKey = try StreamFixture.secretKeyFile()
        defer { try? FileManager.default.removeItem(atPath: key); try? FileManager.default.removeItem(atPath: otherKey) }
        let token = try fixture.createToken(tenant: StreamFixture.tenantA)
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: "admin",
                                                  extraArguments: ["--stream-secret-key-file", key, "--allow-local-destinations"])
        var ids: [String] = []
        for name in ["one", "two"] {
            let created = try server.request(Self.path, method: "POST", token: token, json: #"{"name":"\#(name)","url":"\#(receiver.url)"}"#)
            ids.append(try #require(created.json?["id"] as? String, "\(created.body)"))
        }
        server.stop()

        let local = ["--allow-local-destinations"]
        let opened = try fixture.cli(["stream", "destination", "test", ids[0], "--stream-secret-key-file", key] + local)
        #expect(opened.exitCode == 0, "\(opened.output)")
        let keyless = try fixture.cli(["stream", "destination", "test", ids[0]] + local)
        #expect(keyless.exitCode == 1 && keyless.output.contains("give this process --stream-secret-key-file"), "\(keyless.output)")
        let wrong = try fixture.cli(["stream", "destination", "test", ids[0], "--stream-secret-key-file", otherKey] + local)
        #expect(wrong.exitCode == 1 && wrong.output.contains("and this process holds key"), "\(wrong.output)")
        // Moved onto another destination, it does not open.
        try fixture.owner.query("""
            UPDATE stream_destination SET secret_sealed = (SELECT secret_sealed FROM stream_destination WHERE id = $1::uuid)
            WHERE id = $2::uuid
            """, [ids[0], ids[1]])
        let moved = try fixture.cli(["stream", "destination", "test", ids[1], "--stream-secret-key-file", key] + local)
        #expect(moved.exitCode == 1 && moved.output.contains("does not open"), "\(moved.output)")

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key)
        let exposed = try fixture.cli(["stream", "destination", "test", ids[0], "--stream-secret-key-file", key] + local)
        #expect(exposed.exitCode == 64 && exposed.output.contains("chmod 600"), "\(exposed.exitCode) \(exposed.output)")
        #expect(receiver.accepted().count == 1)
    }

    /// Whether the delivery's `X-Audit-Ingest-Signature` is HMAC-SHA256 of `t.body` under `secret`.
    static func isSigned(_ delivery: Receiver.Delivery, with secret: String) -> Bool {
        guard let header = delivery.headers["x-audit-ingest-signature"] else { return false }
        let parts = Dictionary(header.split(separator: ",").map { part in
            let pair = part.split(separator: "=", maxSplits: 1)
            return (String(pair[0]), pair.count == 2 ? String(pair[1]) : "")
        }, uniquingKeysWith: { first, _ in first })
        let mac = HMAC<SHA256>.authenticationCode(for: Array(((parts["t"] ?? "") + "." + delivery.body).utf8),
                                                  using: SymmetricKey(data: Array(secret.utf8)))
        return parts["v1"] == mac.map { String(format: "%02x", $0) }.joined()
    }

    @Test func rotatingTheKeySealsEverySecretAgainAndDeliveryGoesOn() throws {
        let fixture = try StreamFixture()
        let old = try StreamFixture.secretKeyFile()
        let new = try StreamFixture.secretKeyFile()
        defer { try? FileManager.default.removeItem(atPath: old); try? FileManager.default.removeItem(atPath: new) }
        let token = try fixture.createToken(tenant: StreamFixture.tenantA)
        let receiver = try Receiver.start()
        defer { receiver.stop() }
        let server = try AdminServerProcess.start(databaseURL: fixture.url, token: "admin",
                                                  extraArguments: ["--stream-secret-key-file", old, "--allow-local-destinations"])
        var secrets: [String: String] = [:]
        for name in ["one", "two", "three"] {
            let created = try server.request(Self.path, method: "POST", token: token, json: #"{"name":"\#(name)","url":"\#(receiver.url)"}"#)
            let id = try #require(created.json?["id"] as? String, "\(created.body)")
            secrets[id] = try #require(created.json?["signing_secret"] as? String)
        }
        server.stop()
        let ids = secrets.keys.sorted()
        let local = ["--allow-local-destinations"]
        func test(_ id: String, _ keys: [String]) throws -> Shell.Result {
            try fixture.cli(["stream", "destination", "test", id] + keys + local)
        }
        func sealedUnder() throws -> [String] {
            try fixture.owner.query("SELECT secret_key_id FROM stream_destination WHERE id = ANY($1::uuid[]) ORDER BY id",
                                    ["{\(ids.joined(separator: ","))}"]).rows.compactMap { $0[0] }
        }
        let oldID = try #require(try sealedUnder().first)

        // Step 2: the new key seals, and the old one still opens.
        let newOnly = try test(ids[0], ["--stream-secret-key-file", new])
        #expect(newOnly.exitCode == 1 && newOnly.output.contains("sealed under key \(oldID)"), "\(newOnly.output)")
        let both = try test(ids[0], ["--stream-secret-key-file", new, "--previous-stream-secret-key-file", old])
        #expect(both.exitCode == 0, "\(both.output)")
        let previousAlone = try fixture.cli(["stream", "destination", "test", ids[0], "--previous-stream-secret-key-file", old] + local)
        #expect(previousAlone.exitCode == 64 && previousAlone.output.contains("needs --stream-secret-key-file"), "\(previousAlone.output)")

        // A secret that does not open under the old key stops the whole rotation: nothing moves.
        let moved = try fixture.owner.query("SELECT encode(secret_sealed, 'hex') FROM stream_destination WHERE id = $1::uuid", [ids[2]]).scalar
        try fixture.owner.query("""
            UPDATE stream_destination SET secret_sealed = (SELECT secret_sealed FROM stream_destination WHERE id = $1::uuid)
            WHERE id = $2::uuid
            """, [ids[0], ids[2]])
        let refused = try fixture.cli(["stream", "secret-key", "rotate", "--from", old, "--to", new])
        #expect(refused.exitCode == 1 && refused.output.contains("destination \(ids[2])") && refused.output.contains("nothing was changed"),
                "\(refused.output)")
        #expect(try sealedUnder() == [oldID, oldID, oldID])
        try fixture.owner.query("UPDATE stream_destination SET secret_sealed = decode($2, 'hex') WHERE id = $1::uuid", [ids[2], moved])

        // Step 3: every secret moves to the new key, and is the same secret.
        let rotated = try fixture.cli(["stream", "secret-key", "rotate", "--from", old, "--to", new])
        #expect(rotated.exitCode == 0 && rotated.output.contains("sealed 3 destination secret(s) again"), "\(rotated.output)")
        let newID = try #require(try sealedUnder().first)
        #expect(newID != oldID)
        #expect(try sealedUnder() == [newID, newID, newID])
        let again = try fixture.cli(["stream", "secret-key", "rotate", "--from", old, "--to", new])
        #expect(again.exitCode == 0 && again.output.contains("sealed 0 destination secret(s) again"), "\(again.output)")

        // Step 4: the new key alone opens them; the old one alone no longer does.
        let before = receiver.accepted().count
        for id in ids {
            let sent = try test(id, ["--stream-secret-key-file", new])
            #expect(sent.exitCode == 0, "\(sent.output)")
        }
        let sent = receiver.accepted().dropFirst(before)
        #expect(sent.count == 3)
        for (delivery, id) in zip(sent, ids) {
            #expect(Self.isSigned(delivery, with: secrets[id] ?? ""), "destination \(id) still signs with the secret its tenant was given")
        }
        let stale = try test(ids[0], ["--stream-secret-key-file", old])
        #expect(stale.exitCode == 1 && stale.output.contains("sealed under key \(newID), and this process holds key \(oldID)"), "\(stale.output)")
    }
}
