import Foundation

/// A checkpoint of the batch log in C2SP's tlog-checkpoint form, the text of a signed note:
///
///     origin (the log's name)
///     tree size (decimal)
///     root hash (base64)
///     time 2026-12-05T16:30:00Z     (an extension line: when it was signed)
public struct LogCheckpoint: Sendable, Equatable {
    public var origin: String
    public var size: Int64
    public var root: TreeHash
    /// When the integrator signed it, to the second: a republished checkpoint of an idle log
    /// differs only here.
    public var signedAt: Date

    public init(origin: String, size: Int64, root: TreeHash, signedAt: Date) {
        self.origin = origin
        self.size = size
        self.root = root
        self.signedAt = Date(timeIntervalSince1970: signedAt.timeIntervalSince1970.rounded(.down))
    }

    public var text: String {
        "\(origin)\n\(size)\n\(Data(root.bytes).base64EncodedString())\ntime \(Self.format(signedAt))\n"
    }

    public init(parsing text: String) throws(EvidenceFormatError) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 4, lines.last == "", !lines[0].isEmpty, let size = Int64(lines[1]), size >= 0,
              let rootBytes = Data(base64Encoded: String(lines[2])), rootBytes.count == 32, let root = TreeHash(rootBytes) else {
            throw EvidenceFormatError("not a checkpoint: expected the origin, the tree size and the base64 root, one per line")
        }
        let time = lines.dropFirst(3).first { $0.hasPrefix("time ") }.flatMap { Self.parse(String($0.dropFirst(5))) }
        guard let time else { throw EvidenceFormatError("the checkpoint has no `time` line") }
        self.init(origin: String(lines[0]), size: size, root: root, signedAt: time)
    }

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
