import AuditCore
import Crypto
import Foundation

/// The operator's redaction key, from which each tenant's HMAC key is derived (HKDF-SHA256 with
/// the tenant id as its info): one key file serves every tenant, and a value hashed for one
/// tenant does not match the same value of another.
package struct RedactionKey: Sendable {
    private let key: SymmetricKey
    /// The first 8 bytes of SHA-256 of the key, in hex: names the key (in `redaction_rule.key_id`
    /// and in errors) without revealing it.
    package let id: String

    package init(bytes: [UInt8]) {
        key = SymmetricKey(data: bytes)
        id = SHA256.hash(data: bytes).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// A new key, as the text of its file.
    package static func generate() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
    }

    package static func load(path: String) throws(KeyFile.Unusable) -> RedactionKey {
        RedactionKey(bytes: try KeyFile.read(path: path, what: "redaction key", generate: "audit-ingest tenant redaction key generate"))
    }

    /// The key `tenant`'s values are hashed under.
    package func tenantKey(_ tenant: UUIDValue) -> SymmetricKey {
        withUnsafeBytes(of: tenant.bytes) { info in
            HKDF<SHA256>.deriveKey(inputKeyMaterial: key, salt: Array("audit-ingest redaction".utf8), info: info, outputByteCount: 32)
        }
    }

    /// The HMAC state after the tenant's key: copied for each value, so the key is not hashed
    /// again per value.
    package func hasher(for tenant: UUIDValue) -> HMAC<SHA256> {
        HMAC<SHA256>(key: tenantKey(tenant))
    }

    /// What an `hmac` rule stores for `value`: `hmac-sha256:` and the HMAC in lower-case hex.
    package static func hash(_ value: UnsafeRawBufferPointer, with key: SymmetricKey) -> String {
        hash(value, continuing: HMAC<SHA256>(key: key))
    }

    /// The same, from `keyed` (`hasher(for:)`), written straight into the string's storage.
    package static func hash(_ value: UnsafeRawBufferPointer, continuing keyed: HMAC<SHA256>) -> String {
        var hmac = keyed
        hmac.update(data: value)
        let mac = hmac.finalize()
        let prefix = RedactionAction.hmacPrefix.utf8
        return String(unsafeUninitializedCapacity: prefix.count + 64) { text in
            var position = 0
            for byte in prefix {
                text[position] = byte
                position += 1
            }
            mac.withUnsafeBytes { bytes in
                for byte in bytes {
                    text[position] = hexDigit(byte >> 4)
                    text[position + 1] = hexDigit(byte & 0x0F)
                    position += 2
                }
            }
            return position
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x57 + nibble }
}
