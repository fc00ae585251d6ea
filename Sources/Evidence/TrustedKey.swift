import AuditCore
import Foundation

/// A verifier key a checkpoint may be signed with, and when: the key history `verify` trusts.
///
/// A keyring file holds one key per line, optionally followed by its validity window:
///
///     audit-ingest+1a2b3c4d+AW... from=2026-01-01T00:00:00Z until=2026-12-01T00:00:00Z
///
/// (what `audit-ingest keys generate` writes is a keyring of one key, valid always). A checkpoint
/// holds only if a trusted key valid at the checkpoint's time signed it: a key retired with
/// `until=` cannot vouch for a checkpoint signed after, even if whoever stole it signs one.
/// Blank lines and lines starting with `#` are skipped.
public struct TrustedKey: Sendable, Equatable {
    public var key: NoteVerifierKey
    /// nil: no bound.
    public var validFrom: Date?
    public var validUntil: Date?

    public init(key: NoteVerifierKey, validFrom: Date? = nil, validUntil: Date? = nil) {
        self.key = key
        self.validFrom = validFrom
        self.validUntil = validUntil
    }

    /// True when `date` is in [validFrom, validUntil].
    public func isValid(at date: Date) -> Bool {
        (validFrom.map { date >= $0 } ?? true) && (validUntil.map { date <= $0 } ?? true)
    }

    /// The window as a keyring line writes it: `from=… until=…`, or "always".
    public var window: String {
        let parts = [validFrom.map { "from=\(Self.format($0))" }, validUntil.map { "until=\(Self.format($0))" }].compactMap { $0 }
        return parts.isEmpty ? "always" : parts.joined(separator: " ")
    }

    /// Every key of a keyring file's text; throws naming the line that is not a key.
    public static func keyring(parsing text: String) throws(EvidenceFormatError) -> [TrustedKey] {
        var keys: [TrustedKey] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = words.first, !first.hasPrefix("#") else { continue }
            var trusted = TrustedKey(key: try NoteVerifierKey(parsing: String(first)))
            for word in words.dropFirst() {
                let pair = word.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2, let micros = RFC3339.unixMicroseconds(pair[1]) else {
                    throw EvidenceFormatError("line \(index + 1): \(word) is not from=TIME or until=TIME (RFC 3339, with an offset)")
                }
                let date = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
                switch pair[0] {
                case "from": trusted.validFrom = date
                case "until": trusted.validUntil = date
                default: throw EvidenceFormatError("line \(index + 1): \(pair[0])= is neither from= nor until=")
                }
            }
            if let from = trusted.validFrom, let until = trusted.validUntil, from > until {
                throw EvidenceFormatError("line \(index + 1): from= is after until=")
            }
            keys.append(trusted)
        }
        guard !keys.isEmpty else { throw EvidenceFormatError("no key in it") }
        return keys
    }

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
