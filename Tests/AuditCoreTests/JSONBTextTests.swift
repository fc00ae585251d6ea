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
        (#"{"i":[0,-12,123456789012345678901234567890,-0,7]}"#, #"{"i": [0, -12, 123456789012345678901234567890, 0, 7]}"#),
        (#"{"n":[1e3,1.5E-3,-0,-0.0,2.50,0.000123e2,1.50e1,100e-2]}"#, #"{"n": [1000, 0.0015, 0, 0.0, 2.50, 0.0123, 15.0, 1.00]}"#),
        (#"{"s":"\u00e9\/\"\\\t\u0001\ud83d\ude00"}"#, #"{"s": "é/\"\\\t\u0001😀"}"#),
        (#"{"z":{"b":1,"a":{"d":1,"c":2}}}"#, #"{"z": {"a": {"c": 2, "d": 1}, "b": 1}}"#),
        (#"{"t":0,"s":1,"r":2,"q":3,"p":4,"o":5,"n":6,"m":7,"l":8,"k":9,"j":10,"i":11,"h":12,"g":13,"f":14,"e":15,"d":16,"c":17,"b":18,"a":19,"c":99}"#, #"{"a": 19, "b": 18, "c": 99, "d": 16, "e": 15, "f": 14, "g": 13, "h": 12, "i": 11, "j": 10, "k": 9, "l": 8, "m": 7, "n": 6, "o": 5, "p": 4, "q": 3, "r": 2, "s": 1, "t": 0}"#),  // more members than the insertion sort takes
        // Escaped keys and values are written back escaped; plain ones (non-ASCII too) as given.
        (#"{"k\n":"\b\f\n\r\"x\u001f", "plain":"ünï/cødé"}"#, #"{"k\n": "\b\f\n\r\"x\u001f", "plain": "ünï/cødé"}"#),
    ])
    func printsWhatJSONBPrints(_ input: String, _ expected: String) throws {
        #expect(try canonical(input) == expected)
    }

    @Test func refusesWhatJSONBCannotHoldOrWouldPrintTooLong() {
        #expect(throws: Rejection.self) { try canonical(#"{"n": 1e-16000}"# + String(repeating: " ", count: 1)) }
        #expect(throws: Rejection.self) { try canonical(#"{"n": 1e5000}"#) }  // 5001 digits > maxBytes
        #expect(throws: Rejection.self) { try canonical(#"{"s": "\u0000"}"#) }
        // 2,000 control characters take 12,000 bytes once escaped: more than the 4,096 allowed.
        #expect(throws: Rejection.self) { try canonical(#"{"s": ""# + String(repeating: #"\u0001"#, count: 2000) + #""}"#) }
    }
}
