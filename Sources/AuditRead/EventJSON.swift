/// Writes events as JSON objects (keys in `EventColumns.names` order) from their text fields:
/// every field is a JSON string or null, except `metadata`, which PostgreSQL already gives as
/// JSON text (jsonb's output) and is copied as it is. Built here rather than by PostgreSQL's
/// `json_build_object`, which cost about three times the rest of an export's work.
public enum EventJSON {
    static let metadataIndex = EventColumns.names.firstIndex(of: "metadata")!
    /// `"name":` for each field, with the separators.
    static let keys: [[UInt8]] = EventColumns.names.enumerated().map { Array((($0.offset == 0 ? "{" : ",") + "\"\($0.element)\":").utf8) }

    /// One event from a query row's text fields (in `EventColumns.names` order).
    public static func object(_ fields: ArraySlice<String?>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        for (index, field) in fields.enumerated() {
            out += keys[index]
            guard var field else { out += Array("null".utf8); continue }
            if index == metadataIndex {
                out += Array(field.utf8)
            } else {
                field.withUTF8 { appendString(UnsafeRawBufferPointer($0), quoted: false, to: &out) }
            }
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// One event, and a line break, from one row of `COPY ... (FORMAT csv)` output.
    static func appendLine(csvRecord record: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        var position = 0
        var index = 0
        while index < keys.count {
            out += keys[index]
            let field = CSVField.next(in: record, from: &position)
            if field.isNull {
                out += nullBytes
            } else if index == metadataIndex {
                appendUnquoted(UnsafeRawBufferPointer(rebasing: record[field.range]), quoted: field.isQuoted, to: &out)
            } else {
                appendString(UnsafeRawBufferPointer(rebasing: record[field.range]), quoted: field.isQuoted, to: &out)
            }
            index += 1
        }
        out += [UInt8(ascii: "}"), UInt8(ascii: "\n")]
    }

    private static let nullBytes = Array("null".utf8)
    private static let hex = Array("0123456789abcdef".utf8)

    /// `text` as a JSON string; `quoted`: it is the inside of a CSV quoted field ("" is one ").
    static func appendString(_ text: UnsafeRawBufferPointer, quoted: Bool, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var index = 0
        while index < text.count {
            let byte = text[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                if quoted { index += 1 }  // the second of a doubled quote
                out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"):
                out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0..<0x20:
                out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// JSON text copied as it is (undoubling a CSV quoted field's quotes).
    static func appendUnquoted(_ text: UnsafeRawBufferPointer, quoted: Bool, to out: inout [UInt8]) {
        guard quoted else { out.append(contentsOf: text); return }
        var index = 0
        while index < text.count {
            out.append(text[index])
            index += text[index] == UInt8(ascii: "\"") ? 2 : 1
        }
    }
}

/// One field of a CSV record as PostgreSQL's COPY writes it: unquoted and empty is NULL; a
/// quoted field may hold commas, line breaks and doubled quotes.
struct CSVField {
    var range: Range<Int>
    var isQuoted: Bool
    var isNull: Bool

    /// The field starting at `position`; moves `position` past its separator.
    static func next(in record: UnsafeRawBufferPointer, from position: inout Int) -> CSVField {
        let end = record.count
        if position < end, record[position] == UInt8(ascii: "\"") {
            let start = position + 1
            var index = start
            while index < end {
                if record[index] == UInt8(ascii: "\"") {
                    if index + 1 < end, record[index + 1] == UInt8(ascii: "\"") { index += 2; continue }
                    break
                }
                index += 1
            }
            position = index + 2  // the closing quote and the separator
            return CSVField(range: start..<min(index, end), isQuoted: true, isNull: false)
        }
        let start = position
        var index = start
        while index < end, record[index] != UInt8(ascii: ","), record[index] != UInt8(ascii: "\n"), record[index] != UInt8(ascii: "\r") {
            index += 1
        }
        position = index + 1
        return CSVField(range: start..<index, isQuoted: false, isNull: index == start)
    }
}
