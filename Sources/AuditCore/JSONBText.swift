import Foundation

/// A metadata object written as PostgreSQL's jsonb prints it (`jsonb_out`), so that the text
/// sent in a COPY is the text the server stores and gives back byte for byte. Tamper evidence
/// hashes the row as sent and `verify` hashes it as read back: both must be this text.
///
/// jsonb's printed form (PostgreSQL 15, `JsonbToCString`, `escape_json`, `numeric_out`):
/// - an object's keys sorted by length in bytes, then bytewise; of a key given twice, the last
///   value is kept;
/// - `", "` between members and elements, `": "` after a key, no other whitespace;
/// - strings unescaped, then written back with `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and
///   `\u00xx` (lower-case hex) for the other control characters; everything else, `/` and
///   non-ASCII included, as UTF-8;
/// - numbers as `numeric` prints them: no exponent, no leading zeros, as many decimals as the
///   input had less its exponent (`1.50e1` is `15.0`, `5e-3` is `0.005`), and zero without a sign.
///
/// Single-threaded; one per encoding thread. The returned text is valid until the next call.
public final class JSONBText {
    /// The longest text it writes: a number with a large exponent prints all its digits.
    public let maxBytes: Int
    private let output: UnsafeMutablePointer<UInt8>
    /// Where an object's members are put back in key order.
    private let reordering: UnsafeMutablePointer<UInt8>
    /// Unescaped strings of the current object; grown to the input's size.
    private var scratch: UnsafeMutablePointer<UInt8>
    private var scratchCapacity: Int
    /// Kept between calls for its capacity; lent to each call's printer.
    private var members: [JSONBPrinter.Member] = []

    public init(maxBytes: Int) {
        self.maxBytes = maxBytes
        output = .allocate(capacity: maxBytes)
        reordering = .allocate(capacity: maxBytes)
        scratchCapacity = 4096
        scratch = .allocate(capacity: scratchCapacity)
        members.reserveCapacity(64)
    }

    deinit {
        output.deallocate()
        reordering.deallocate()
        scratch.deallocate()
    }

    /// `object` (one JSON value, valid UTF-8, as `EventDecoder` validated it) as jsonb prints it.
    /// Throws a rejection for what jsonb would refuse, or when the printed text exceeds `maxBytes`.
    public func canonical(_ object: UnsafeRawBufferPointer, maxDepth: Int = 64) throws(Rejection) -> UnsafeRawBufferPointer {
        guard let base = object.baseAddress?.assumingMemoryBound(to: UInt8.self), object.count > 0 else {
            throw Rejection(.invalidJSON, field: "metadata", "the metadata is empty")
        }
        if object.count > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = object.count
            scratch = .allocate(capacity: scratchCapacity)
        }
        // The printer is a value on the stack: its state is checked for exclusive access when
        // compiled, not on every write as a class's stored properties are.
        var printer = JSONBPrinter(output: output, reordering: reordering, maxBytes: maxBytes)
        swap(&printer.members, &members)
        defer {
            printer.members.removeAll(keepingCapacity: true)
            swap(&printer.members, &members)
        }
        var cursor = JSONCursor(base: base, count: object.count, scratch: scratch)
        try printer.writeValue(&cursor, depth: 0, maxDepth: maxDepth)
        cursor.skipWhitespace()
        guard cursor.isAtEnd else { throw cursor.invalid("unexpected characters after the metadata") }
        return UnsafeRawBufferPointer(start: output, count: printer.written)
    }
}

/// One call's writing into `JSONBText`'s buffers.
struct JSONBPrinter {
    struct Member {
        var key: UnsafeRawBufferPointer
        var start: Int
        var length: Int
    }

    let output: UnsafeMutablePointer<UInt8>
    let reordering: UnsafeMutablePointer<UInt8>
    let maxBytes: Int
    var written = 0
    /// The members of the objects being written, innermost last.
    var members: [Member] = []

    init(output: UnsafeMutablePointer<UInt8>, reordering: UnsafeMutablePointer<UInt8>, maxBytes: Int) {
        self.output = output
        self.reordering = reordering
        self.maxBytes = maxBytes
    }

    /// numeric keeps at most this many digits after the decimal point.
    static let maxDecimals = 16_383

    // MARK: Values

    mutating func writeValue(_ cursor: inout JSONCursor, depth: Int, maxDepth: Int) throws(Rejection) {
        cursor.skipWhitespace()
        guard !cursor.isAtEnd else { throw cursor.invalid("expected a value") }
        switch cursor.current {
        case 0x22:
            let mark = cursor.scratchUsed
            defer { cursor.scratchUsed = mark }  // a value's unescaped text is needed only until written
            try writeString(try readString(&cursor))
        case 0x7B:
            try writeObject(&cursor, depth: depth, maxDepth: maxDepth)
        case 0x5B:
            guard depth < maxDepth else { throw Rejection(.nestingTooDeep, field: "metadata", "nesting deeper than \(maxDepth)") }
            cursor.index += 1
            try append(0x5B)
            cursor.skipWhitespace()
            if !cursor.isAtEnd, cursor.current == 0x5D {
                cursor.index += 1
                return try append(0x5D)
            }
            var first = true
            while true {
                if !first { try append(0x2C, 0x20) }
                first = false
                try writeValue(&cursor, depth: depth + 1, maxDepth: maxDepth)
                cursor.skipWhitespace()
                guard !cursor.isAtEnd else { throw cursor.invalid("unterminated array") }
                if cursor.current == 0x2C { cursor.index += 1; continue }
                if cursor.current == 0x5D { cursor.index += 1; return try append(0x5D) }
                throw cursor.invalid("expected ',' or ']'")
            }
        case 0x74: try cursor.skipLiteral("true"); try append("true")
        case 0x66: try cursor.skipLiteral("false"); try append("false")
        case 0x6E: try cursor.skipLiteral("null"); try append("null")
        default:
            let start = cursor.index
            try cursor.skipNumber()
            try writeNumber(UnsafeBufferPointer(start: cursor.base + start, count: cursor.index - start))
        }
    }

    private func readString(_ cursor: inout JSONCursor) throws(Rejection) -> JSONCursor.StringValue {
        let string = try cursor.readString()
        if string.containsNUL { throw Rejection(.nulCharacter, field: "metadata", "\\u0000 is not allowed in jsonb") }
        return string
    }

    /// Members in the order given, then, unless their keys were already in jsonb's order and
    /// distinct, put back in that order with the last of each duplicate key kept.
    private mutating func writeObject(_ cursor: inout JSONCursor, depth: Int, maxDepth: Int) throws(Rejection) {
        guard depth < maxDepth else { throw Rejection(.nestingTooDeep, field: "metadata", "nesting deeper than \(maxDepth)") }
        cursor.index += 1
        try append(0x7B)
        let firstMember = members.count
        let keyMark = cursor.scratchUsed
        defer {
            members.removeLast(members.count - firstMember)
            cursor.scratchUsed = keyMark
        }
        cursor.skipWhitespace()
        if !cursor.isAtEnd, cursor.current == 0x7D {
            cursor.index += 1
            return try append(0x7D)
        }
        let body = written
        var inOrder = true
        while true {
            cursor.skipWhitespace()
            guard !cursor.isAtEnd, cursor.current == 0x22 else { throw cursor.invalid("expected a key") }
            let key = try readString(&cursor)
            if members.count > firstMember {
                try append(0x2C, 0x20)
                if inOrder, !Self.precedes(members[members.count - 1].key, key.bytes) { inOrder = false }
            }
            let start = written
            try writeString(key)
            try cursor.expect(0x3A, "':'")
            try append(0x3A, 0x20)
            try writeValue(&cursor, depth: depth + 1, maxDepth: maxDepth)
            members.append(Member(key: key.bytes, start: start, length: written - start))
            cursor.skipWhitespace()
            guard !cursor.isAtEnd else { throw cursor.invalid("unterminated object") }
            if cursor.current == 0x2C { cursor.index += 1; continue }
            if cursor.current == 0x7D { cursor.index += 1; break }
            throw cursor.invalid("expected ',' or '}'")
        }
        if !inOrder { putInKeyOrder(members: firstMember..<members.count, body: body) }
        try append(0x7D)
    }

    /// Rewrites the members from `body` on in jsonb's key order, each key once (its last value).
    private mutating func putInKeyOrder(members range: Range<Int>, body: Int) {
        let length = written - body
        reordering.update(from: output + body, count: length)
        // In place (an object's members are dropped once it is written): by key, and of equal
        // keys the later (further on in the text) first, so the first of each run is the one kept.
        members.withUnsafeMutableBufferPointer { all in
            var object = UnsafeMutableBufferPointer(rebasing: all[range])
            func before(_ a: Member, _ b: Member) -> Bool {
                if Self.precedes(a.key, b.key) { return true }
                if Self.precedes(b.key, a.key) { return false }
                return a.start > b.start
            }
            guard object.count <= 16 else { return object.sort(by: before) }
            guard object.count > 1 else { return }
            for index in 1..<object.count {  // insertion sort: the few members of an event's object
                let member = object[index]
                var place = index
                while place > 0, before(member, object[place - 1]) {
                    object[place] = object[place - 1]
                    place -= 1
                }
                object[place] = member
            }
        }
        written = body
        var previous: UnsafeRawBufferPointer?
        for index in range {
            let member = members[index]
            if let previous, !Self.precedes(previous, member.key) { continue }  // a duplicate key
            if previous != nil {
                output[written] = 0x2C
                output[written + 1] = 0x20
                written += 2
            }
            (output + written).update(from: reordering + (member.start - body), count: member.length)
            written += member.length
            previous = member.key
        }
    }

    /// jsonb's key order: shorter first, then bytewise.
    static func precedes(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        if left.count != right.count { return left.count < right.count }
        guard let l = left.baseAddress, let r = right.baseAddress, left.count > 0 else { return false }
        return memcmp(l, r, left.count) < 0
    }

    // MARK: Scalars

    /// A string as `escape_json` writes it. Text that had no escapes in the input has nothing to
    /// escape either (no quote, backslash or control character): it is copied as it is.
    private mutating func writeString(_ string: JSONCursor.StringValue) throws(Rejection) {
        let text = string.bytes
        try reserve(text.count + 2)
        output[written] = 0x22
        if !string.wasEscaped {
            if let base = text.baseAddress { (output + written + 1).update(from: base.assumingMemoryBound(to: UInt8.self), count: text.count) }
            output[written + 1 + text.count] = 0x22
            written += text.count + 2
            return
        }
        // Each escape adds one byte or five to the `text.count + 2` reserved.
        var end = written + 1, limit = written + text.count + 2
        for byte in text {
            switch byte {
            case 0x22, 0x5C, 0x08, 0x0C, 0x0A, 0x0D, 0x09:
                limit += 1
                guard limit <= maxBytes else { throw tooLarge() }
                output[end] = 0x5C
                output[end + 1] = switch byte {
                case 0x08: 0x62
                case 0x0C: 0x66
                case 0x0A: 0x6E
                case 0x0D: 0x72
                case 0x09: 0x74
                default: byte
                }
                end += 2
            case ..<0x20:
                limit += 5
                guard limit <= maxBytes else { throw tooLarge() }
                let hex: StaticString = "0123456789abcdef", escape: StaticString = "\\u00"
                (output + end).update(from: escape.utf8Start, count: 4)
                output[end + 4] = hex.utf8Start[Int(byte >> 4)]
                output[end + 5] = hex.utf8Start[Int(byte & 0x0F)]
                end += 6
            default:
                output[end] = byte
                end += 1
            }
        }
        output[end] = 0x22
        written = end + 1
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` (checked by `skipNumber`) as numeric_out
    /// prints it: the digits with the decimal point moved by the exponent.
    private mutating func writeNumber(_ text: UnsafeBufferPointer<UInt8>) throws(Rejection) {
        // An integer (JSON allows no leading zeros) prints as given, but for the sign of -0.
        if !text.contains(where: { $0 == 0x2E || $0 == 0x65 || $0 == 0x45 }) {
            if text.count == 2, text[0] == 0x2D, text[1] == 0x30 { return try append(0x30) }
            try reserve(text.count)
            (output + written).update(from: text.baseAddress!, count: text.count)
            written += text.count
            return
        }
        var index = 0
        let negative = text[0] == 0x2D
        if negative { index += 1 }
        let integerStart = index
        while index < text.count, text[index] >= 0x30, text[index] <= 0x39 { index += 1 }
        let integerDigits = index - integerStart
        var fractionStart = index, fractionDigits = 0
        if index < text.count, text[index] == 0x2E {
            index += 1
            fractionStart = index
            while index < text.count, text[index] >= 0x30, text[index] <= 0x39 { index += 1 }
            fractionDigits = index - fractionStart
        }
        var exponent = 0
        if index < text.count {  // e or E
            index += 1
            let negativeExponent = text[index] == 0x2D
            if text[index] == 0x2D || text[index] == 0x2B { index += 1 }
            while index < text.count { exponent = exponent * 10 + Int(text[index] - 0x30); index += 1 }
            if negativeExponent { exponent = -exponent }
        }
        let digitCount = integerDigits + fractionDigits
        func digit(_ position: Int) -> UInt8 {
            guard position >= 0, position < digitCount else { return 0x30 }
            return position < integerDigits ? text[integerStart + position] : text[fractionStart + position - integerDigits]
        }
        let point = integerDigits + exponent
        let decimals = max(0, fractionDigits - exponent)
        guard decimals <= Self.maxDecimals else {
            throw Rejection(.invalidJSON, field: "metadata", "a number has \(decimals) digits after the decimal point; jsonb keeps at most \(Self.maxDecimals)")
        }
        let isZero = (0..<digitCount).allSatisfy { digit($0) == 0x30 }
        if negative, !isZero { try append(0x2D) }
        var firstSignificant = 0
        while firstSignificant < point, digit(firstSignificant) == 0x30 { firstSignificant += 1 }
        if firstSignificant >= point {
            try append(0x30)
        } else {
            try reserve(point - firstSignificant)
            for position in firstSignificant..<point { output[written] = digit(position); written += 1 }
        }
        if decimals > 0 {
            try reserve(decimals + 1)
            output[written] = 0x2E
            written += 1
            for position in point..<(point + decimals) { output[written] = digit(position); written += 1 }
        }
    }

    // MARK: Output

    private func tooLarge() -> Rejection {
        Rejection(.tooLarge, field: "metadata", "the metadata as jsonb prints it exceeds \(maxBytes) bytes")
    }

    @inline(__always)
    private func reserve(_ count: Int) throws(Rejection) {
        guard written + count <= maxBytes else { throw tooLarge() }
    }

    @inline(__always)
    private mutating func append(_ byte: UInt8) throws(Rejection) {
        try reserve(1)
        output[written] = byte
        written += 1
    }

    @inline(__always)
    private mutating func append(_ first: UInt8, _ second: UInt8) throws(Rejection) {
        try reserve(2)
        output[written] = first
        output[written + 1] = second
        written += 2
    }

    private mutating func append(_ literal: StaticString) throws(Rejection) {
        try reserve(literal.utf8CodeUnitCount)
        (output + written).update(from: literal.utf8Start, count: literal.utf8CodeUnitCount)
        written += literal.utf8CodeUnitCount
    }
}
