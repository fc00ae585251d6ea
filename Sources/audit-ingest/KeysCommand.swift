import ArgumentParser
import Evidence
import Foundation

/// `audit-ingest keys`: the Ed25519 keys that sign checkpoints of the batch log.
struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ed25519 keys that sign checkpoints of the batch log (C2SP signed notes).",
        subcommands: [Generate.self, History.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new key pair: PREFIX.key (the signing key, mode 0600) and PREFIX.pub (the verifier key).",
            discussion: """
                Give PREFIX.key to `audit-ingest checkpoint --signing-key-file` and keep it where only the \
                integrator reads it, never in the database. Give PREFIX.pub to whoever verifies: \
                `audit-ingest verify --public-key-file`, auditors and tenants. Existing files are never replaced.

                Rotation: sign with the old and the new key together (two --signing-key-file options) for \
                as long as verifiers need to move to the new key, then with the new key alone. Then retire the \
                old key in the verifiers' keyring by appending until=TIME to its line (`keys history` prints \
                when each key signed): a checkpoint it signs after that time fails verify.
                """)
        @Option(help: "The key's name, in each signature line (no spaces or '+').") var name: String = "audit-ingest"
        @Option(name: .customLong("out"), help: "Where to write: PREFIX.key and PREFIX.pub.") var prefix: String

        func run() throws {
            let key: NoteSigningKey
            do { key = try NoteSigningKey(generatingWithName: name) } catch { throw ValidationError("--name: \(error)") }
            let privatePath = prefix + ".key", publicPath = prefix + ".pub"
            for path in [privatePath, publicPath] where FileManager.default.fileExists(atPath: path) {
                throw ValidationError("\(path) exists; keys are never overwritten (choose another --out)")
            }
            try Self.create(privatePath, key.encoded + "\n", mode: 0o600)
            try Self.create(publicPath, key.verifier.encoded + "\n", mode: 0o644)
            print("wrote \(privatePath) (signing key, keep it secret) and \(publicPath):")
            print(key.verifier.encoded)
        }

        static func create(_ path: String, _ text: String, mode: mode_t) throws {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
            guard descriptor >= 0 else { throw ValidationError("cannot create \(path): \(String(cString: strerror(errno)))") }
            defer { close(descriptor) }
            let bytes = Array(text.utf8)
            guard bytes.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == bytes.count, fsync(descriptor) == 0 else {
                throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The signing key in `path`, refused when others than its owner may read it.
    static func signingKey(at path: String) throws -> NoteSigningKey {
        var status = stat()
        guard stat(path, &status) == 0 else { throw ValidationError("cannot read the signing key \(path): \(String(cString: strerror(errno)))") }
        guard status.st_mode & 0o077 == 0 else {
            throw ValidationError("the signing key \(path) may be read by others (mode \(String(status.st_mode & 0o777, radix: 8))): chmod 600 \(path)")
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        do { return try NoteSigningKey(parsing: text) } catch { throw ValidationError("\(path): \(error)") }
    }

    /// The keys of a keyring file (a `.pub` is one), with their validity windows.
    static func keyring(at path: String) throws -> [TrustedKey] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw ValidationError("cannot read \(path): \(error.localizedDescription)") }
        do { return try TrustedKey.keyring(parsing: text) } catch { throw ValidationError("\(path): \(error)") }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the keys that signed checkpoints, as keyring lines with the window each signed in.",
            discussion: """
                One line per key: the verifier key, from= its first and until= its last checkpoint, as the \
                database records them (audit_signing_key). A starting point for the keyring verifiers keep: \
                check each key against what you hold before trusting the file, since whoever can rewrite the \
                database can rewrite this list; leave until= off a key still in use.
                """)
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let rows = try database.connect().execute("""
                SELECT verifier_key, to_char(first_signed AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       to_char(last_signed AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                FROM audit_signing_key ORDER BY first_signed, verifier_key
                """).rows
            guard !rows.isEmpty else { throw ValidationError("no checkpoint has been signed yet: run audit-ingest checkpoint") }
            print("# keys that signed checkpoints of this database, from its audit_signing_key")
            for row in rows { print("\(row[0] ?? "") from=\(row[1] ?? "") until=\(row[2] ?? "")") }
        }
    }
}
