import AuditCore
import Crypto
import Foundation

/// A tenant destination's secret as the database holds it: AES-256-GCM under the operator's
/// stream secret key, bound to its destination (the id is the additional data, so a sealed
/// secret copied to another destination does not open). Only the admin server (which seals what
/// a tenant sends) and the streamer (which opens it to sign or authenticate) read the key file.
public enum SealedSecret {
    /// The operator's key: 32 random bytes, base64 in a file only its owner may read.
    public struct Key: Sendable {
        let key: SymmetricKey
        /// The first 8 bytes of SHA-256 of the key, in hex: names the key without revealing it.
        public let id: String

        public init(bytes: [UInt8]) throws(Unusable) {
            guard bytes.count == 32 else { throw Unusable(description: "a stream secret key is 32 bytes (base64), not \(bytes.count)") }
            key = SymmetricKey(data: bytes)
            id = SHA256.hash(data: bytes).prefix(8).map { String(format: "%02x", $0) }.joined()
        }

        /// A new key, as the text of its file.
        public static func generate() -> String {
            SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        }

        /// Reads the key file; refused when others than its owner may read it.
        public static func load(path: String) throws(Unusable) -> Key {
            let bytes: [UInt8]
            do {
                bytes = try KeyFile.read(path: path, what: "stream secret key", generate: "audit-ingest stream secret-key generate")
            } catch {
                throw Unusable(description: error.description)
            }
            return try Key(bytes: bytes)
        }
    }

    public struct Unusable: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// nonce ‖ ciphertext ‖ tag.
    public static func seal(_ secret: [UInt8], destinationID: String, with key: Key) throws -> [UInt8] {
        Array(try AES.GCM.seal(secret, using: key.key, authenticating: additionalData(destinationID)).combined!)
    }

    /// Opens with whichever of `keys` the secret was sealed under (the current key, and during a
    /// rotation the previous one).
    public static func open(_ sealed: [UInt8], keyID: String?, destinationID: String, with keys: [Key]) throws(Unusable) -> [UInt8] {
        guard !keys.isEmpty else {
            throw Unusable(description: "the destination's secret is sealed under key \(keyID ?? "?"): give this process --stream-secret-key-file")
        }
        guard let key = keys.first(where: { $0.id == keyID }) else {
            throw Unusable(description: """
                the destination's secret is sealed under key \(keyID ?? "?"), and this process holds key \(keys.map(\.id).joined(separator: " and "))
                """)
        }
        do {
            return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key.key,
                                          authenticating: additionalData(destinationID)))
        } catch {
            throw Unusable(description: "the destination's sealed secret does not open under key \(key.id) (altered, or moved from another destination)")
        }
    }

    private static func additionalData(_ destinationID: String) -> [UInt8] {
        Array("audit-ingest stream secret v1 \(destinationID.lowercased())".utf8)
    }
}
