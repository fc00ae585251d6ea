import ArgumentParser
import AuditCore
import Evidence
import Foundation
import Operations

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prove that nothing stored was changed, removed or slipped in since it was sealed.",
        discussion: """
            Every flush seals what it commits (migration 0018): a Merkle subroot per tenant and month of its \
            rows and one of its dead letters, a batch root and digest, and a hash chain through each \
            ingest_offsets row it moved. verify recomputes all of it from the stored rows and reports each \
            mismatch by category (row changed, row missing, row inserted, dead letter changed/missing/inserted, \
            batch record changed, batch missing, chain gap, chain broken, tail cut, partition missing, operation \
            record changed, archive mismatch, log node changed, bad signature, checkpoint mismatch, not yet \
            integrated), naming \
            the table, batch, tenant and positions. Rows stored before sealing began are counted as unsealed; \
            months taken out by `partitions prune` are accounted as removed by the prune's attested record \
            (migration 0021), and with --archive-dir read back from their archives.

            --since, --tenant and --sample read fewer rows (batch records, chains, the log and prunes are \
            always checked whole).

            Exit status 0 when everything holds, 1 otherwise. Progress goes to stderr on a terminal. \
            See docs/tamper-evidence.md for what it can and cannot prove.
            """)
    @Option(name: .customLong("public-key-file"), help: ArgumentHelp("""
        A verifier key (PREFIX.pub of `audit-ingest keys generate`) checkpoints must be signed with, or a \
        keyring: one key per line, each optionally followed by from=TIME and until=TIME (RFC 3339), the \
        window in which it may sign. Repeat for a rotation. Without one, signatures are checked against the keys the database lists, which \
        whoever rewrites the database can rewrite too.
        """)) var publicKeyFiles: [String] = []
    @Option(help: "Check the log against every *.checkpoint file in this directory (what `checkpoint --checkpoint-dir` wrote).")
    var checkpointDir: String?
    @Option(name: .customLong("checkpoint"), help: "Check the log against this checkpoint file (repeatable).")
    var checkpointFiles: [String] = []
    @Option(help: ArgumentHelp("""
        The directory `partitions prune --archive` wrote to: each pruned month's archive is checked against \
        its attested prune (SHA-256, then every row hashed against the sealed subroots).
        """, valueName: "dir")) var archiveDir: String?
    @Option(help: ArgumentHelp("""
        Read only the rows of the batches a checkpoint held outside does not cover yet (and check the log \
        against it): the quick check after each checkpoint an auditor keeps.
        """, valueName: "checkpoint-file")) var since: String?
    @Option(help: ArgumentHelp("Read only this tenant's rows (dead letters are sealed across tenants and are not read).",
                               valueName: "tenant-id")) var tenant: String?
    @Option(help: ArgumentHelp("Read only this many groups (a tenant's rows of one batch in one month), chosen at random.",
                               valueName: "groups")) var sample: Int?
    @Option(help: "Seconds a committed batch may stay out of the log once checkpoints began.") var integrationGrace: Double = 600
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        var verification = Verification()
        verification.trustedKeys = try publicKeyFiles.flatMap(Keys.keyring(at:))
        verification.externalCheckpoints = try externalCheckpoints()
        verification.scope = try scope()
        if let since { verification.externalCheckpoints += try Self.read([since]) }
        verification.integrationGrace = integrationGrace
        if let archiveDir {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: archiveDir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--archive-dir \(archiveDir) is not a directory")
            }
            verification.archiveDirectory = archiveDir
        }
        if isatty(STDERR_FILENO) == 1 {
            var last = 0
            verification.progress = { rows in
                guard rows - last >= 100_000 else { return }
                last = rows
                FileHandle.standardError.write(Data("\rverified \(rows) rows".utf8))
            }
        }
        let report = try verification.run(on: try database.connect())
        if isatty(STDERR_FILENO) == 1 { FileHandle.standardError.write(Data("\r".utf8)) }
        if json {
            try printJSON(report)
        } else {
            print("""
                \(report.holds ? "verified" : "FAILED")\(report.scope == "everything" ? "" : " (\(report.scope))"): \(report.batches) batches, \(report.rowsVerified) rows and \
                \(report.deadLettersVerified) dead letters checked in \(String(format: "%.1f", report.seconds)) s \
                (\(Int(Double(report.rowsVerified + report.deadLettersVerified) / max(report.seconds, 0.001))) per second)
                """)
            if report.unsealedRows + report.unsealedDeadLetters > 0 {
                print("unsealed (stored before sealing began): \(report.unsealedRows) rows, \(report.unsealedDeadLetters) dead letters")
            }
            if report.storedCheckpoints + report.externalCheckpoints > 0 || report.logSize > 0 {
                print("""
                    log: \(report.logSize) batches, \(report.batchesNotIntegrated) not yet in it; checkpoints checked: \
                    \(report.storedCheckpoints) stored, \(report.externalCheckpoints) from files; signatures against \
                    \(report.keysFromDatabase ? "the keys the database lists (give --public-key-file to trust your own)" : "the keys given")
                    """)
            }
            if report.prunes > 0 {
                print("""
                    removed by partitions prune or tenant retention: \(report.groupsRemovedByPrune) groups in \(report.prunes) attested prunes; \
                    \(archiveDir == nil ? "archives not read (give --archive-dir)" : "\(report.archivesChecked) archives read back, \(report.archivedRowsVerified) rows")
                    """)
            }
            if report.groupsRemovedUnattested > 0 {
                print("removed by partitions prune before prunes were attested (audit_month_removed): \(report.groupsRemovedUnattested) groups")
            }
            for failure in report.failures { print(failure) }
            for (category, count) in report.unlisted.sorted(by: { $0.key < $1.key }) { print("\(category): \(count) more not listed") }
        }
        if !report.holds { throw ExitCode(1) }
    }

    /// The files of --checkpoint-dir (*.checkpoint, latest.checkpoint aside) and of --checkpoint.
    func externalCheckpoints() throws -> [Verification.ExternalCheckpoint] {
        var paths = checkpointFiles
        if let checkpointDir {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: checkpointDir) } catch {
                throw ValidationError("cannot read --checkpoint-dir \(checkpointDir): \(error.localizedDescription)")
            }
            paths += names.filter { $0.hasSuffix(".checkpoint") && !$0.hasPrefix(".") && $0 != "latest.checkpoint" }.sorted()
                .map { checkpointDir + "/" + $0 }
        }
        return try Self.read(paths)
    }

    static func read(_ paths: [String]) throws -> [Verification.ExternalCheckpoint] {
        try paths.map { path in
            do { return Verification.ExternalCheckpoint(name: path, note: try String(contentsOfFile: path, encoding: .utf8)) } catch {
                throw ValidationError("cannot read the checkpoint \(path): \(error.localizedDescription)")
            }
        }
    }

    /// --since, --tenant or --sample, at most one; else everything.
    func scope() throws -> Verification.Scope {
        guard [since != nil, tenant != nil, sample != nil].filter({ $0 }).count <= 1 else {
            throw ValidationError("give at most one of --since, --tenant and --sample")
        }
        if let tenant {
            guard let id = UUIDValue(tenant) else { throw ValidationError("--tenant \(tenant) is not a UUID") }
            return .tenant(id)
        }
        if let sample {
            guard sample >= 1 else { throw ValidationError("--sample must be at least 1 group") }
            return .sample(sample)
        }
        if let since {
            let checkpoint: LogCheckpoint
            do {
                checkpoint = try LogCheckpoint(parsing: SignedNote(parsing: String(contentsOfFile: since, encoding: .utf8)).text)
            } catch {
                throw ValidationError("--since \(since) is not a readable signed checkpoint: \(error)")
            }
            return .since(size: checkpoint.size)
        }
        return .everything
    }
}
