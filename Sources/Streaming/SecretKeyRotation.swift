import Foundation
import Postgres

/// Moves tenants' sealed destination secrets from one stream secret key to another
/// (`stream secret-key rotate`): each is opened under the old key and sealed again under the new
/// one, bound to the same destination, all in one transaction. Either every secret under the old
/// key moves, or none does.
///
/// The order that keeps every destination deliverable: give `admin serve` and `stream run` the
/// new key with the old one as `--previous-stream-secret-key-file` (they open under either and
/// seal under the new), rotate, then restart them without the previous key and destroy it.
public enum SecretKeyRotation {
    public struct Outcome: Sendable, Equatable {
        /// Secrets sealed again under the new key by this run.
        public var resealed: Int
        /// Secrets now under each key (the new key's count includes `resealed`).
        public var byKey: [String: Int]
    }

    public struct Failed: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Re-seals every secret under `old` with `new`; rows under other keys are left alone and
    /// counted. Running it again finds nothing under `old` and changes nothing.
    public static func reseal(from old: SealedSecret.Key, to new: SealedSecret.Key, on connection: PostgresConnection) throws -> Outcome {
        guard old.id != new.id else { throw Failed(description: "the old and the new key are the same key (\(old.id))") }
        return try connection.transaction { connection in
            let sealed = try connection.query("""
                SELECT id::text, encode(secret_sealed, 'base64') FROM stream_destination
                WHERE secret_key_id = $1 ORDER BY id FOR UPDATE
                """, [old.id]).rows
            for row in sealed {
                guard let id = row[0], let text = row[1], let bytes = Data(base64Encoded: text, options: .ignoreUnknownCharacters) else { continue }
                let secret: [UInt8]
                do {
                    secret = try SealedSecret.open(Array(bytes), keyID: old.id, destinationID: id, with: [old])
                } catch {
                    throw Failed(description: "destination \(id): \(error); nothing was changed")
                }
                let resealed = try SealedSecret.seal(secret, destinationID: id, with: new)
                try connection.query("""
                    UPDATE stream_destination SET secret_sealed = decode($2, 'base64'), secret_key_id = $3, updated_at = now()
                    WHERE id = $1::uuid
                    """, [id, Data(resealed).base64EncodedString(), new.id])
            }
            let counts = try connection.execute("""
                SELECT secret_key_id, count(*)::text FROM stream_destination WHERE secret_key_id IS NOT NULL GROUP BY 1
                """).rows
            return Outcome(resealed: sealed.count, byKey: counts.reduce(into: [:]) { byKey, row in
                if let key = row[0], let count = row[1].flatMap({ Int($0) }) { byKey[key] = count }
            })
        }
    }
}
