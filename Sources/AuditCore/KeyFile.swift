import Foundation

/// A key kept in a file of its own: 32 random bytes, base64, readable by its owner only. The
/// stream secret key and the redaction key are such files.
public enum KeyFile {
    public struct Unusable: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// The key's bytes. `what` names the key in errors ("stream secret key"), `generate` the
    /// command that writes one.
    public static func read(path: String, what: String, generate: String) throws(Unusable) -> [UInt8] {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw Unusable(description: "cannot read the \(what) \(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw Unusable(description: """
                the \(what) \(path) may be read by others (mode \(String(status.st_mode & 0o777, radix: 8))): chmod 600 \(path)
                """)
        }
        guard let data = FileManager.default.contents(atPath: path),
              let bytes = Data(base64Encoded: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Unusable(description: "\(path) does not hold a \(what) (base64; `\(generate)` writes one)")
        }
        guard bytes.count == 32 else { throw Unusable(description: "a \(what) is 32 bytes (base64), not \(bytes.count)") }
        return Array(bytes)
    }
}
