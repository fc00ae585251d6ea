import Foundation

/// What follows a file's first line: an edit of that line leaves it as it was, so it tells an
/// edited first line (refused like any edit) from a new file (migration 0015).
extension FileSource {
    /// The complete lines after the head, from `start`, and the first of them on its own.
    package struct Body: Sendable, Equatable {
        /// Where the body starts: just after the head's line break.
        package var start: Int64
        /// The hash of the first line after the head with something on it (without its break).
        package var secondLineHash: Int64
        /// Bytes of the body hashed in `hash`, up to a line end.
        package var length: Int64
        package var hash: Int64
    }

    /// How much of the body is fingerprinted: the lines up to the first line end at or past this.
    static let bodyLength = 4096
    /// How far into the input the body is looked for.
    private static let bodyWindow = headLimit + 64 * 1024

    /// The body's fingerprint over its first `length` bytes, or (nil) over the complete lines up
    /// to the first line end at or past `bodyLength`. Nil for standard input, a JSON document,
    /// an input without two lines after its head, or one shorter than `length` after it.
    func body(length wanted: Int64? = nil) throws -> Body? {
        guard case .content = identity, layout == .lines else { return nil }
        let bytes = try leadingBytes(Self.bodyWindow)
        var first = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { first = 3 }
        guard let start = Self.endOfFirstLine(bytes[first...]), let secondEnd = Self.endOfFirstLine(bytes[start...]) else { return nil }
        let end: Int
        if let wanted {
            guard wanted > 0, start + Int(wanted) <= bytes.count else { return nil }
            end = start + Int(wanted)
        } else {
            let due = min(start + Self.bodyLength, bytes.count)
            guard let lineEnd = bytes[(due - 1)...].firstIndex(of: 0x0A) ?? bytes[start...].lastIndex(of: 0x0A) else { return nil }
            end = lineEnd + 1
            // Two lines at least: a single line after the head is too little to call an edit.
            guard bytes[start..<end].lazy.filter({ $0 == 0x0A }).count >= 2 else { return nil }
        }
        let second = bytes[start..<secondEnd].drop { [0x20, 0x09, 0x0D, 0x0A].contains($0) }
        let trimmed = second.reversed().drop { [0x0D, 0x0A].contains($0) }.reversed()
        return Body(start: Int64(start), secondLineHash: Self.hash(Array(trimmed)[...]), length: Int64(end - start),
                    hash: Self.hash(bytes[start..<end]))
    }

    private static func hash(_ bytes: ArraySlice<UInt8>) -> Int64 {
        var hasher = PrefixHasher()
        bytes.withUnsafeBytes { hasher.update($0) }
        return hasher.value
    }
}
