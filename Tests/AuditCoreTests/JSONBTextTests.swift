import AuditCore
import Testing

/// The metadata as PostgreSQL 15's jsonb prints it (each expected text was read back from
/// `SELECT $1::jsonb::text` here; VerifyCommandTests checks the same against a live server).
@Suite struct JSONBTextTests {
    let text = JSONBText(maxBytes: 4096)

    func canonical(_ json: String) throws -> String {
        var json = json
        return try json.withUTF8 { String(decoding: try text.canonical(UnsafeRawBufferPointer($0)), as: UTF8.self) }
    }

    @Test(arguments: [
        (#"{"b":1,"a":2}"#, #"{"a": 2, "b": 1}"#),
        (#"{"aa":1,"b":2}"#, #"{"b": 2, "aa": 1}"#),                      // shorter keys first
        (#"{"a":1,"a":2,"a":3}"#, #"{"a": 3}"#),                          // the last duplicate wins
        (#"{ "x" : [ 1 , { } , [ ] ] }"#, #"{"x": [1, {}, []]}"#),
        (#"{"n":[1e3,1.5E-3,-0,-0.0,2.50,0.000123e2,1.50e1,100e-2]}"#, #"{"n": [1000, 0.0015, 0, 0.0, 2.50, 0.0123, 15.0, 1.00]}"#),
        (#"{"s":"\u00e9\/\"\\\t\u0001\ud83d\ude00"}"#, #"{"s": "é/\"\\\t\u0001😀"}"#),
        (#"{"z":{"b":1,"a":{"d":1,"c":2}}}"#, #"{"z": {"a": {"c": 2, "d": 1}, "b": 1}}"#),
    ])
    func printsWhatJSONBPrints(_ input: String, _ expected: String) throws {
        #expect(try canonical(input) == expected)
    }

    @Test func refusesWhatJSONBCannotHoldOrWouldPrintTooLong() {
        #expect(throws: Rejection.self) { try canonical(#"{"n": 1e-16000}"# + String(repeating: " ", count: 1)) }
        #expect(throws: Rejection.self) { try canonical(#"{"n": 1e5000}"#) }  // 5001 digits > maxBytes
        #expect(throws: Rejection.self) { try canonical(#"{"s": "\u0000"}"#) }
    }
}
