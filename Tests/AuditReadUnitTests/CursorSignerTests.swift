import AuditRead
import Foundation
import Testing

/// Cursors that survive only untouched (HMAC-SHA-256 from swift-crypto).
@Suite struct CursorSignerTests {
    @Test func aCursorDecodesOnlyForItsTenantAndListingAndOnlyUntouched() throws {
        let signer = CursorSigner(key: Array("k".utf8))
        let tenant = "0000000a-0000-4000-8000-000000000000"
        let cursor = EventCursor(listing: .feed, tenantID: tenant, key: ["812", "0000000a-0000-4000-8000-0000000000ff", "2026-01-01T00:00:00.000000Z"])
        let text = signer.encode(cursor)
        #expect(try signer.decode(text, parameter: "after", listing: .feed, tenantID: tenant) == cursor)
        #expect(throws: ReadError.self) { try signer.decode(text, parameter: "after", listing: .feed, tenantID: "0000000b-0000-4000-8000-000000000000") }
        #expect(throws: ReadError.self) { try signer.decode(text, parameter: "cursor", listing: .newestFirst, tenantID: tenant) }
        #expect(throws: ReadError.self) { try CursorSigner(key: Array("other".utf8)).decode(text, parameter: "after", listing: .feed, tenantID: tenant) }
        for index in text.indices where text[index] != "." {
            var altered = text
            altered.replaceSubrange(index...index, with: text[index] == "A" ? "B" : "A")
            #expect(throws: ReadError.self, "\(altered)") { try signer.decode(altered, parameter: "after", listing: .feed, tenantID: tenant) }
        }
    }
}
