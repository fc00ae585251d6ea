import Evidence
import Foundation
import Testing

/// Keys, signed notes and checkpoints in C2SP's formats, and the log's frontier.
@Suite struct SignedNoteTests {
    /// The example key and note of Go's golang.org/x/mod/sumdb/note: a note signed here verifies
    /// there, and the other way round (Ed25519 is deterministic).
    static let goSigningKey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let goVerifierKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let goText = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let goSignatureLine = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

    @Test func notesMatchGosNotePackage() throws {
        let signer = try NoteSigningKey(parsing: Self.goSigningKey)
        #expect(signer.verifier.encoded == Self.goVerifierKey)
        #expect(signer.encoded == Self.goSigningKey)
        let note = try SignedNote(text: Self.goText, signedBy: [signer])
        #expect(note.encoded == Self.goText + "\n" + Self.goSignatureLine)
        let parsed = try SignedNote(parsing: note.encoded)
        #expect(parsed == note)
        #expect(parsed.isSigned(by: try NoteVerifierKey(parsing: Self.goVerifierKey)) == true)
    }

    @Test func anAlteredNoteOrAnotherKeyDoesNotVerify() throws {
        let signer = try NoteSigningKey(generatingWithName: "audit.example/log")
        let other = try NoteSigningKey(generatingWithName: "audit.example/log")
        let note = try SignedNote(text: "a\nb\n", signedBy: [signer])
        #expect(note.isSigned(by: signer.verifier) == true)
        #expect(note.isSigned(by: other.verifier) == nil, "no line of that key")
        var altered = note
        altered.text = "a\nc\n"
        #expect(altered.isSigned(by: signer.verifier) == false)
        #expect(throws: EvidenceFormatError.self) { try SignedNote(parsing: "a\nb\n") }
        #expect(throws: EvidenceFormatError.self) { try SignedNote(text: "a\n\nb\n", signedBy: [signer]) }
        #expect(throws: EvidenceFormatError.self) { try NoteSigningKey(generatingWithName: "two words") }
        #expect(throws: EvidenceFormatError.self) { try NoteVerifierKey(parsing: signer.encoded) }
        let generated = try NoteSigningKey(parsing: signer.encoded)
        #expect(generated.verifier == signer.verifier)
    }

    @Test func aCheckpointRoundTrips() throws {
        let checkpoint = LogCheckpoint(origin: "audit-ingest/1234", size: 7, root: MerkleTree.leaf([1, 2]),
                                       signedAt: Date(timeIntervalSince1970: 1_796_000_000.7))
        #expect(checkpoint.text.hasPrefix("audit-ingest/1234\n7\n"))
        #expect(checkpoint.text.hasSuffix("\ntime 2026-11-30T00:53:20Z\n"))
        #expect(try LogCheckpoint(parsing: checkpoint.text) == checkpoint)
        #expect(throws: EvidenceFormatError.self) { try LogCheckpoint(parsing: "origin\nseven\nAAAA\n") }
    }

    @Test func theFrontiersRootIsTheTreeHashAtEverySize() throws {
        var frontier = LogFrontier()
        var leaves: [TreeHash] = []
        #expect(frontier.root == MerkleTree.root([]))
        for index in 0..<70 {
            let leaf = BatchLog.leaf(batch: Int64(index), digest: MerkleTree.leaf([UInt8(index)]))
            leaves.append(leaf)
            frontier.append(leaf)
            #expect(frontier.root == MerkleTree.root(leaves), "size \(leaves.count)")
            #expect(try LogFrontier(size: frontier.size, bytes: frontier.bytes) == frontier)
        }
        #expect(throws: EvidenceFormatError.self) { try LogFrontier(size: 3, bytes: frontier.bytes) }
    }
}
