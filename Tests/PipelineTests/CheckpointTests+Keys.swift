import Foundation
import TestSupport
import Testing

/// Key history: a keyring gives each verifier key a window, and a checkpoint holds only if a key
/// valid at its time signed it. `keys history` prints the windows the database saw.
extension CheckpointTests {
    func keyring(_ lines: [String]) throws -> String {
        let path = directory.deletingLastPathComponent().appendingPathComponent("keyring-\(UUID()).pub").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aCheckpointHoldsOnlyUnderAKeyValidWhenItWasSigned() throws {
        let fixture = try PipelineFixture()
        let old = try keyPair("old"), new = try keyPair("new")
        try backfill(fixture, events: 200, seed: 1)
        // The rotation's overlap: both keys sign.
        let signed = try Shell.run(binary, ["checkpoint", "--signing-key-file", old.key, "--signing-key-file", new.key,
                                            "--database-url", fixture.url])
        #expect(signed.exitCode == 0, "\(signed.output)")
        let text = { (path: String) in try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
        let (oldKey, newKey) = (try text(old.pub), try text(new.pub))
        let formatter = ISO8601DateFormatter()
        let yesterday = formatter.string(from: Date().addingTimeInterval(-86_400))
        let tomorrow = formatter.string(from: Date().addingTimeInterval(86_400))

        let rotated = try verify(fixture, ["--public-key-file", try keyring(["# retired yesterday", "\(oldKey) until=\(yesterday)",
                                                                               "\(newKey) from=\(yesterday)"])])
        #expect(rotated.exitCode == 0, "the new key vouches: \(rotated.output)")
        let retired = try verify(fixture, ["--public-key-file", try keyring(["\(oldKey) until=\(yesterday)"])])
        #expect(retired.exitCode == 1, "\(retired.output)")
        #expect(retired.output.contains("bad signature: audit_checkpoint") && retired.output.contains("by a key not valid then"),
                "\(retired.output)")
        let early = try verify(fixture, ["--public-key-file", try keyring(["\(newKey) from=\(tomorrow)"])])
        #expect(early.exitCode == 1 && early.output.contains("not valid then"), "\(early.output)")
        let malformed = try verify(fixture, ["--public-key-file", try keyring(["\(newKey) until=soon"])])
        #expect(malformed.exitCode != 0 && malformed.output.contains("line 1: until=soon"), "\(malformed.output)")

        // The database's history, as keyring lines that verify accepts.
        let history = try Shell.run(binary, ["keys", "history", "--database-url", fixture.url])
        #expect(history.exitCode == 0, "\(history.output)")
        let lines = history.output.split(separator: "\n").map(String.init).filter { $0.contains(" from=") }
        #expect(lines.count == 2 && lines.allSatisfy { $0.contains(" until=") }, "\(history.output)")
        #expect(Set(lines.map { String($0.prefix(while: { $0 != " " })) }) == [oldKey, newKey], "\(history.output)")
        let fromHistory = try verify(fixture, ["--public-key-file", try keyring(lines)])
        #expect(fromHistory.exitCode == 0, "\(fromHistory.output)")
    }
}

/// The log's stored tree (migration 0022): every round stores the nodes it completes, and a log
/// whose nodes are missing (begun before 0022) gets them back from its leaves, checked against
/// the last checkpoint.
extension CheckpointTests {
    @Test func theIntegratorStoresTheTreeAndRefillsItFromTheLeaves() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("nodes")
        try backfill(fixture, events: 300, seed: 1)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        try backfill(fixture, events: 300, seed: 2)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        let size = try fixture.count("SELECT count(*) FROM audit_log_leaf")
        let perfectSubtrees = 2 * size - size.nonzeroBitCount
        #expect(try fixture.count("SELECT count(*) FROM audit_log_node") == perfectSubtrees)
        let root = try fixture.connection.execute("SELECT encode(hash, 'hex') FROM audit_log_node ORDER BY level DESC LIMIT 1").scalar

        _ = try fixture.connection.execute("DELETE FROM audit_log_node")
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        #expect(try fixture.count("SELECT count(*) FROM audit_log_node") == perfectSubtrees)
        #expect(try fixture.connection.execute("SELECT encode(hash, 'hex') FROM audit_log_node ORDER BY level DESC LIMIT 1").scalar == root)

        // Leaves that no longer give the signed tree are not built upon.
        _ = try fixture.connection.execute("""
            DELETE FROM audit_log_node; UPDATE audit_batch SET digest = sha256(digest) WHERE log_index = 0
            """)
        let refused = try checkpoint(fixture, pair.key)
        #expect(refused.exitCode != 0 && refused.output.contains("do not give its last checkpoint's tree"), "\(refused.output)")
    }

    @Test func verifyFindsAStoredTreeNodeChangedAndPassesOnceTheNodesAreRebuilt() throws {
        let fixture = try PipelineFixture()
        let pair = try keyPair("node-tamper")
        try backfill(fixture, events: 300, seed: 3)
        #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        let arguments = ["--public-key-file", pair.pub]
        #expect(try verify(fixture, arguments).exitCode == 0)

        for tampering in ["UPDATE audit_log_node SET hash = sha256(hash) WHERE level = 1 AND index = 0",
                          "UPDATE audit_log_node SET hash = sha256(hash) WHERE level = 0 AND index = 1",
                          "INSERT INTO audit_log_node VALUES (0, 1000000, sha256('x'))"] {
            _ = try fixture.connection.execute(tampering)
            let found = try verify(fixture, arguments)
            #expect(found.exitCode == 1 && found.output.contains("log node changed"), "\(tampering): \(found.output)")
            // The remedy verify names: the integrator stores the nodes again from the log.
            _ = try fixture.connection.execute("DELETE FROM audit_log_node")
            #expect(try checkpoint(fixture, pair.key).exitCode == 0)
        }
        let rebuilt = try verify(fixture, arguments)
        #expect(rebuilt.exitCode == 0, "\(rebuilt.output)")
    }
}
