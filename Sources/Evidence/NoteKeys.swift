import Crypto
import Foundation

/// What is wrong with a key, a note or a checkpoint, in words an operator can act on.
public struct EvidenceFormatError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The public half of an Ed25519 key in C2SP's signed-note format: a name, the 4-byte key id
/// (the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)) and the key. Its text form,
/// the one a verifier is given, is `name+hex(key id)+base64(0x01 ‖ public key)`.
public struct NoteVerifierKey: Sendable, Equatable {
    public let name: String
    public let keyID: UInt32
    public let publicKey: [UInt8]

    /// The Ed25519 signature type of signed notes.
    static let ed25519: UInt8 = 0x01

    public init(name: String, publicKey: [UInt8]) throws(EvidenceFormatError) {
        try Self.check(name: name)
        guard publicKey.count == 32 else { throw EvidenceFormatError("an Ed25519 public key is 32 bytes, not \(publicKey.count)") }
        self.name = name
        self.publicKey = publicKey
        self.keyID = Self.keyID(name: name, key: publicKey)
    }

    /// Parses `name+hex(key id)+base64(0x01 ‖ public key)`.
    public init(parsing text: String) throws(EvidenceFormatError) {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)  // base64 may hold "+"
        guard parts.count == 3, let id = UInt32(parts[1], radix: 16), parts[1].count == 8,
              let encoded = Data(base64Encoded: String(parts[2])), encoded.count == 33, encoded.first == Self.ed25519 else {
            throw EvidenceFormatError("not a verifier key (expected NAME+KEYID+BASE64, as `audit-ingest keys generate` writes)")
        }
        try self.init(name: String(parts[0]), publicKey: Array(encoded.dropFirst()))
        guard keyID == id else { throw EvidenceFormatError("the verifier key's id \(parts[1]) does not match its name and key") }
    }

    /// `name+hex(key id)+base64(0x01 ‖ public key)`.
    public var encoded: String { "\(name)+\(Self.hex(keyID))+\(Data([Self.ed25519] + publicKey).base64EncodedString())" }

    /// Whether `signature` (64 bytes) is this key's Ed25519 signature of `message`.
    public func isValidSignature(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    static func keyID(name: String, key: [UInt8]) -> UInt32 {
        let digest = Array(SHA256.hash(data: Array(name.utf8) + [0x0A, ed25519] + key))
        return digest.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func hex(_ id: UInt32) -> String {
        let digits = String(id, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// A key name is non-empty UTF-8 without spaces or `+` (signed-note).
    static func check(name: String) throws(EvidenceFormatError) {
        guard !name.isEmpty, !name.contains("+"), !name.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 }) else {
            throw EvidenceFormatError("a key name must be non-empty, without spaces or '+': \(name.debugDescription)")
        }
    }
}

/// The private half: signs notes. Its text form is `PRIVATE+KEY+name+hex(key id)+base64(0x01 ‖
/// the 32-byte seed)`, the form Go's golang.org/x/mod/sumdb/note reads.
public struct NoteSigningKey: Sendable {
    public let verifier: NoteVerifierKey
    private let key: Curve25519.Signing.PrivateKey

    public var name: String { verifier.name }

    /// A new random key.
    public init(generatingWithName name: String) throws(EvidenceFormatError) {
        key = Curve25519.Signing.PrivateKey()
        verifier = try NoteVerifierKey(name: name, publicKey: Array(key.publicKey.rawRepresentation))
    }

    /// Parses `PRIVATE+KEY+name+hex(key id)+base64(0x01 ‖ seed)`.
    public init(parsing text: String) throws(EvidenceFormatError) {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY", parts[3].count == 8, let id = UInt32(parts[3], radix: 16),
              let encoded = Data(base64Encoded: String(parts[4])), encoded.count == 33, encoded.first == NoteVerifierKey.ed25519,
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: encoded.dropFirst()) else {
            throw EvidenceFormatError("not a signing key (expected PRIVATE+KEY+NAME+KEYID+BASE64, as `audit-ingest keys generate` writes)")
        }
        self.key = key
        verifier = try NoteVerifierKey(name: String(parts[2]), publicKey: Array(key.publicKey.rawRepresentation))
        guard verifier.keyID == id else { throw EvidenceFormatError("the signing key's id does not match its name and key") }
    }

    /// `PRIVATE+KEY+name+hex(key id)+base64(0x01 ‖ seed)`: a secret.
    public var encoded: String {
        "PRIVATE+KEY+\(name)+\(NoteVerifierKey.hex(verifier.keyID))+"
            + Data([NoteVerifierKey.ed25519] + Array(key.rawRepresentation)).base64EncodedString()
    }

    /// The Ed25519 signature of `message` (deterministic, RFC 8032).
    public func signature(of message: [UInt8]) -> [UInt8] {
        // BoringSSL's Ed25519 cannot fail on a valid key.
        Array((try? key.signature(for: message)) ?? Data())
    }
}
