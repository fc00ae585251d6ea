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
    private var written = 0
    /// Where an object's members are put back in key order.
    private let reordering: UnsafeMutablePointer<UInt8>
    /// Unescaped strings of the current object; grown to the input's size.
    private var scratch: UnsafeMutablePointer<UInt8>
    private var scratchCapacity: Int
    /// The members of the objects being written, innermost last.
    private var members: [Member] = []

    private struct Member {
        var key: UnsafeRawBufferPointer
        var start: Int
        var length: Int
    }

    /// numeric keeps at most this many digits after the decimal point.
    static let maxDecimals = 16_383

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
        written = 0
        members.removeAll(keepingCapacity: true)
        var cursor = JSONCursor(base: base, count: object.count, scratch: scratch)
        try writeValue(&cursor, depth: 0, maxDepth: maxDepth)
        cursor.skipWhitespace()
        guard cursor.isAtEnd else { throw cursor.invalid("unexpected characters after the metadata") }
        return UnsafeRawBufferPointer(start: output, count: written)
    }

    // MARK: Values

    private func writeValue(_ cursor: inout JSONCursor, depth: Int, maxDepth: Int) throws(Rejection) {
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

    private func readString(_ cursor: inout JSONCursor) throws(Rejection) -> UnsafeRawBufferPointer {
        let string = try cursor.readString()
        if string.containsNUL { throw Rejection(.nulCharacter, field: "metadata", "\\u0000 is not allowed in jsonb") }
        return string.bytes
    }

    /// Members in the order given, then, unless their keys were already in jsonb's order and
    /// distinct, put back in that order with the last of each duplicate key kept.
    private func writeObject(_ cursor: inout JSONCursor, depth: Int, maxDepth: Int) throws(Rejection) {
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
                if inOrder, !Self.precedes(members[members.count - 1].key, key) { inOrder = false }
            }
            let start = written
            try writeString(key)
            try cursor.expect(0x3A, "':'")
            try append(0x3A, 0x20)
            try writeValue(&cursor, depth: depth + 1, maxDepth: maxDepth)
            members.append(Member(key: key, start: start, length: written - start))
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
    private func putInKeyOrder(members range: Range<Int>, body: Int) {
        let length = written - body
        reordering.update(from: output + body, count: length)
        // By key, and of equal keys the later first: the first of each run is the one kept.
        let order = range.sorted { a, b in
            let left = members[a].key, right = members[b].key
            if Self.precedes(left, right) { return true }
            if Self.precedes(right, left) { return false }
            return a > b
        }
        written = body
        var previous: UnsafeRawBufferPointer?
        for index in order {
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

    private func writeString(_ text: UnsafeRawBufferPointer) throws(Rejection) {
        try reserve(text.count + 2)
        output[written] = 0x22
        written += 1
        for byte in text {
            switch byte {
            case 0x22: try append(0x5C, 0x22)
            case 0x5C: try append(0x5C, 0x5C)
            case 0x08: try append(0x5C, 0x62)
            case 0x0C: try append(0x5C, 0x66)
            case 0x0A: try append(0x5C, 0x6E)
            case 0x0D: try append(0x5C, 0x72)
            case 0x09: try append(0x5C, 0x74)
            case ..<0x20:
                let hex: StaticString = "0123456789abcdef"
                try append("\\u00")
                try append(hex.utf8Start[Int(byte >> 4)], hex.utf8Start[Int(byte & 0x0F)])
            default:
                if written == maxBytes { throw tooLarge() }
                output[written] = byte
                written += 1
            }
        }
        try append(0x22)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` (checked by `skipNumber`) as numeric_out
    /// prints it: the digits with the decimal point moved by the exponent.
    private func writeNumber(_ text: UnsafeBufferPointer<UInt8>) throws(Rejection) {
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
    private func append(_ byte: UInt8) throws(Rejection) {
        try reserve(1)
        output[written] = byte
        written += 1
    }

    @inline(__always)
    private func append(_ first: UInt8, _ second: UInt8) throws(Rejection) {
        try reserve(2)
        output[written] = first
        output[written + 1] = second
        written += 2
    }

    private func append(_ literal: StaticString) throws(Rejection) {
        try reserve(literal.utf8CodeUnitCount)
        (output + written).update(from: literal.utf8Start, count: literal.utf8CodeUnitCount)
        written += literal.utf8CodeUnitCount
    }
}
