import AuditRead
import Foundation
import Postgres
import TestSupport
import Testing

/// Events written as JSON by audit-ingest (search pages and NDJSON export) read back as the
/// values stored, whatever characters they hold.
@Suite(.serialized, .timeLimit(.minutes(2))) struct EventJSONTests {
    @Test func awkwardTextSurvivesSearchAndExport() throws {
        let fixture = try ReadFixture()
        let action = "a,\"b\"\\c\n\td é ✓"
        let agent = "x\u{1}y\u{1f},\"z\"\r\n"
        let metadata = #"{"k": "v \"q\" \\ , \n", "n": [1, 2.5, null, true], "ü": {}}"#
        let event = ReadFixture.Event(action: action, resourceType: "", resourceID: nil, timestamp: "2026-05-05T05:05:05.5Z",
                                      metadata: metadata)
        try fixture.insert([event])
        try fixture.owner.query("UPDATE audit_log SET user_agent = $1", [agent])
        let connection = try PostgresConnection(fixture.url)
        let signer = try CursorSigner.load(on: connection)
        let search = try EventSearch(tenantID: ReadFixture.tenantA, parameters: [:], signer: signer)
        let page = try ReaderSession.run(tenantID: ReadFixture.tenantA, on: connection) { try search.page(on: $0, signer: signer) }
        var exported: [UInt8] = []
        let export = try EventExport(tenantID: ReadFixture.tenantA, parameters: ["format": "ndjson"])
        try ReaderSession.run(tenantID: ReadFixture.tenantA, on: connection) { try export.run(on: $0) { exported += $0 } }
        let lines = String(decoding: exported, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines.count == 1)
        let expectedMetadata = try JSONSerialization.jsonObject(with: Data(metadata.utf8)) as! NSDictionary
        for json in [try #require(page.events.first), try #require(lines.first)] {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(json)")
            #expect(object["action"] as? String == action)
            #expect(object["user_agent"] as? String == agent)
            #expect(object["resource_type"] as? String == "")
            #expect(object["resource_id"] is NSNull)
            #expect(object["timestamp"] as? String == "2026-05-05T05:05:05.500000Z")
            #expect((object["metadata"] as? NSDictionary) == expectedMetadata)
            #expect(Array(object.keys).count == 12)
        }
        #expect(page.events.first == lines.first, "search and export write an event alike")
    }
}
