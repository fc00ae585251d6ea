import ArgumentParser
import Evidence
import Foundation

/// `audit-ingest proof verify`: a tenant's offline check of an event proof.
struct ProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proof",
        abstract: "Check event proofs offline.",
        subcommands: [VerifyProof.self, CheckConsistency.self])
}

struct VerifyProof: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that an event is in the signed batch log, with the log's public key and nothing else.",
        discussion: """
            PROOF is what GET /v1/tenants/{tenant_id}/events/{event_id}/proof answered (a file, or - for \
            stdin). Needs no database and no network: it recomputes the event's leaf from the values in \
            the proof, climbs through its group, its batch and the log to the checkpoint's root, and checks \
            the checkpoint's Ed25519 signature with --public-key-file (the operator's .pub from \
            `audit-ingest keys generate`, given to you out of band). Prints the event as it was sealed and \
            exits 0 when every step holds; names the step that does not and exits 1 otherwise.
            """)
    @Argument(help: "The proof's JSON (- for stdin).") var proof: String
    @Option(name: .customLong("public-key-file"), help: "A verifier key (NAME+ID+KEY) to trust; repeat for several.")
    var publicKeyFiles: [String] = []
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard !publicKeyFiles.isEmpty else {
            throw ValidationError("give the log's public key: --public-key-file FILE (the operator's .pub of `audit-ingest keys generate`)")
        }
    }

    func run() throws {
        let keys = try publicKeyFiles.flatMap(Keys.keyring(at:)).map(\.key)
        let data: Data
        do {
            data = proof == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: proof))
        } catch {
            throw ValidationError("cannot read \(proof): \(error.localizedDescription)")
        }
        let parsed: EventProof
        do {
            parsed = try EventProof.decode(data)
        } catch {
            Self.fail("\(proof) is not an event proof: \(error)")
        }
        do {
            let proven = try parsed.check(keys: keys)
            let event = proven.event
            if json {
                try printJSON(["holds": "true", "event_id": event.id, "tenant_id": event.tenantID, "action": event.action,
                               "timestamp": ISO8601DateFormatter().string(from: event.timestamp), "batch": String(proven.batchID),
                               "log_index": String(proven.logIndex), "tree_size": String(proven.checkpoint.size),
                               "signed_by": proven.signer.encoded])
            } else {
                print("""
                    holds: event \(event.id) of tenant \(event.tenantID) is in the log
                      sealed: \(event.action) by \(event.userID ?? "-") on \(event.resourceType ?? "-")/\(event.resourceID ?? "-"), \
                    \(event.severity), from \(event.ipAddress ?? "-"), at \(ISO8601DateFormatter().string(from: event.timestamp))
                      metadata: \(event.customMetadata ?? "null")
                      batch \(proven.batchID), log position \(proven.logIndex) of checkpoint \(proven.checkpoint.size) \
                    (\(proven.checkpoint.origin)), signed \(ISO8601DateFormatter().string(from: proven.checkpoint.signedAt)) by \(proven.signer.name)
                    """)
            }
        } catch {
            Self.fail("does not hold: \(error)")
        }
    }

    private static func fail(_ message: String) -> Never { proofFailed("proof verify", message) }
}

struct CheckConsistency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consistency",
        abstract: "Check that the batch log of a newer checkpoint extends the one you hold.",
        discussion: """
            PROOF is what GET /v1/checkpoint/consistency?from=SIZE answered (a file, or - for stdin): two \
            signed checkpoints and the RFC 6962 proof that the first log is a prefix of the second, so \
            nothing the first covered was changed, reordered or removed. With --held, the first must be \
            the checkpoint you kept (the same tree size and root). Offline; exit 0 when it holds, 1 otherwise.
            """)
    @Argument(help: "The proof's JSON (- for stdin).") var proof: String
    @Option(name: .customLong("public-key-file"), help: "A verifier key (NAME+ID+KEY) to trust; repeat for several.")
    var publicKeyFiles: [String] = []
    @Option(help: "A checkpoint you kept earlier (a signed note file, e.g. from an earlier proof).") var held: String?

    func validate() throws {
        guard !publicKeyFiles.isEmpty else {
            throw ValidationError("give the log's public key: --public-key-file FILE (the operator's .pub of `audit-ingest keys generate`)")
        }
    }

    func run() throws {
        let keys = try publicKeyFiles.flatMap(Keys.keyring(at:)).map(\.key)
        let data = proof == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: proof))
        let parsed: ConsistencyProof
        do { parsed = try ConsistencyProof.decode(data) } catch { proofFailed("proof consistency", "\(proof) is not a consistency proof: \(error)") }
        do {
            let (first, second) = try parsed.check(keys: keys)
            if let held {
                let kept = try LogCheckpoint(parsing: SignedNote(parsing: String(contentsOfFile: held, encoding: .utf8)).text)
                guard kept.size == first.size, kept.root == first.root, kept.origin == first.origin else {
                    proofFailed("proof consistency", """
                        does not hold: the checkpoint held (\(kept.size) batches, root \(kept.root.base64)) is not the proof's first \
                        (\(first.size) batches, root \(first.root.base64))
                        """)
                }
            }
            print("holds: the log of \(second.size) batches extends the log of \(first.size) (\(first.origin))")
        } catch let error as EvidenceFormatError {
            proofFailed("proof consistency", "does not hold: \(error)")
        }
    }
}

private func proofFailed(_ command: String, _ message: String) -> Never {
    FileHandle.standardError.write(Data("\(command): \(message)\n".utf8))
    Foundation.exit(1)
}
