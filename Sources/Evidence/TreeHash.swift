import Crypto

/// A SHA-256 value of the evidence: a leaf, a Merkle node, a batch digest or a chain head.
/// Four big-endian words, so that it sorts bytewise and compares without touching memory.
public struct TreeHash: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var words: (UInt64, UInt64, UInt64, UInt64)

    /// 32 zero bytes: the head of a chain before its first batch.
    public static let zero = TreeHash(words: (0, 0, 0, 0))

    public init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

    /// The first 32 bytes of `bytes`; nil when there are fewer.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count >= 32 else { return nil }
        var value = TreeHash.zero
        withUnsafeMutableBytes(of: &value.words) { raw in
            for (index, byte) in bytes.prefix(32).enumerated() { raw[index] = byte }
        }
        value.words = (UInt64(bigEndian: value.words.0), UInt64(bigEndian: value.words.1),
                       UInt64(bigEndian: value.words.2), UInt64(bigEndian: value.words.3))
        self = value
    }

    init(_ digest: SHA256.Digest) {
        self = digest.withUnsafeBytes { TreeHash(loading: $0) }
    }

    /// The first 32 bytes at `raw`, which has at least that many: four loads, not a loop.
    init(loading raw: UnsafeRawBufferPointer) {
        precondition(raw.count >= 32)
        func word(_ offset: Int) -> UInt64 { UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        words = (word(0), word(8), word(16), word(24))
    }

    /// The 32 bytes, in order.
    public var bytes: [UInt8] {
        var big = (words.0.bigEndian, words.1.bigEndian, words.2.bigEndian, words.3.bigEndian)
        return withUnsafeBytes(of: &big) { Array($0) }
    }

    /// Calls `body` with the 32 bytes, in order, without allocating.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var big = (words.0.bigEndian, words.1.bigEndian, words.2.bigEndian, words.3.bigEndian)
        return try withUnsafeBytes(of: &big) { try body($0) }
    }

    /// 64 lower-case hex digits.
    public var description: String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] })
    }

    /// Parses 64 hex digits (PostgreSQL's `encode(..., 'hex')`).
    public init?(hex: String) {
        let characters = Array(hex.utf8)
        guard characters.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = Self.nibble(characters[index]), let low = Self.nibble(characters[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.init(bytes)
    }

    /// `\x` and the hex digits: a bytea parameter in text form.
    public var byteaLiteral: String { "\\x" + description }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case 0x30...0x39: character - 0x30
        case 0x61...0x66: character - 0x61 + 10
        case 0x41...0x46: character - 0x41 + 10
        default: nil
        }
    }

    public static func < (lhs: TreeHash, rhs: TreeHash) -> Bool {
        (lhs.words.0, lhs.words.1, lhs.words.2, lhs.words.3) < (rhs.words.0, rhs.words.1, rhs.words.2, rhs.words.3)
    }

    public static func == (lhs: TreeHash, rhs: TreeHash) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2 && lhs.words.3 == rhs.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}
