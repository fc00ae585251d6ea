import AuditRead
import Digest
import Foundation
import Testing

/// HMAC-SHA-256 against RFC 4231's vectors, and cursors that survive only untouched.
@Suite struct CursorSignerTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func hmacMatchesRFC4231() {
        #expect(Self.hex(HMAC.sha256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // A key longer than the block is hashed first (test case 6).
        #expect(Self.hex(HMAC.sha256(key: [UInt8](repeating: 0xaa, count: 131),
                                     message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        #expect(SHA256.hexDigest(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

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
