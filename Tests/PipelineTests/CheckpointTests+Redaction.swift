import Foundation
import Postgres
import SampleData
import TestSupport
import Testing

/// Redaction at write time (migration 0030): what a rule names is dropped, masked or hashed
/// before the row is stored, for its tenant only (or every tenant), in every month; dead letters
/// keep no more than rows do; a hashed value is found again by its HMAC; and the rows stay what
/// the log sealed.
extension CheckpointTests {
    /// A native event line of `tenant` stamped `daysAgo` days before now, carrying values rules hide.
    static func revealingEvent(tenant: String, daysAgo: Int, card: String, severity: String = "INFO") -> String {
        let time = Date().addingTimeInterval(-Double(daysAgo) * 86_400 - 3_600)
        let stamp = ISO8601DateFormatter().string(from: time)
        return #"""
            {"id":"\#(UUID().uuidString.lowercased())","tenant_id":"\#(tenant)","action":"card.charge","severity":"\#(severity)",\#
            "timestamp":"\#(stamp)","ip_address":"203.0.113.77","user_agent":"agent/1.0 (host: build-7)",\#
            "metadata":{"secret":"s3cr3t-\#(card)","card":{"number":"\#(card)","brand":"visa"},\#
            "sessions":[{"token":"tok-\#(card)","n":1},{"token":"tok2-\#(card)"},7],"amount":1.50}}
            """#
    }

    func redaction(_ fixture: PipelineFixture, _ arguments: [String]) throws -> Shell.Result {
        try Shell.run(binary, ["tenant", "redaction"] + arguments + ["--database-url", fixture.url])
    }

    /// `tenant redaction hash`, given the value on standard input.
    func redactionHash(_ value: String, tenant: String, keyFile: String) throws -> Shell.Result {
        try Shell.run(binary, ["tenant", "redaction", "hash", "--tenant", tenant, "--redaction-key-file", keyFile], input: Data((value + "\n").utf8))
    }

    @Test func redactionRulesHideTheirFieldsBeforeStorageForTheirTenantsOnlyAndHashedValuesAreFoundAgain() throws {
        let fixture = try PipelineFixture()
        let tenants = SampleEvents.tenantIDs(count: 3, seed: 42)
        let (hashed, dropsIP, plain) = (tenants[0], tenants[1], tenants[2])
        let keyFile = directory.deletingLastPathComponent().appendingPathComponent("redaction-\(UUID()).key").path
        let generated = try Shell.run(binary, ["tenant", "redaction", "key", "generate", "--out", keyFile])
        #expect(generated.exitCode == 0 && generated.output.contains("redaction key"), "\(generated.output)")

        // An hmac rule needs the key; ip_address cannot hold an HMAC; a path must name keys.
        let keyless = try redaction(fixture, ["set", "--tenant", hashed, "--field", "custom_metadata.card.number", "--action", "hmac"])
        #expect(keyless.exitCode == 64 && keyless.output.contains("needs the redaction key"), "\(keyless.output)")
        let inet = try redaction(fixture, ["set", "--tenant", hashed, "--field", "ip_address", "--action", "hmac",
                                           "--redaction-key-file", keyFile])
        #expect(inet.exitCode == 64 && inet.output.contains("use drop or mask"), "\(inet.output)")
        let badPath = try redaction(fixture, ["set", "--all-tenants", "--field", "custom_metadata..x", "--action", "drop"])
        #expect(badPath.exitCode == 64 && badPath.output.contains("non-empty"), "\(badPath.output)")

        for rule in [["--all-tenants", "--field", "custom_metadata.secret", "--action", "drop"],
                     ["--tenant", hashed, "--field", "custom_metadata.card.number", "--action", "hmac", "--redaction-key-file", keyFile],
                     ["--tenant", hashed, "--field", "custom_metadata.sessions.token", "--action", "drop"],
                     ["--tenant", hashed, "--field", "user_agent", "--action", "mask"],
                     ["--tenant", hashed, "--field", "ip_address", "--action", "mask"],
                     ["--tenant", dropsIP, "--field", "ip_address", "--action", "drop"]] {
            let set = try redaction(fixture, ["set"] + rule)
            #expect(set.exitCode == 0, "\(rule): \(set.output)")
        }
        let listed = try redaction(fixture, ["list"])
        #expect(listed.exitCode == 0 && listed.output.components(separatedBy: "\"field\"").count == 7, "\(listed.output)")

        // Three months each (the months the tenants share), one dead letter of the hashed
        // tenant's that parses, and a line that is not JSON at all.
        var lines: [String] = []
        for (index, tenant) in tenants.enumerated() {
            for daysAgo in [0, 32, 63] { lines.append(Self.revealingEvent(tenant: tenant, daysAgo: daysAgo, card: "4111-\(index)")) }
        }
        lines.append(Self.revealingEvent(tenant: hashed, daysAgo: 1, card: "4111-0", severity: "LOUD"))
        lines.append("not json, card 4111-0 s3cr3t-4111-0")
        // Rejected before its tenant_id is read: the rules of every tenant apply to what it keeps.
        lines.append(#"{"metadata":{"card":{"number":"4111-0"},"sessions":[{"token":"tok-4111-0"}]},"action":5,"tenant_id":"\#(hashed)"}"#)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("redaction-\(UUID()).ndjson")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)
        let ingest = ["backfill", "--no-progress", "--database-url", fixture.url, file.path]

        let refused = try Shell.run(binary, ingest)
        #expect(refused.exitCode != 0 && refused.output.contains("no redaction key"), "without the key: \(refused.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 0)
        let stored = try Shell.run(binary, ingest + ["--redaction-key-file", keyFile])
        #expect(stored.exitCode == 0, "\(stored.output)")
        #expect(try fixture.count("SELECT count(*) FROM audit_log") == 9)
        #expect(try fixture.count("SELECT count(DISTINCT date_trunc('month', \"timestamp\")) FROM audit_log") == 3)

        func rows(_ tenant: String) throws -> [[String?]] {
            try fixture.connection.execute("""
                SELECT custom_metadata::text, host(ip_address), user_agent FROM audit_log WHERE tenant_id = '\(tenant)'
                """).rows
        }
        let hash = try redactionHash("4111-0", tenant: hashed, keyFile: keyFile)
        let digest = hash.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hash.exitCode == 0 && digest.hasPrefix("hmac-sha256:") && digest.count == 76, "\(hash.output)")
        for row in try rows(hashed) {
            #expect(row[0] == #"{"card": {"brand": "visa", "number": "\#(digest)"}, "amount": 1.50, "sessions": [{"n": 1}, {}, 7]}"#)
            #expect(row[1] == "203.0.113.0" && row[2] == "[masked]", "\(row)")
        }
        for row in try rows(dropsIP) {
            #expect(row[0] == #"{"card": {"brand": "visa", "number": "4111-1"}, "amount": 1.50, "sessions": [{"n": 1, "token": "tok-4111-1"}, {"token": "tok2-4111-1"}, 7]}"#)
            #expect(row[1] == nil && row[2] == "agent/1.0 (host: build-7)", "\(row)")
        }
        for row in try rows(plain) {
            #expect(row[0]?.contains("\"secret\"") == false && row[0]?.contains("4111-2") == true && row[1] == "203.0.113.77", "\(row)")
        }
        // The hash finds the hashed tenant's events, and the same value of another tenant hashes otherwise.
        let found = try Shell.run(binary, ["events", "search", "--format", "ndjson", "--tenant", hashed, "--metadata", #"{"card": {"number": "\#(digest)"}}"#,
                                           "--database-url", fixture.url])
        #expect(found.exitCode == 0 && found.output.components(separatedBy: "\"card.charge\"").count == 4, "\(found.output)")
        let other = try redactionHash("4111-0", tenant: dropsIP, keyFile: keyFile)
        #expect(other.exitCode == 0 && other.output.trimmingCharacters(in: .whitespacesAndNewlines) != digest)

        // Dead letters keep no more than rows: the event redacted, or no payload at all.
        let letters = try fixture.connection.execute(#"SELECT convert_from(raw_payload, 'UTF8'), detail FROM audit_dead_letter ORDER BY "offset""#).rows
        try #require(letters.count == 3, "\(letters)")
        #expect(letters[0][0]?.contains(digest) == true && letters[0][0]?.contains("\"LOUD\"") == true, "\(letters[0])")
        #expect(letters[1][0] == "" && letters[1][1]?.contains("raw_payload withheld") == true, "\(letters[1])")
        #expect(letters[2][0] == #"{"metadata": {"card": {"number": "[masked]"}, "sessions": [{}]}, "action": 5, "tenant_id": "\#(hashed)"}"#,
                "\(letters[2])")
        for secret in ["s3cr3t-4111-0", "tok-4111-0", "agent/1.0", "203.0.113.77", "\"4111-0\""] {
            let leaked = try fixture.connection.query("""
                SELECT (SELECT count(*) FROM audit_log WHERE tenant_id = $2::uuid AND (custom_metadata::text || coalesce(user_agent, '')
                        || coalesce(host(ip_address), '')) LIKE '%' || $1 || '%')
                     + (SELECT count(*) FROM audit_dead_letter WHERE convert_from(raw_payload, 'UTF8') LIKE '%' || $1 || '%')
                """, [secret, hashed]).scalar
            #expect(leaked == "0", "\(secret) is stored")
        }

        // The rows are what the log seals.
        let pair = try keyPair("redaction")
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        let verified = try verify(fixture, ["--checkpoint-dir", directory.path, "--public-key-file", pair.pub])
        #expect(verified.exitCode == 0, "\(verified.output)")

        // A mapped record is kept whole in the metadata: the address and user agent rules reach
        // the fields of the record they were read from.
        let trail = FileManager.default.temporaryDirectory.appendingPathComponent("redaction-\(UUID()).json")
        let eventTime = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-7_200))
        try Data(#"""
            {"Records":[{"eventVersion":"1.08","eventTime":"\#(eventTime)","eventSource":"s3.amazonaws.com","eventName":"GetObject",\#
            "eventID":"\#(UUID().uuidString.lowercased())","sourceIPAddress":"198.51.100.99","userAgent":"ct-agent-secret",\#
            "requestParameters":{"bucketName":"b"}}]}
            """#.utf8).write(to: trail)
        let mapped = try Shell.run(binary, ["backfill", "--no-progress", "--format", "cloudtrail", "--tenant-from", "fixed:\(hashed)",
                                            "--redaction-key-file", keyFile, "--database-url", fixture.url, trail.path])
        #expect(mapped.exitCode == 0, "\(mapped.output)")
        let record = try fixture.connection.execute("""
            SELECT custom_metadata -> 'record' ->> 'sourceIPAddress', custom_metadata -> 'record' ->> 'userAgent', host(ip_address), user_agent
            FROM audit_log WHERE custom_metadata ->> 'source_format' = 'cloudtrail'
            """).rows
        #expect(record.map { $0.map { $0 ?? "-" } } == [["[masked]", "[masked]", "198.51.100.0", "[masked]"]], "\(record)")

        // Every hmac rule hashes under one key: a rule under a second key is refused.
        let otherKey = keyFile + ".other"
        #expect(try Shell.run(binary, ["tenant", "redaction", "key", "generate", "--out", otherKey]).exitCode == 0)
        let second = try redaction(fixture, ["set", "--tenant", dropsIP, "--field", "user_agent", "--action", "hmac",
                                             "--redaction-key-file", otherKey])
        #expect(second.exitCode == 64 && second.output.contains("already hash under redaction key"), "\(second.output)")
        let badJSON = try Shell.run(binary, ["tenant", "redaction", "hash", "--json", "--tenant", hashed, "--redaction-key-file", keyFile],
                                    input: Data("4111 1111\n".utf8))
        #expect(badJSON.exitCode == 64 && !badJSON.output.contains("4111"), "the value is not echoed: \(badJSON.output)")

        // Clearing a rule leaves what was stored as stored; set again under another key, the
        // old key no longer runs it.
        let cleared = try redaction(fixture, ["clear", "--tenant", dropsIP, "--field", "ip_address"])
        #expect(cleared.exitCode == 0 && cleared.output.contains("cleared"), "\(cleared.output)")
        #expect(try rows(dropsIP).allSatisfy { $0[1] == nil })
        let rekeyed = try redaction(fixture, ["set", "--tenant", hashed, "--field", "custom_metadata.card.number", "--action", "hmac",
                                              "--redaction-key-file", otherKey])
        #expect(rekeyed.exitCode == 0, "\(rekeyed.output)")
        let mismatched = try Shell.run(binary, ingest + ["--redaction-key-file", keyFile])
        #expect(mismatched.exitCode != 0 && mismatched.output.contains("under redaction key"), "\(mismatched.output)")
    }
}
