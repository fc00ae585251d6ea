import AuditCore
import Testing

/// Redacting jsonb's printed form gives jsonb's printed form: members dropped cleanly, values
/// replaced whole, everything else byte for byte, paths through arrays and nested objects.
@Suite struct JSONRedactorTests {
    let redactor = JSONRedactor()
    let printer = JSONBText(maxBytes: 4096)

    func redacted(_ json: String, _ rules: [(String, RedactionAction)]) throws -> String {
        let parsed = try rules.map { (field: try RedactionField(parsing: "custom_metadata." + $0.0), action: $0.1) }
        let paths = RedactionRules(parsed).metadata
        var json = json
        return try json.withUTF8 { bytes in
            let canonical = try printer.canonical(UnsafeRawBufferPointer(bytes))
            return try redactor.redact(canonical, paths: paths, hash: { bytes, _ in "h(\(String(decoding: bytes, as: UTF8.self)))" }) {
                String(decoding: $0, as: UTF8.self)
            }
        }
    }

    @Test(arguments: [
        (#"{"a":1,"b":2,"c":3}"#, [("b", RedactionAction.drop)], #"{"a": 1, "c": 3}"#),
        (#"{"a":1,"b":2}"#, [("a", .drop), ("b", .drop)], #"{}"#),
        (#"{"a":1,"b":2}"#, [("a", .drop)], #"{"b": 2}"#),                                    // the first member goes
        (#"{"a":{"x":[1,2],"y":"k"}}"#, [("a", .mask)], #"{"a": "[masked]"}"#),               // a whole value
        (#"{"a":[{"t":1,"u":2},{"u":3},"s",[{"t":4}]]}"#, [("a.t", .drop)], #"{"a": [{"u": 2}, {"u": 3}, "s", [{}]]}"#),
        (#"{"k\n":1,"a":{"b":{"c":2,"d":3}}}"#, [("a.b.c", .drop), ("k\n", .drop)], #"{"a": {"b": {"d": 3}}}"#),
        (#"{"a":1}"#, [("missing.path", .drop)], #"{"a": 1}"#),
    ] as [(String, [(String, RedactionAction)], String)])
    func redactsOnlyWhatTheRulesName(_ input: String, _ rules: [(String, RedactionAction)], _ expected: String) throws {
        let output = try redacted(input, rules)
        #expect(output == expected, "\(output)")
    }

    @Test func anHMACHashesAStringAsItsTextAndAnythingElseAsJSONBPrintsIt() throws {
        let paths = RedactionRules(try ["s", "n", "o"].map { (field: try RedactionField(parsing: "custom_metadata." + $0), action: .hmac) }).metadata
        var hashed: [String] = []
        var json = #"{"s":"\u00e9\n","n":1.50,"o":{"b":true}}"#
        let output = try json.withUTF8 { bytes in
            try redactor.redact(try printer.canonical(UnsafeRawBufferPointer(bytes)), paths: paths, hash: { _, _ in "H" }) { _ in () }
            return try redactor.redact(try printer.canonical(UnsafeRawBufferPointer(bytes)), paths: paths,
                                       hash: { bytes, isString in
                hashed.append((isString ? "s:" : "") + String(decoding: bytes, as: UTF8.self))
                return "H\(hashed.count)"
            }) {
                String(decoding: $0, as: UTF8.self)
            }
        }
        #expect(hashed == ["1.50", #"{"b": true}"#, "s:é\n"])
        #expect(output == #"{"n": "H1", "o": "H2", "s": "H3"}"#)
    }

    @Test func aRuleOnAnEnclosingValueWinsOverOnesBelowIt() throws {
        #expect(try redacted(#"{"a":{"b":1,"c":2}}"#, [("a.b", .mask), ("a", .drop)]) == "{}")
        #expect(try redacted(#"{"a":{"b":1,"c":2}}"#, [("a", .drop), ("a.b", .mask)]) == "{}")
    }

    @Test func fieldsAreNamedAsStored() throws {
        #expect(try RedactionField(parsing: "ip_address") == .ipAddress)
        #expect(try RedactionField(parsing: "custom_metadata.a.b") == .metadata(["a", "b"]))
        #expect(throws: RedactionField.Invalid.self) { try RedactionField(parsing: "metadata.a") }
        #expect(throws: RedactionField.Invalid.self) { try RedactionField(parsing: "custom_metadata.a..b") }
        #expect(RedactionField.ipAddress.refusal(of: .hmac) != nil && RedactionField.userAgent.refusal(of: .hmac) == nil)
    }
}
