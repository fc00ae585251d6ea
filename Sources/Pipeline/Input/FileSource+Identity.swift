import Foundation

/// A file source's identity: a hash of its first line (see `FileSource`).
extension FileSource {
    /// The hash of the first line (without its line break, at most `headLimit` bytes; blank lines
    /// before it count as part of it). Without the break, a one-line file keeps its identity when
    /// its writer adds the newline and more lines. Also sets `legacyHead`: the hash versions before
    /// this one took, with the break.
    mutating func headFingerprint() throws -> String {
        let head = try leadingBytes(Self.headLimit)
        var filled = head.count
        var start = 0
        if filled >= 3, head[0] == 0xEF, head[1] == 0xBB, head[2] == 0xBF { start = 3 }
        layout = Self.layout(of: head[start..<filled])
        if layout == .document {
            // Every pretty-printed document starts with the same line (`{`): its first 4 KiB
            // tell it from another.
            var hasher = PrefixHasher()
            head.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[start..<filled])) }
            return "doc-" + String(UInt64(bitPattern: hasher.value), radix: 16)
        }
        if let end = Self.endOfFirstLine(head[..<filled]) { filled = end }
        // A byte-order mark is not content; a file of blank lines only has an empty head (it
        // stays the same source when events are appended).
        let blank: Set<UInt8> = [0x20, 0x09, 0x0D, 0x0A]
        startsBlank = filled > start && blank.contains(head[start])
        if !head[start..<filled].contains(where: { !blank.contains($0) }) { start = filled }
        func fingerprint(_ end: Int) -> String {
            var hasher = PrefixHasher()
            head.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
            return String(UInt64(bitPattern: hasher.value), radix: 16)
        }
        var end = filled
        if end > start, head[end - 1] == 0x0A {
            end -= 1
            if end > start, head[end - 1] == 0x0D { end -= 1 }
        }
        legacyHead = end == filled ? nil : fingerprint(filled)
        return fingerprint(end)
    }

    /// How the input is laid out, from its first bytes: one JSON document when it starts with `[`,
    /// or with `{` on a first line that is not whole JSON (pretty-printed); else NDJSON (a
    /// first line longer than `headLimit` is a line: a delivery file on one line).
    static func layout(of head: ArraySlice<UInt8>) -> Layout {
        guard let first = head.firstIndex(where: { ![0x20, 0x09, 0x0D, 0x0A].contains($0) }) else { return .lines }
        if head[first] == UInt8(ascii: "[") { return .document }
        guard head[first] == UInt8(ascii: "{"), let end = endOfFirstLine(head) else { return .lines }
        return (try? JSONSerialization.jsonObject(with: Data(head[first..<end]))) == nil ? .document : .lines
    }

    /// Where the first line with something on it ends (after its newline), if `bytes` holds it:
    /// blank lines before it are part of the head, so files that start with one are still told apart.
    static func endOfFirstLine(_ bytes: ArraySlice<UInt8>) -> Int? {
        var sawText = false
        for index in bytes.indices {
            switch bytes[index] {
            case 0x0A where sawText: return index + 1
            case 0x20, 0x09, 0x0D, 0x0A: continue
            default: sawText = true
            }
        }
        return nil
    }

    /// Up to `count` bytes from the input's start.
    func leadingBytes(_ count: Int) throws -> [UInt8] {
        let input = try openInput()
        defer { input.close() }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let read = bytes.withUnsafeMutableBytes { Foundation.read(input.fd, $0.baseAddress! + filled, count - filled) }
            if read < 0 {
                if errno == EINTR { continue }
                throw IngestError(.sourceUnreadable, "reading \(path) failed: \(String(cString: strerror(errno)))")
            }
            if read == 0 { break }
            filled += read
        }
        return Array(bytes[..<filled])
    }
}
