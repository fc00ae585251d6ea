import ArgumentParser
import Foundation
import Operations

/// A tenant named on the command line by its id.
struct TenantOption: ParsableArguments {
    @Option(help: "The tenant's id (UUID).") var tenant: String

    func validate() throws {
        guard UUID(uuidString: tenant) != nil else { throw ValidationError("--tenant \(tenant) is not a tenant id (expected a UUID)") }
    }

    var id: String { tenant.lowercased() }
}

/// Runs `body`, reporting an operations error as what was wrong (exit 64).
private func reporting<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as OperationsError { throw ValidationError(error.message) }
}

extension Tenant {
    struct Retention: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A tenant's own retention, shorter than the global prune: set, clear, list, apply.",
            discussion: """
                A tenant's events older than its days are deleted from the months other tenants share, by \
                `tenant retention apply` or as the first step of `partitions prune`. Whole sealed groups go (one \
                batch's events of the tenant in a month) once their newest event is past the cutoff, each month's \
                removal recorded, in its transaction, for `verify` and the signed log. A legal hold (`tenant hold`) \
                keeps what it covers. Ingest goes on meanwhile.
                """,
            subcommands: [Set.self, Clear.self, List.self, Apply.self])

        struct Set: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Keep the tenant's events N days (1-36500); prints the setting.")
            @OptionGroup var tenant: TenantOption
            @Option(help: "Days to keep.") var days: Int
            @OptionGroup var database: DatabaseOptions

            func run() throws {
                try printJSON(try reporting { try TenantRetention.set(tenant: tenant.id, days: days, on: try database.connect()) })
            }
        }

        struct Clear: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove the tenant's own retention (the global prune still applies).")
            @OptionGroup var tenant: TenantOption
            @OptionGroup var database: DatabaseOptions

            func run() throws {
                let cleared = try TenantRetention.clear(tenant: tenant.id, on: try database.connect())
                print(cleared ? "cleared the retention of tenant \(tenant.id)" : "tenant \(tenant.id) had no retention of its own")
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every tenant's own retention, as JSON.")
            @OptionGroup var database: DatabaseOptions
            func run() throws { try printJSON(try TenantRetention.list(on: try database.connect())) }
        }

        struct Apply: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Delete each tenant's events past its retention now; prints what went and what was kept, and why.")
            @Flag(help: "Only report what would be deleted.") var dryRun = false
            @OptionGroup var database: DatabaseOptions
            func run() throws {
                try printJSON(try reporting { try TenantRetention.apply(dryRun: dryRun, on: try database.connect()) })
            }
        }
    }

    struct Hold: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Legal holds: while one is placed, nothing of its tenant in its range is pruned or deleted.",
            discussion: """
                A hold covers the tenant's events with times in [--from, --until), or all of them. The tenant's \
                retention skips what it covers, and `partitions prune` keeps a month holding such events and \
                reports it under "kept". Released holds stay listed, with who released them and when.
                """,
            subcommands: [Place.self, Release.self, List.self])

        struct Place: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Place a hold; prints it (with its id) as JSON.")
            @OptionGroup var tenant: TenantOption
            @Option(help: "Why (a matter or case reference); 1-500 characters, kept with the hold.") var reason: String
            @Option(help: ArgumentHelp("Hold events from this time on (2026-01-31 or 2026-01-31T12:00:00Z); default: all.", valueName: "time"))
            var from: String?
            @Option(help: ArgumentHelp("Hold events before this time; default: all.", valueName: "time")) var until: String?
            @OptionGroup var database: DatabaseOptions

            func run() throws {
                try printJSON(try reporting {
                    try LegalHolds.place(tenant: tenant.id, reason: reason, from: from, until: until, on: try database.connect())
                })
            }
        }

        struct Release: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Release a hold by its id (it stays listed with --all).")
            @Argument(help: "The hold's id (`tenant hold list`).") var id: Int64
            @OptionGroup var database: DatabaseOptions

            func run() throws {
                guard try LegalHolds.release(id: id, on: try database.connect()) else {
                    FileHandle.standardError.write(Data("Error: no hold \(id) is in place; see `tenant hold list --all`\n".utf8))
                    throw ExitCode(2)
                }
                print("released hold \(id)")
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Holds in place, as JSON.")
            @Flag(help: "Include released holds.") var all = false
            @OptionGroup var database: DatabaseOptions
            func run() throws { try printJSON(try LegalHolds.list(includeReleased: all, on: try database.connect())) }
        }
    }
}
