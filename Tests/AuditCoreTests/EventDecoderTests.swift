@testable import AuditCore
import Foundation
import Testing

@Suite struct EventDecoderTests {
    /// 2026-01-01T00:00:00Z: "now" for the plausibility window.
    static let now: Int64 = 1_767_225_600_000_000
    let decoder = EventDecoder(configuration: DecoderConfiguration(fixedNow: EventDecoderTests.now))

    static let valid = #"""
        {"id":"6f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8e90","tenant_id":"0E2F7C6A-6A4B-4C1E-9B7A-1234567890AB",
         "user_id":null,"action":"user.login","resource_type":"session","resource_id":"s-1","severity":"warning",
         "timestamp":"2025-06-30T23:30:00.1234567+02:00","ip_address":"2001:db8::1","user_agent":"curl/8",
         "metadata":{"k":[1,2.5e3,{"deep":"\u00e9"}],"ok":true},"unknown":{"ignored":[1,2,3]}}
        """#

    func decode(_ text: String) -> Result<AuditEvent, Rejection> {
        decoder.decode(Array(text.utf8))
    }

    func reason(_ text: String) -> String? {
        if case .failure(let rejection) = decode(text) { return rejection.reason }
        return nil
    }

    /// `valid` with one field replaced (value given as raw JSON) or removed (nil).
    func with(_ field: String, _ json: String?) -> String {
        var object = [
            "id": #""6f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8e90""#, "tenant_id": #""0e2f7c6a-6a4b-4c1e-9b7a-1234567890ab""#,
            "action": #""user.login""#, "severity": #""INFO""#, "timestamp": #""2025-06-30T12:00:00Z""#,
        ]
        object[field] = json
        return "{" + object.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
    }

    /// A UUID prints in the canonical lower-case form it parses from, leading zeros included
    /// (the flush sends tenant ids to PostgreSQL in this form).
    @Test(arguments: ["00000000-0000-0000-0000-000000000000", "0e2f7c6a-6a4b-4c1e-9b7a-1234567890ab",
                      "ffffffff-ffff-ffff-ffff-ffffffffffff", "00a0000b-000c-0d00-e000-00000000000f"])
    func uuidDescriptionRoundTrips(_ text: String) throws {
        let value = try #require(UUIDValue(text))
        #expect(value.description == text)
        #expect(UUIDValue(text.uppercased())?.description == text)
    }

    /// The eight-digits-at-a-time parser agrees with Foundation's UUID on strings made of hex
    /// digits and their neighbours ('/', ':', '@', 'G', '`', 'g', a control and a non-ASCII byte).
    @Test func uuidParsingAgreesWithFoundation() {
        let alphabet = Array("0123456789abcdefABCDEF/:@G`g".utf8) + [0x10, 0xC3]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20_000 {
            var bytes = Array("6f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8e90".utf8)
            // Mostly valid digits, so that valid UUIDs are checked too; a few bytes replaced.
            for _ in 0..<(round % 3) {
                bytes[Int.random(in: 0..<36, using: &generator)] = alphabet.randomElement(using: &generator)!
            }
            let ours = bytes.withUnsafeBytes { UUIDValue(parsing: $0) }
            let text = String(decoding: bytes, as: UTF8.self)
            let foundation = bytes.allSatisfy({ $0 < 0x80 }) ? UUID(uuidString: text) : nil
            #expect(ours?.description == foundation?.uuidString.lowercased(), "\(text)")
            if (ours == nil) != (foundation == nil) { return }
        }
    }

    @Test func decodesAValidEvent() throws {
        let event = try decode(Self.valid).get()
        #expect(event.id.description == "6f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8e90")
        #expect(event.tenantID.description == "0e2f7c6a-6a4b-4c1e-9b7a-1234567890ab")
        #expect(event.userID == nil)
        #expect(String(decoding: event.action, as: UTF8.self) == "user.login")
        #expect(String(decoding: event.resourceType!, as: UTF8.self) == "session")
        #expect(event.severity == .warning)
        // 23:30:00.1234567+02:00 is 21:30:00.123457 UTC (rounded to microseconds).
        #expect(event.timestamp == 1_751_319_000_123_457)
        #expect(event.month == Month(year: 2025, month: 6))
        #expect(event.ipAddress == .v6(high: 0x2001_0db8_0000_0000, low: 1))
        #expect(String(decoding: event.metadata!, as: UTF8.self) == #"{"k":[1,2.5e3,{"deep":"\u00e9"}],"ok":true}"#)
    }

    @Test func unescapesText() throws {
        let event = try decode(with("action", #""a\"b\\c\/d\n\u00e9\ud83d\ude00""#)).get()
        #expect(String(decoding: event.action, as: UTF8.self) == "a\"b\\c/d\né😀")
    }

    @Test func timestampOffsetsAndForms() throws {
        #expect(try decode(with("timestamp", #""2025-06-30T12:00:00-08:00""#)).get().timestamp == 1_751_313_600_000_000)
        #expect(try decode(with("timestamp", #""2025-06-30 20:00:00z""#)).get().timestamp == 1_751_313_600_000_000)
        #expect(try decode(with("timestamp", #""2024-02-29T00:00:00.5+00:00""#)).get().timestamp == 1_709_164_800_500_000)
    }

    @Test func ipv4() throws {
        #expect(try decode(with("ip_address", #""192.0.2.1""#)).get().ipAddress == .v4(0xC000_0201))
    }

    @Test(arguments: [
        ("{", "invalid JSON"),
        (#"{"id":}"#, "invalid JSON"),
        (#"{"a":1} x"#, "invalid JSON"),
        (#"{"a":"\x"}"#, "invalid JSON"),
        (#"{"a":"\ud800"}"#, "invalid JSON"),
        (#"{"a":01}"#, "invalid JSON"),
        (#"{"a":1e99999}"#, "invalid JSON"),
        ("[1,2]", "not an object"),
        ("\"text\"", "not an object"),
        ("   ", "empty message"),
        ("", "empty message"),
    ])
    func malformedMessages(text: String, expected: String) {
        #expect(reason(text) == expected)
    }

    @Test func invalidUTF8() {
        let bytes: [UInt8] = Array(#"{"action":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        if case .failure(let rejection) = decoder.decode(bytes) {
            #expect(rejection.reason == "invalid UTF-8")
        } else {
            Issue.record("accepted invalid UTF-8")
        }
        let surrogate: [UInt8] = Array(#"{"a":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8)
        if case .failure(let rejection) = decoder.decode(surrogate) { #expect(rejection.reason == "invalid UTF-8") }
    }

    /// A bad byte is found wherever it is in a long ASCII run (read 32 and 8 bytes at a time).
    @Test func invalidUTF8AnywhereInALongMessage() {
        for position in 0..<100 {
            let text = Array(repeating: UInt8(ascii: "a"), count: position) + [0xFF] + Array(repeating: UInt8(ascii: "a"), count: 100 - position)
            let bytes = Array(#"{"action":""#.utf8) + text + Array(#""}"#.utf8)
            guard case .failure(let rejection) = decoder.decode(bytes) else {
                Issue.record("accepted 0xFF at position \(position)")
                continue
            }
            #expect(rejection.reason == "invalid UTF-8", "0xFF at position \(position)")
        }
        // Valid at every length: the fast paths stop at the end of the message, here followed
        // by a byte that is not UTF-8.
        for length in 0..<100 {
            let bytes = Array(#"{"action":""#.utf8) + Array(repeating: UInt8(ascii: "a"), count: length) + Array(#""}"#.utf8)
            let result = (bytes + [0xFF]).withUnsafeBytes { decoder.decode(UnsafeRawBufferPointer(rebasing: $0.prefix(bytes.count))) }
            if case .failure(let rejection) = result {
                #expect(rejection.reason != "invalid UTF-8", "valid at \(bytes.count) bytes")
            }
        }
    }

    /// A string is read to its end, and an escape or a control character is found, at every
    /// length and position: the scan reads 16 bytes at a time (x86-64), then 8, then one, and
    /// `user_agent` is the last field, so its string also ends near the message's end.
    @Test func stringsAreReadToTheirEndAtEveryLengthAndPosition() {
        func userAgent(_ json: String) -> [UInt8]? {
            guard case .success(let event) = decode(with("user_agent", json)) else { return nil }
            return event.userAgent.map { Array($0) }
        }
        for length in 1..<70 {
            for position in 0..<length {
                let before = String(repeating: "a", count: position), after = String(repeating: "b", count: length - position - 1)
                #expect(userAgent("\"\(before)\\\"\(after)\"") == Array("\(before)\"\(after)".utf8), "escaped quote at \(position) of \(length)")
                for plain in ["é", " ", "\u{7F}"] {
                    #expect(userAgent("\"\(before)\(plain)\(after)\"") == Array("\(before)\(plain)\(after)".utf8), "\(plain.utf8.first!) at \(position) of \(length)")
                }
                for control in ["\u{01}", "\u{1F}"] {
                    #expect(reason(with("user_agent", "\"\(before)\(control)\(after)\"")) == "invalid JSON", "control at \(position) of \(length)")
                }
            }
            let plain = String(repeating: "c", count: length)
            #expect(userAgent("\"\(plain)\"") == Array(plain.utf8), "\(length) plain bytes")
            #expect(reason(with("user_agent", "\"\(plain)")) == "invalid JSON", "unterminated after \(length) bytes")
        }
    }

    @Test func rawControlCharacterIsInvalidJSON() {
        #expect(reason(with("action", "\"a\u{01}b\"")) == "invalid JSON")
    }

    @Test(arguments: ["id", "tenant_id", "action", "severity", "timestamp"])
    func missingRequiredField(field: String) {
        #expect(reason(with(field, nil)) == "missing field: \(field)")
        #expect(reason(with(field, "null")) == "missing field: \(field)")
    }

    @Test(arguments: ["id", "tenant_id", "user_id", "action", "resource_type", "resource_id", "severity", "timestamp",
                      "ip_address", "user_agent"])
    func mistypedField(field: String) {
        #expect(reason(with(field, "42")) == "wrong type: \(field)")
        #expect(reason(with(field, "{}")) == "wrong type: \(field)")
    }

    @Test(arguments: [
        #""6f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8e9""#, #""6f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8e9g""#,
        #""6f1c3a520d4e4b8a9c3e2f7a1b5d8e90""#, #""{6f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8e9}""#, #""""#,
        // One character just outside each range of hex digits, in each group.
        #""/f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8e90""#, #""6f1c3a5:-0d4e-4b8a-9c3e-2f7a1b5d8e90""#,
        #""6f1c3a52-@d4e-4b8a-9c3e-2f7a1b5d8e90""#, #""6f1c3a52-0d4e-4b8G-9c3e-2f7a1b5d8e90""#,
        #""6f1c3a52-0d4e-4b8a-`c3e-2f7a1b5d8e90""#, #""6f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8e9g""#,
        #""6f1c3a52-0d4e-4b8a-9c3e-2f7a1\u00105d8e90""#, #""6f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8é0""#,
        #""6f1c3a52-0d4e-4b8a-9c3e_2f7a1b5d8e90""#,
    ])
    func malformedUUIDs(value: String) {
        #expect(reason(with("tenant_id", value)) == "invalid uuid: tenant_id")
        #expect(reason(with("user_id", value)) == "invalid uuid: user_id")
    }

    @Test(arguments: [
        #""2025-06-30""#, #""2025-13-01T00:00:00Z""#, #""2025-02-29T00:00:00Z""#, #""2025-06-30T24:00:00Z""#,
        #""2025-06-30T12:00:60Z""#, #""2025-06-30T12:00:00+5""#, #""2025-06-30T12:00:00.Z""#, #""yesterday""#,
        #""2025-06-30T12:00:00Zjunk""#,
    ])
    func malformedTimestamps(value: String) {
        #expect(reason(with("timestamp", value)) == "invalid timestamp: timestamp")
    }

    @Test func timestampWithoutOffset() {
        #expect(reason(with("timestamp", #""2025-06-30T12:00:00""#)) == "timestamp without offset: timestamp")
        #expect(reason(with("timestamp", #""2025-06-30T12:00:00.123""#)) == "timestamp without offset: timestamp")
    }

    @Test func timestampsOutsideThePlausibilityWindow() {
        #expect(reason(with("timestamp", #""1999-12-31T23:59:59Z""#)) == "timestamp outside plausibility window: timestamp")
        #expect(reason(with("timestamp", #""2026-01-02T00:00:01Z""#)) == "timestamp outside plausibility window: timestamp")
        #expect(reason(with("timestamp", #""9999-01-01T00:00:00Z""#)) == "timestamp outside plausibility window: timestamp")
        #expect(reason(with("timestamp", #""2026-01-01T23:59:59Z""#)) == nil)  // inside now + 24 h
        #expect(reason(with("timestamp", #""2000-01-01T00:00:00Z""#)) == nil)
    }

    @Test func unknownSeverity() {
        #expect(reason(with("severity", #""FATAL""#)) == "unknown severity: severity")
        #expect(reason(with("severity", #""""#)) == "unknown severity: severity")
        #expect(reason(with("severity", #""critical""#)) == nil)
    }

    @Test(arguments: ["action", "resource_type", "resource_id", "user_agent"])
    func nulInText(field: String) {
        #expect(reason(with(field, #""a\u0000b""#)) == "NUL character: \(field)")
    }

    @Test func nulAnywhereInMetadata() {
        #expect(reason(with("metadata", #"{"a":{"b":["x\u0000"]}}"#)) == "NUL character: metadata")
        #expect(reason(with("metadata", #"{"k\u0000":1}"#)) == "NUL character: metadata")
        #expect(reason(with("unknown", #""\u0000""#)) == nil)  // ignored fields may hold anything valid
    }

    @Test(arguments: [#""256.1.1.1""#, #""1.2.3""#, #""10.0.0.1/24""#, #""fe80::1%eth0""#, #""::g""#, #""localhost""#])
    func malformedIPAddresses(value: String) {
        #expect(reason(with("ip_address", value)) == "invalid ip_address: ip_address")
    }

    /// IPv4 addresses are parsed without inet_pton but must be read exactly as it reads them:
    /// the same verdict and the same address for random text of digits and dots (and a few
    /// other bytes), and for the edge cases.
    /// `text` with, three times in four, one byte changed to one of `alphabet`, one added or one dropped.
    private static func oftenMistyped(_ text: String, from alphabet: [UInt8], using generator: inout some RandomNumberGenerator) -> String {
        var bytes = Array(text.utf8)
        let position = Int.random(in: 0..<bytes.count, using: &generator)
        switch Int.random(in: 0..<4, using: &generator) {
        case 0: bytes[position] = alphabet.randomElement(using: &generator)!
        case 1: bytes.insert(alphabet.randomElement(using: &generator)!, at: position)
        case 2: bytes.remove(at: position)
        default: break
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func ipv4IsReadAsInetPtonReadsIt() {
        let alphabet = Array("0123456789.".utf8) + Array("0.1.5x ".utf8)
        var generator = SystemRandomNumberGenerator()
        var samples = ["0.0.0.0", "255.255.255.255", "256.0.0.1", "01.2.3.4", "1.2.3.04", "1.02.3.4", "0.00.1.2",
                       "1..2.3", ".1.2.3", "1.2.3.4.", "1.2.3.4.5", "1.2.3", "999.1.1.1", "1.2.3.255", "1.2.3.256",
                       "00.0.0.0", "1.2.3.4 ", "12.34.56.78"]
        for _ in 0..<20_000 {
            // Four parts of one to three digits, then often one byte changed, added or dropped.
            let text = (0..<4).map { _ in String(Int.random(in: 0...999, using: &generator)).prefix(Int.random(in: 1...3, using: &generator)) }
                .joined(separator: ".")
            samples.append(Self.oftenMistyped(text, from: alphabet, using: &generator))
        }
        var valid = 0
        for sample in samples {
            var expected = in_addr()
            let reference: UInt32? = inet_pton(AF_INET, sample, &expected) == 1 ? UInt32(bigEndian: expected.s_addr) : nil
            let parsed = Array(sample.utf8).withUnsafeBytes { IPAddress(parsing: $0) }
            #expect(parsed == reference.map { .v4($0) }, "\(sample)")
            if reference != nil { valid += 1 }
        }
        #expect(valid > 1000 && valid < samples.count - 1000, "the samples hold valid and invalid addresses")
    }

    /// Our IPv6 parser against glibc's inet_pton: every form (full, `::` anywhere, a dotted quad
    /// at the end), then often one character changed, added or dropped.
    @Test func ipv6IsReadAsInetPtonReadsIt() {
        let alphabet = Array("0123456789abcdefABCDEF:.".utf8) + Array("::g 0\u{0}".utf8)
        var generator = SystemRandomNumberGenerator()
        var samples = ["::", "::1", "1::", "1::2", ":", ":1", "1:", ":::", "1:::2", "::1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::",
                       "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7", "12345::", "::ffff:1.2.3.4",
                       "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1:2:3:4:5::1.2.3.4", "::ffff:01.2.3.4",
                       "::ffff:1.2.3", "::1.2.3.4:5", "1.2.3.4::", "fe80::1%eth0", "2001:db8::/32", "2001:DB8:0:0:8:800:200C:417A",
                       "::ffff:a.b.c.d", "::ffff:1234.1.1.1", "1::2:"]
        for _ in 0..<30_000 {
            let groups = Int.random(in: 1...8, using: &generator)
            var parts = (0..<groups).map { _ in String(UInt16.random(in: 0...UInt16.max, using: &generator), radix: 16).prefix(Int.random(in: 1...4, using: &generator)) }.map(String.init)
            if Bool.random(using: &generator), groups <= 6 {
                parts.append((0..<4).map { _ in String(Int.random(in: 0...255, using: &generator)) }.joined(separator: "."))
            }
            var text = parts.joined(separator: ":")
            if groups < 8 || Bool.random(using: &generator) {
                // `::` somewhere: first, last or between two groups.
                let colons = text.indices.filter { text[$0] == ":" }
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: text = "::" + text
                case 1: text += "::"
                default: if let at = colons.randomElement(using: &generator) { text.insert(":", at: at) } else { text = "::" + text }
                }
            }
            samples.append(Self.oftenMistyped(text, from: alphabet, using: &generator))
        }
        var valid = 0
        for sample in samples where sample.utf8.count >= 2 && sample.utf8.count <= 45 && sample.utf8.contains(0x3A) {
            var expected = in6_addr()
            // inet_pton reads a C string: a NUL ends it, so the reference for a text holding one is "invalid".
            let reference: IPAddress? = !sample.utf8.contains(0) && inet_pton(AF_INET6, sample, &expected) == 1
                ? { let (high, low) = unsafeBitCast(expected, to: (UInt64, UInt64).self)
                    return .v6(high: UInt64(bigEndian: high), low: UInt64(bigEndian: low)) }()
                : nil
            let parsed = Array(sample.utf8).withUnsafeBytes { IPAddress(parsing: $0) }
            #expect(parsed == reference, "\(sample)")
            if reference != nil { valid += 1 }
        }
        #expect(valid > 3000 && valid < samples.count - 3000, "the samples hold valid and invalid addresses")
    }

    @Test(arguments: ["[1]", #""text""#, "3", "true"])
    func metadataMustBeAnObject(value: String) {
        #expect(reason(with("metadata", value)) == "metadata not an object: metadata")
    }

    @Test func lengthLimitsCountCharacters() {
        let hundred = String(repeating: "é", count: 100)  // 200 bytes, 100 characters
        #expect(reason(with("action", "\"\(hundred)\"")) == nil)
        #expect(reason(with("action", "\"\(hundred)x\"")) == "field too long: action")
        #expect(reason(with("action", #""""#)) == "empty field: action")
        #expect(reason(with("resource_type", "\"\(String(repeating: "r", count: 101))\"")) == "field too long: resource_type")
        #expect(reason(with("resource_id", "\"\(String(repeating: "r", count: 256))\"")) == "field too long: resource_id")
        #expect(reason(with("user_agent", "\"\(String(repeating: "u", count: 1025))\"")) == "field too long: user_agent")
        #expect(reason(with("user_agent", "\"\(String(repeating: "u", count: 1024))\"")) == nil)
    }

    @Test func sizeLimits() {
        let small = EventDecoder(configuration: DecoderConfiguration(maxEventBytes: 300, maxMetadataBytes: 20, fixedNow: Self.now))
        let big = with("metadata", #"{"a":"\#(String(repeating: "x", count: 300))"}"#)
        if case .failure(let rejection) = small.decode(Array(big.utf8)) { #expect(rejection.reason == "event too large") }
        else { Issue.record("accepted an oversized event") }
        let metadata = with("metadata", #"{"a":"0123456789012345678901"}"#)
        if case .failure(let rejection) = small.decode(Array(metadata.utf8)) { #expect(rejection.reason == "event too large: metadata") }
        else { Issue.record("accepted oversized metadata") }
        let deep = with("metadata", String(repeating: #"{"a":"#, count: 70) + "1" + String(repeating: "}", count: 70))
        #expect(reason(deep) == "nesting too deep")
        let deepUnknown = with("extra", String(repeating: "[", count: 70) + String(repeating: "]", count: 70))
        #expect(reason(deepUnknown) == "nesting too deep")
    }

    @Test func unknownFieldsAreIgnoredButMustBeValidJSON() {
        #expect(reason(with("extra", #"{"x":[true,false,null,-0.5e-3,"s"]}"#)) == nil)
        #expect(reason(with("extra", "tru")) == "invalid JSON")
    }

    @Test func monthsAndDays() {
        #expect(Month(unixDay: 0) == Month(year: 1970, month: 1))
        #expect(Month(unixDay: 19_782) == Month(year: 2024, month: 2))  // 2024-02-29
        #expect(Month(year: 2024, month: 12).next == Month(year: 2025, month: 1))
        #expect(Month(year: 2024, month: 1).partitionSuffix == "2024_01")
        #expect(Month(year: 2024, month: 3).firstUnixDay == 19_783)
    }

    // MARK: Holes an adversary would use (issue 12)

    @Test func aNULInsideTheIPAddressIsRejectedNotCut() {
        #expect(reason(with("ip_address", #""10.1.2.3\u0000garbage""#)) == "NUL character: ip_address")
        #expect(reason(with("ip_address", #""10.1.2.3\u0000""#)) == "NUL character: ip_address")
    }

    @Test(arguments: ["id", "tenant_id", "user_id", "action", "resource_type", "resource_id", "severity", "timestamp",
                      "ip_address", "user_agent", "metadata"])
    func aContractFieldGivenTwiceIsRejected(field: String) {
        let values = ["id": #""6f1c3a52-0d4e-4b8a-9c3e-2f7a1b5d8e90""#, "tenant_id": #""0e2f7c6a-6a4b-4c1e-9b7a-1234567890ab""#,
                      "user_id": "null", "action": #""a""#, "resource_type": "null", "resource_id": "null",
                      "severity": #""INFO""#, "timestamp": #""2025-06-30T12:00:00Z""#, "ip_address": "null",
                      "user_agent": "null", "metadata": "{}"]
        let once = with(field, values[field]!)
        let twice = String(once.dropLast()) + ",\"\(field)\":\(values[field]!)}"
        #expect(reason(once) == nil)
        #expect(reason(twice) == "duplicate field: \(field)")
        // Unknown fields may repeat: they are ignored.
        #expect(reason(String(once.dropLast()) + #","note":1,"note":2}"#) == nil)
    }

    @Test func aRejectionCarriesTheTenantWhenItParses() {
        let tenant = "0e2f7c6a-6a4b-4c1e-9b7a-1234567890ab"
        if case .failure(let rejection) = decode(with("severity", #""LOUD""#)) {
            #expect(rejection.tenantID?.description == tenant)
        } else { Issue.record("accepted an unknown severity") }
        if case .failure(let rejection) = decode(with("tenant_id", #""nope""#)) {
            #expect(rejection.tenantID == nil)
        } else { Issue.record("accepted a bad tenant id") }
    }

    /// RFC 3339 allows a leap second; it is read as PostgreSQL reads it (the next minute's first).
    @Test func aLeapSecondIsTheNextMinutesFirstSecond() throws {
        let leap = try decode(with("timestamp", #""2025-06-30T23:59:60Z""#)).get()
        let next = try decode(with("timestamp", #""2025-07-01T00:00:00Z""#)).get()
        #expect(leap.timestamp == next.timestamp)
        #expect(reason(with("timestamp", #""2025-06-30T23:59:60.5Z""#)) == "invalid timestamp: timestamp")
        #expect(reason(with("timestamp", #""2025-06-30T23:59:61Z""#)) == "invalid timestamp: timestamp")
        #expect(reason(with("timestamp", #""2025-07-01T01:59:60+02:00""#)) == nil)  // 23:59:60 UTC
        #expect(reason(with("timestamp", #""2025-06-30T12:00:60Z""#)) == "invalid timestamp: timestamp")
    }
}
