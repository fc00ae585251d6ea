/// Rewrites a JSON value with the values at redaction paths dropped, masked or hashed; every
/// other byte is copied as it was. Given jsonb's printed form (`JSONBText`), it returns jsonb's
/// printed form again: keys keep their order, and members are written with jsonb's separators,
/// so the text sent is still the text the server stores (and a row's leaf hash still matches).
///
/// Single-threaded; one per encoding thread.
public final class JSONRedactor {
    private var output: [UInt8] = []
    private var scratch: UnsafeMutablePointer<UInt8>
    private var scratchCapacity: Int

    public init() {
        scratchCapacity = 4096
        scratch = .allocate(capacity: scratchCapacity)
        output.reserveCapacity(4096)
    }

    deinit { scratch.deallocate() }

    /// Calls `body` with `text` (one valid JSON value) redacted by `paths`. `hash` gives the text
    /// an `hmac` value is replaced by, from the value's bytes (a string's unescaped UTF-8, else
    /// its JSON text as it is in `text`) and whether it is a string.
    public func redact<Result>(_ text: UnsafeRawBufferPointer, paths: RedactionRules.PathNode,
                               hash: @escaping (UnsafeRawBufferPointer, _ isString: Bool) -> String,
                               _ body: (UnsafeRawBufferPointer) -> Result) throws(Rejection) -> Result {
        guard let base = text.baseAddress?.assumingMemoryBound(to: UInt8.self), text.count > 0 else {
            throw Rejection(.invalidJSON, "nothing to redact")
        }
        if text.count > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = text.count
            scratch = .allocate(capacity: scratchCapacity)
        }
        output.removeAll(keepingCapacity: true)
        var cursor = JSONCursor(base: base, count: text.count, scratch: scratch)
        var writer = Writer(output: output, hash: hash)
        output = []  // the writer holds the buffer while it writes (no copy on append)
        defer { output = writer.output }
        try writer.value(&cursor, paths)
        cursor.skipWhitespace()
        guard cursor.isAtEnd else { throw cursor.invalid("unexpected characters after the value") }
        return writer.output.withUnsafeBytes(body)
    }
}

private struct Writer {
    var output: [UInt8]
    let hash: (UnsafeRawBufferPointer, Bool) -> String
    /// Deep enough for anything the decoder let through (its metadata limit is lower).
    static let maxDepth = 1000

    /// Copies the value at the cursor, redacting below `node`.
    mutating func value(_ cursor: inout JSONCursor, _ node: RedactionRules.PathNode?, depth: Int = 0) throws(Rejection) {
        cursor.skipWhitespace()
        guard let node, !node.children.isEmpty, !cursor.isAtEnd else { return try copy(&cursor, depth: depth) }
        switch cursor.current {
        case 0x7B: try object(&cursor, node, depth: depth)
        case 0x5B: try array(&cursor, node, depth: depth)
        default: try copy(&cursor, depth: depth)
        }
    }

    private mutating func object(_ cursor: inout JSONCursor, _ node: RedactionRules.PathNode, depth: Int) throws(Rejection) {
        cursor.index += 1
        output.append(0x7B)
        var first = true
        cursor.skipWhitespace()
        if !cursor.isAtEnd, cursor.current == 0x7D {
            cursor.index += 1
            output.append(0x7D)
            return
        }
        while true {
            cursor.skipWhitespace()
            guard !cursor.isAtEnd, cursor.current == 0x22 else { throw cursor.invalid("expected a key") }
            let keyStart = cursor.index
            let mark = cursor.scratchUsed
            let key = try cursor.readString()
            let child = node.child(named: key.bytes)
            cursor.scratchUsed = mark
            let keyEnd = cursor.index
            try cursor.expect(0x3A, "':'")
            if let action = child?.action {
                let replacement = try redacted(&cursor, action, depth: depth)
                if let replacement {
                    member(cursor, keyStart..<keyEnd, &first)
                    appendString(replacement)
                }
            } else {
                member(cursor, keyStart..<keyEnd, &first)
                try value(&cursor, child, depth: depth + 1)
            }
            guard try another(&cursor, before: 0x7D) else { return }
        }
    }

    /// After a member or element: true at a comma (another follows), false at `close`, which is
    /// written (the object or array ends).
    private mutating func another(_ cursor: inout JSONCursor, before close: UInt8) throws(Rejection) -> Bool {
        cursor.skipWhitespace()
        guard !cursor.isAtEnd, cursor.current == 0x2C || cursor.current == close else {
            throw cursor.invalid("expected ',' or '\(Character(Unicode.Scalar(close)))'")
        }
        cursor.index += 1
        guard cursor.base[cursor.index - 1] == close else { return true }
        output.append(close)
        return false
    }

    /// Writes the separator (jsonb's `", "`) and the key as it was, then `": "`.
    private mutating func member(_ cursor: JSONCursor, _ key: Range<Int>, _ first: inout Bool) {
        if !first { output.append(contentsOf: [0x2C, 0x20]) }
        first = false
        output.append(contentsOf: UnsafeBufferPointer(start: cursor.base + key.lowerBound, count: key.count))
        output.append(contentsOf: [0x3A, 0x20])
    }

    private mutating func array(_ cursor: inout JSONCursor, _ node: RedactionRules.PathNode, depth: Int) throws(Rejection) {
        cursor.index += 1
        output.append(0x5B)
        cursor.skipWhitespace()
        if !cursor.isAtEnd, cursor.current == 0x5D {
            cursor.index += 1
            output.append(0x5D)
            return
        }
        var first = true
        while true {
            if !first { output.append(contentsOf: [0x2C, 0x20]) }
            first = false
            try value(&cursor, node, depth: depth + 1)  // a path passes through arrays
            guard try another(&cursor, before: 0x5D) else { return }
        }
    }

    /// Consumes the value and returns what replaces it (nil: the member is dropped).
    private mutating func redacted(_ cursor: inout JSONCursor, _ action: RedactionAction, depth: Int) throws(Rejection) -> String? {
        cursor.skipWhitespace()
        let start = cursor.index
        switch action {
        case .drop:
            _ = try cursor.skipValue(depth: depth, maxDepth: Self.maxDepth)
            return nil
        case .mask:
            _ = try cursor.skipValue(depth: depth, maxDepth: Self.maxDepth)
            return RedactionAction.maskedText
        case .hmac:
            if !cursor.isAtEnd, cursor.current == 0x22 {
                let mark = cursor.scratchUsed
                defer { cursor.scratchUsed = mark }
                return hash(try cursor.readString().bytes, true)
            }
            _ = try cursor.skipValue(depth: depth, maxDepth: Self.maxDepth)
            return hash(UnsafeRawBufferPointer(start: cursor.base + start, count: cursor.index - start), false)
        }
    }

    private mutating func copy(_ cursor: inout JSONCursor, depth: Int) throws(Rejection) {
        cursor.skipWhitespace()
        let start = cursor.index
        _ = try cursor.skipValue(depth: depth, maxDepth: Self.maxDepth)
        output.append(contentsOf: UnsafeBufferPointer(start: cursor.base + start, count: cursor.index - start))
    }

    /// A replacement: ASCII without quotes or backslashes (`[masked]`, `hmac-sha256:<hex>`).
    private mutating func appendString(_ text: String) {
        output.append(0x22)
        output.append(contentsOf: text.utf8)
        output.append(0x22)
    }
}
