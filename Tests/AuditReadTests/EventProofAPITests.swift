import Foundation
import Postgres
import TestSupport
import Testing

/// A tenant's inclusion proof (`GET /v1/tenants/{id}/events/{event_id}/proof`) checked offline by
/// `audit-ingest proof verify` with the log's public key and nothing else; the checkpoint served
/// at `/v1/checkpoint`; a proof altered in any step, or checked with another key, fails.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EventProofAPITests {
    let binary = Shell.executable(named: "audit-ingest")
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("proofs-\(UUID())")

    /// Backfills `count` events per tenant (A and B), an hour apart back from now, so they
    /// span two or three months on any day, and returns tenant A's event ids.
    func backfill(_ fixture: ReadFixture, count: Int, file name: String = "events.ndjson") throws -> [String] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent(name)
        var lines: [String] = [], ids: [String] = []
        let formatter = ISO8601DateFormatter()
        for index in 0..<count {
            for tenant in [ReadFixture.tenantA, ReadFixture.tenantB] {
                let id = UUID().uuidString.lowercased()
                if tenant == ReadFixture.tenantA { ids.append(id) }
                let time = formatter.string(from: Date().addingTimeInterval(-Double(index) * 3600 * 11))
                lines.append(#"{"id":"\#(id)","tenant_id":"\#(tenant)","action":"doc.read","severity":"INFO","timestamp":"\#(time)","ip_address":"2001:db8::\#(index % 9 + 1)","metadata":{"n":\#(index),"b":"é\"x"}}"#)
            }
        }
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        let result = try Shell.run(binary, ["backfill", "--no-progress", "--batch-size", "17", "--database-url", fixture.url, file.path])
        #expect(result.exitCode == 0, "\(result.output)")
        return ids
    }

    func keyPair(_ name: String) throws -> (key: String, pub: String) {
        let prefix = directory.appendingPathComponent("\(name)-\(UUID())").path
        let result = try Shell.run(binary, ["keys", "generate", "--out", prefix])
        #expect(result.exitCode == 0, "\(result.output)")
        return (prefix + ".key", prefix + ".pub")
    }

    func checkProof(_ body: String, publicKey: String) throws -> Shell.Result {
        let file = directory.appendingPathComponent("proof-\(UUID()).json")
        try body.write(to: file, atomically: true, encoding: .utf8)
        return try Shell.run(binary, ["proof", "verify", "--public-key-file", publicKey, file.path])
    }

    @Test func aTenantVerifiesItsEventOfflineAndAnAlteredProofFails() throws {
        let fixture = try ReadFixture(prefix: "proof")
        let ids = try backfill(fixture, count: 60)
        let pair = try keyPair("log"), stranger = try keyPair("stranger")
        let token = try fixture.createToken(tenant: ReadFixture.tenantA)
        let tokenB = try fixture.createToken(tenant: ReadFixture.tenantB)
        let server = try fixture.startServer()
        defer { server.stop() }

        // Not yet in a checkpoint: 404 that says what to wait for.
        let early = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/\(ids[0])/proof", token: token)
        #expect(early.status == 404 && early.body.contains("checkpoint"), "\(early.body)")
        let signed = try fixture.cli(["checkpoint", "--signing-key-file", pair.key])
        #expect(signed.exitCode == 0, "\(signed.output)")

        let published = try server.request("/v1/checkpoint", token: token)
        #expect(published.status == 200, "\(published.body)")
        let batches = try fixture.owner.execute("SELECT count(*) FROM audit_batch").scalar ?? "?"
        #expect(published.json?["tree_size"] as? Int == Int(batches), "\(published.body)")
        let pub = try String(contentsOfFile: pair.pub, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((published.json?["verifier_keys"] as? [[String: Any]])?.first?["key"] as? String == pub, "\(published.body)")
        #expect(try server.request("/v1/checkpoint").status == 401)

        // Every event of A: first, last and one in the middle, across months and batches.
        for id in [ids[0], ids[ids.count / 2], ids[ids.count - 1]] {
            let reply = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/\(id)/proof", token: token)
            #expect(reply.status == 200, "\(reply.body)")
            let checked = try checkProof(reply.body, publicKey: pair.pub)
            #expect(checked.exitCode == 0 && checked.output.contains("holds: event \(id) of tenant \(ReadFixture.tenantA)"), "\(checked.output)")
            #expect(checked.output.contains("doc.read") && checked.output.contains("é"), "\(checked.output)")
            #expect(try checkProof(reply.body, publicKey: stranger.pub).exitCode == 1, "another key vouches for nothing")
        }

        // Each step of a proof altered: the check names what does not hold.
        let reply = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/\(ids[1])/proof?checkpoint=\(batches)", token: token)
        #expect(reply.status == 200, "\(reply.body)")
        var proof = try #require(reply.json)
        let leaf = try #require(Data(base64Encoded: proof["leaf"] as? String ?? ""))
        var changed = [UInt8](leaf)
        changed[changed.count - 3] ^= 0x01  // a byte of the metadata
        proof["leaf"] = Data(changed).base64EncodedString()
        let tampered = try checkProof(String(decoding: try JSONSerialization.data(withJSONObject: proof), as: UTF8.self), publicKey: pair.pub)
        #expect(tampered.exitCode == 1 && tampered.output.contains("does not hold"), "\(tampered.output)")
        for step in ["group", "log"] {
            var altered = try #require(reply.json)
            var part = try #require(altered[step] as? [String: Any])
            part["index"] = (part["index"] as? Int ?? 0) == 0 ? 1 : 0
            altered[step] = part
            let result = try checkProof(String(decoding: try JSONSerialization.data(withJSONObject: altered), as: UTF8.self), publicKey: pair.pub)
            #expect(result.exitCode == 1 && result.output.contains("does not hold"), "\(step): \(result.output)")
        }

        // A tenant proves only its own events: B's token on A's path, and A's path for B's event.
        #expect(try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/\(ids[0])/proof", token: tokenB).status == 403)
        let foreign = try fixture.owner.execute("SELECT id::text FROM audit_log WHERE tenant_id = '\(ReadFixture.tenantB)' LIMIT 1").scalar ?? ""
        let hidden = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/\(foreign)/proof", token: token)
        #expect(hidden.status == 404 && !hidden.body.contains(ReadFixture.tenantB), "\(hidden.body)")
        #expect(try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/not-a-uuid/proof", token: token).status == 400)
        #expect(try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/\(ids[0])/proof?checkpoint=0", token: token).status == 400)

        // A row changed after sealing: no proof is built over it.
        try fixture.owner.execute("UPDATE audit_log SET action = 'doc.deleted' WHERE id = '\(ids[2])'")
        let broken = try server.request("/v1/tenants/\(ReadFixture.tenantA)/events/\(ids[2])/proof", token: token)
        #expect(broken.status == 404 && broken.body.contains("no longer match its seal"), "\(broken.body)")
    }

    /// A checkpoint a tenant kept is extended by the newer one (`proof consistency --held`);
    /// an altered path, or a held checkpoint that is not the proof's first, does not hold.
    @Test func aNewerCheckpointExtendsTheOneATenantKept() throws {
        let fixture = try ReadFixture(prefix: "consistency")
        _ = try backfill(fixture, count: 30)
        let pair = try keyPair("log")
        let token = try fixture.createToken(tenant: ReadFixture.tenantA)
        #expect(try fixture.cli(["checkpoint", "--signing-key-file", pair.key]).exitCode == 0)
        let server = try fixture.startServer()
        defer { server.stop() }
        let kept = try #require(try server.request("/v1/checkpoint", token: token).json)
        let keptSize = try #require(kept["tree_size"] as? Int)
        let keptFile = directory.appendingPathComponent("kept.checkpoint")
        try (kept["note"] as? String ?? "").write(to: keptFile, atomically: true, encoding: .utf8)

        _ = try backfill(fixture, count: 25, file: "more.ndjson")
        #expect(try fixture.cli(["checkpoint", "--signing-key-file", pair.key]).exitCode == 0)
        let reply = try server.request("/v1/checkpoint/consistency?from=\(keptSize)", token: token)
        #expect(reply.status == 200, "\(reply.body)")
        func check(_ body: String, _ extra: [String]) throws -> Shell.Result {
            let file = directory.appendingPathComponent("consistency-\(UUID()).json")
            try body.write(to: file, atomically: true, encoding: .utf8)
            return try Shell.run(binary, ["proof", "consistency", "--public-key-file", pair.pub, file.path] + extra)
        }
        let held = try check(reply.body, ["--held", keptFile.path])
        #expect(held.exitCode == 0 && held.output.contains("extends the log of \(keptSize)"), "\(held.output)")

        var altered = try #require(reply.json)
        var path = try #require(altered["path"] as? [String])
        #expect(!path.isEmpty)
        path[0] = path[path.count - 1] == path[0] ? Data(repeating: 7, count: 32).base64EncodedString() : path[path.count - 1]
        altered["path"] = path
        let broken = try check(String(decoding: try JSONSerialization.data(withJSONObject: altered), as: UTF8.self), [])
        #expect(broken.exitCode == 1 && broken.output.contains("does not extend"), "\(broken.output)")
        let newest = try #require(try server.request("/v1/checkpoint", token: token).json)
        let otherFile = directory.appendingPathComponent("newest.checkpoint")
        try (newest["note"] as? String ?? "").write(to: otherFile, atomically: true, encoding: .utf8)
        let mismatch = try check(reply.body, ["--held", otherFile.path])
        #expect(mismatch.exitCode == 1 && mismatch.output.contains("is not the proof's first"), "\(mismatch.output)")
        #expect(try server.request("/v1/checkpoint/consistency", token: token).status == 400)
        #expect(try server.request("/v1/checkpoint/consistency?from=\(keptSize)").status == 401)
    }
}
