import ArgumentParser
import Foundation
import Operations
import Pipeline

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

/// The redaction key `hmac` rules hash under: ingest needs it when such a rule is in force.
struct RedactionKeyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("""
        The redaction key (base64, mode 0600; `tenant redaction key generate`), which tenant redaction rules \
        of action hmac hash under. Needed by ingest while such a rule is in force. Default: $REDACTION_KEY_FILE.
        """, valueName: "path"))
    var redactionKeyFile: String?

    /// The key given, else nil.
    func load() throws -> RedactionKey? {
        guard let path = redactionKeyFile ?? ProcessInfo.processInfo.environment["REDACTION_KEY_FILE"].flatMap({ $0.isEmpty ? nil : $0 })
        else { return nil }
        do { return try RedactionKey.load(path: path) } catch { throw ValidationError("--redaction-key-file: \(error)") }
    }

    func required() throws -> RedactionKey {
        guard let key = try load() else {
            throw ValidationError("this needs the redaction key: --redaction-key-file or REDACTION_KEY_FILE (`tenant redaction key generate` writes one)")
        }
        return key
    }
}

extension Tenant {
    struct Redaction: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Redaction at write time: fields dropped, masked or replaced by a keyed HMAC before events are stored.",
            discussion: """
                A rule names a field, ip_address, user_agent or custom_metadata.PATH (a dot path of keys inside the \
                metadata; it passes through arrays), and an action:
                  drop  the member is not stored (ip_address and user_agent are stored as null)
                  mask  the value is stored as "[masked]"; ip_address keeps its network (IPv4 /24, IPv6 /48)
                  hmac  the value is stored as "hmac-sha256:<hex>", an HMAC under the tenant's key, derived from the \
                redaction key; `tenant redaction hash` gives it for a value, to search by
                A rule is for one tenant (--tenant) or every tenant (--all-tenants); a tenant's rule wins over the \
                rule for every tenant on the same field. Ingest reads the rules at start and every 10 s: events \
                stored before a rule stay as they are. Dead letters of a tenant with rules keep the event redacted \
                the same way (a message whose tenant is not known, by every tenant's rules), or, when it is not JSON \
                the rules can be applied to, no payload (its size is in the detail). With --format, the rules on \
                ip_address and user_agent also reach the source record kept in custom_metadata.record. \
                A tenant sees the rules that apply to it at GET /v1/tenants/{id}/rules.
                """,
            subcommands: [Set.self, Clear.self, List.self, Hash.self, Key.self])

        /// --tenant ID or --all-tenants.
        struct Scope: ParsableArguments {
            @Option(help: "The tenant's id (UUID).") var tenant: String?
            @Flag(help: "The rule for every tenant.") var allTenants = false

            func validate() throws {
                guard (tenant == nil) != !allTenants else { throw ValidationError("give --tenant ID or --all-tenants") }
                if let tenant, UUID(uuidString: tenant) == nil {
                    throw ValidationError("--tenant \(tenant) is not a tenant id (expected a UUID)")
                }
            }

            var id: String? { tenant?.lowercased() }
        }

        struct Set: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Set the rule for a field (replacing its rule); prints it as JSON.")
            @OptionGroup var scope: Scope
            @Option(help: "ip_address, user_agent or custom_metadata.PATH.") var field: String
            @Option(help: "drop, mask or hmac.") var action: String
            @OptionGroup var key: RedactionKeyOptions
            @OptionGroup var database: DatabaseOptions

            func run() throws {
                let key = action == "hmac" ? try key.required() : nil
                try printJSON(try reporting {
                    try RedactionRuleStore.set(tenant: scope.id, field: field, action: action, key: key, on: try database.connect())
                })
            }
        }

        struct Clear: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove the rule for a field; events stored meanwhile stay as stored.")
            @OptionGroup var scope: Scope
            @Option(help: "The rule's field.") var field: String
            @OptionGroup var database: DatabaseOptions

            func run() throws {
                let whose = scope.id.map { "tenant \($0)" } ?? "every tenant"
                let cleared = try RedactionRuleStore.clear(tenant: scope.id, field: field, on: try database.connect())
                print(cleared ? "cleared the rule for \(field) of \(whose)" : "\(whose) had no rule for \(field)")
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every redaction rule, those for every tenant first, as JSON.")
            @OptionGroup var database: DatabaseOptions
            func run() throws { try printJSON(try RedactionRuleStore.list(on: try database.connect())) }
        }

        struct Hash: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print what an hmac rule stores for a value of a tenant's, to search by it.",
                discussion: """
                    Reads the value from standard input (one line, without its newline), so it reaches neither argv \
                    nor shell history. Then search the tenant's events by it, e.g. \
                    events search --tenant ID --metadata '{"card": {"number": "hmac-sha256:..."}}'.
                    """)
            @OptionGroup var tenant: TenantOption
            @Flag(help: "The value is JSON (42, true, {\"a\": 1}); a string is hashed as its text either way.") var json = false
            @OptionGroup var key: RedactionKeyOptions

            func run() throws {
                guard let line = readLine(strippingNewline: true) else {
                    throw ValidationError("give the value on standard input (one line)")
                }
                print(try reporting { try RedactionRuleStore.hash(line, asJSON: json, tenant: tenant.id, key: try key.required()) })
            }
        }

        struct Key: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "The redaction key.", subcommands: [Generate.self])

            struct Generate: ParsableCommand {
                static let configuration = CommandConfiguration(
                    abstract: "Write a new redaction key to a file (mode 0600); an existing file is never replaced.",
                    discussion: """
                        Give the file to backfill and consume (--redaction-key-file or REDACTION_KEY_FILE) and to \
                        `tenant redaction set --action hmac`. Values hashed under it can be found only with it: keep a \
                        copy where you keep backups of secrets.
                        """)
                @Option(help: "Where to write the key.") var out: String

                func run() throws {
                    try Keys.Generate.create(out, RedactionKey.generate(), mode: 0o600)
                    print("wrote \(out) (redaction key \(try RedactionKey.load(path: out).id); keep it secret)")
                }
            }
        }
    }
}
