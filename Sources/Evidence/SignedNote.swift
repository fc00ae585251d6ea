import Foundation

/// A note in C2SP's signed-note format: a text ending in a newline, a blank line, and one
/// signature line per key: an em dash (U+2014), a space, the key name, a space, and
/// base64(key id (4 bytes, big-endian) ‖ signature). The signatures cover the text with its
/// final newline.
public struct SignedNote: Sendable, Equatable {
    public struct Signature: Sendable, Equatable {
        public var name: String
        public var keyID: UInt32
        public var bytes: [UInt8]
    }

    public var text: String
    public var signatures: [Signature]

    /// More signature lines than this are refused (as Go's note package does).
    static let maxSignatures = 100

    /// `text` signed by each of `keys`.
    public init(text: String, signedBy keys: [NoteSigningKey]) throws(EvidenceFormatError) {
        try Self.check(text: text)
        self.text = text
        signatures = keys.map { Signature(name: $0.name, keyID: $0.verifier.keyID, bytes: $0.signature(of: Array(text.utf8))) }
    }

    /// Parses a signed note; the signatures are not checked (`isSigned(by:)` does).
    public init(parsing note: String) throws(EvidenceFormatError) {
        guard let split = note.range(of: "\n\n", options: .backwards) else {
            throw EvidenceFormatError("not a signed note: no blank line before the signatures")
        }
        let text = String(note[..<split.lowerBound]) + "\n"
        try Self.check(text: text)
        var signatures: [Signature] = []
        let lines = note[split.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.last == "", lines.count >= 2 else { throw EvidenceFormatError("a signed note ends with a signature line and a newline") }
        for line in lines.dropLast() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 3, fields[0] == "\u{2014}", let bytes = Data(base64Encoded: String(fields[2])), bytes.count > 4 else {
                throw EvidenceFormatError("not a signature line: \(line.prefix(80).debugDescription)")
            }
            signatures.append(Signature(name: String(fields[1]), keyID: bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) },
                                        bytes: Array(bytes.dropFirst(4))))
        }
        guard signatures.count <= Self.maxSignatures else { throw EvidenceFormatError("more than \(Self.maxSignatures) signatures") }
        self.text = text
        self.signatures = signatures
    }

    /// The note as it is written and served.
    public var encoded: String {
        text + "\n" + signatures.map { signature in
            var bytes = withUnsafeBytes(of: signature.keyID.bigEndian) { Array($0) }
            bytes += signature.bytes
            return "\u{2014} \(signature.name) \(Data(bytes).base64EncodedString())\n"
        }.joined()
    }

    /// True when a signature line of `key` (its name and id) holds, false when one is there and
    /// does not, nil when the note has none of that key.
    public func isSigned(by key: NoteVerifierKey) -> Bool? {
        guard let signature = signatures.first(where: { $0.name == key.name && $0.keyID == key.keyID }) else { return nil }
        return key.isValidSignature(signature.bytes, of: Array(text.utf8))
    }

    /// Valid UTF-8 (a String is), a final newline, no blank line, no control character but newline.
    static func check(text: String) throws(EvidenceFormatError) {
        guard text.hasSuffix("\n"), !text.contains("\n\n"), !text.hasPrefix("\n") else {
            throw EvidenceFormatError("a note's text ends with a newline and has no blank line")
        }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) else {
            throw EvidenceFormatError("a note's text has no control characters but newlines")
        }
    }
}
