/// W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header):
/// `version-traceid-parentid-flags`, lowercase hex; version `ff` is invalid, and the trace and
/// parent ids are not all zeros. Version 00 is exactly 55 characters; a later version may add
/// fields after the flags, separated by `-`.
public enum TraceParent {
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 55, bytes.count == 55 || (bytes[55] == UInt8(ascii: "-") && bytes[0...1] != [0x30, 0x30]) else {
            return false
        }
        let fields = [bytes[0..<2], bytes[3..<35], bytes[36..<52], bytes[53..<55]]
        guard [2, 35, 52].allSatisfy({ bytes[$0] == UInt8(ascii: "-") }),
              fields.allSatisfy({ $0.allSatisfy(isLowercaseHex) }) else { return false }
        return fields[0] != [0x66, 0x66]  // "ff"
            && fields[1].contains { $0 != UInt8(ascii: "0") } && fields[2].contains { $0 != UInt8(ascii: "0") }
    }

    private static func isLowercaseHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
