import ArgumentParser
import AuditCore
import Foundation
import Logging
import Postgres
import ServiceLifecycle
import Streaming

struct StreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Stream every event out to webhooks, Splunk HEC, NDJSON files and Kafka: in commit order per tenant, at least once.",
        discussion: """
            Destinations are rows in the database (`stream destination create`); `stream run` delivers to every \
            active one until SIGTERM. Each event carries its id: a receiver drops one it has already seen. A \
            failing destination is retried with backoff (1 s to 60 s) while the others go on; after its \
            --fail-after it is marked failed with its cursor kept, and nothing is skipped until `stream \
            destination resume` or `rewind`. See docs/streaming.md.
            """,
        subcommands: [Run.self, Destination.self, SecretKey.self], defaultSubcommand: Run.self)

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deliver to every active destination until SIGTERM or SIGINT.")
        @Option(help: ArgumentHelp("How often idle destinations look for new events (and new destinations are picked up).",
                                   valueName: "seconds"))
        var pollInterval: Double = 1
        @OptionGroup var secrets: StreamSecretOptions
        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard pollInterval >= 0.05, pollInterval <= 60 else { throw ValidationError("--poll-interval must be 0.05-60 seconds") }
        }

        func run() async throws {
            var configuration = try database.configuration()
            configuration.applicationName = "audit-ingest stream"
            let streamer = Streamer(configuration: Streamer.Configuration(database: configuration,
                                                                          pollInterval: .milliseconds(Int64(pollInterval * 1000)),
                                                                          secrets: try secrets.secrets()))
            try await ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [.init(service: streamer)], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "audit-ingest.services"))).run()
        }
    }

    struct Destination: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create, list, pause, resume, rewind, test and delete destinations.",
            subcommands: [Create.self, List.self, Pause.self, Resume.self, Rewind.self, Test.self, Delete.self])
    }
}

/// The operator's stream secret key, which seals the secrets tenants give their own destinations
/// (`admin serve` seals, `stream run` opens), and the development switch for local URLs.
struct StreamSecretOptions: ParsableArguments {
    @Option(help: ArgumentHelp("""
        The key that seals tenants' destination secrets (base64, mode 0600; `stream secret-key generate`). \
        admin serve needs it to take tenants' destinations, stream run to deliver to them. \
        Default: $STREAM_SECRET_KEY_FILE.
        """, valueName: "path"))
    var streamSecretKeyFile: String?
    @Option(help: ArgumentHelp("""
        During a key rotation, the key being replaced: secrets sealed under it still open, and new ones are sealed \
        under --stream-secret-key-file (`stream secret-key rotate`). Default: $STREAM_PREVIOUS_SECRET_KEY_FILE.
        """, valueName: "path"))
    var previousStreamSecretKeyFile: String?
    @Flag(help: """
        Let tenants' destinations use http:// and private or loopback addresses (development only: a tenant \
        could reach services inside your network).
        """)
    var allowLocalDestinations = false

    func secrets() throws -> Streamer.Secrets {
        let key = try Self.load(streamSecretKeyFile, variable: "STREAM_SECRET_KEY_FILE", option: "--stream-secret-key-file")
        let previous = try Self.load(previousStreamSecretKeyFile, variable: "STREAM_PREVIOUS_SECRET_KEY_FILE",
                                     option: "--previous-stream-secret-key-file")
        if previous != nil && key == nil {
            throw ValidationError("--previous-stream-secret-key-file needs --stream-secret-key-file: the new key, which seals")
        }
        return Streamer.Secrets(key: key, previousKey: previous, allowLocalDestinations: allowLocalDestinations)
    }

    /// The key file given by `path`, else by the environment `variable`; nil when neither is set.
    static func load(_ path: String?, variable: String, option: String) throws -> SealedSecret.Key? {
        guard let path = path ?? ProcessInfo.processInfo.environment[variable].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        return try load(path, option: option)
    }

    /// The key file at `path`; an unusable one is reported against `option`.
    static func load(_ path: String, option: String) throws -> SealedSecret.Key {
        do {
            return try SealedSecret.Key.load(path: path)
        } catch {
            throw ValidationError("\(option): \(error)")
        }
    }
}

extension StreamCommand {
    struct SecretKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "secret-key", abstract: "The key that seals tenants' destination secrets.", subcommands: [Generate.self, Rotate.self])

        struct Generate: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Write a new stream secret key to a file (mode 0600); an existing file is never replaced.",
                discussion: """
                    Give the file to `admin serve` and `stream run` (--stream-secret-key-file or \
                    STREAM_SECRET_KEY_FILE). Secrets sealed under it open only with it: keep a copy where you \
                    keep backups of secrets. A destination sealed under another key fails with a message naming both keys.
                    """)
            @Option(help: "Where to write the key.") var out: String

            func run() throws {
                try Keys.Generate.create(out, SealedSecret.Key.generate(), mode: 0o600)
                print("wrote \(out) (stream secret key \(try SealedSecret.Key.load(path: out).id); keep it secret)")
            }
        }
    }
}

extension StreamCommand.SecretKey {
    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seal every tenant destination secret under a new stream secret key, in one transaction.",
            discussion: """
                Each secret sealed under --from is opened and sealed again under --to, bound to the same \
                destination; secrets under other keys are left alone and counted. Either all move or none \
                does, and a second run changes nothing. Run it as the schema owner.

                So that no delivery fails on the way:
                  1. stream secret-key generate --out NEW
                  2. restart admin serve and stream run with --stream-secret-key-file NEW
                     --previous-stream-secret-key-file OLD (they open under either, seal under NEW)
                  3. stream secret-key rotate --from OLD --to NEW
                  4. restart them without --previous-stream-secret-key-file; destroy OLD and its copies
                A streamer that holds only OLD after step 3 fails those deliveries with a message naming \
                both keys and retries them; nothing is skipped.
                """)
        @Option(help: ArgumentHelp("The key the secrets are sealed under now.", valueName: "path")) var from: String
        @Option(help: ArgumentHelp("The key to seal them under.", valueName: "path")) var to: String
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let old = try StreamSecretOptions.load(from, option: "--from")
            let new = try StreamSecretOptions.load(to, option: "--to")
            let outcome: SecretKeyRotation.Outcome
            do {
                outcome = try SecretKeyRotation.reseal(from: old, to: new, on: try database.connect())
            } catch let failed as SecretKeyRotation.Failed {
                FileHandle.standardError.write(Data("Error: \(failed.description)\n".utf8))
                throw ExitCode(1)
            }
            print("sealed \(outcome.resealed) destination secret(s) again: key \(old.id) -> \(new.id)")
            for (key, count) in outcome.byKey.sorted(by: { $0.key < $1.key }) {
                print("  under key \(key): \(count)\(key == new.id ? " (the new key)" : key == old.id ? " (the old key)" : " (another key: left alone)")")
            }
        }
    }
}

/// A destination named on the command line: by id, or by name with --tenant for a tenant's own.
struct DestinationReference: ParsableArguments {
    @Argument(help: "The destination's id or name.") var destination: String
    @Option(help: "The tenant whose destination the name is (omit for an every-tenant destination).") var tenant: String?

    /// Finds the destination, runs `action` on it and prints what it returns.
    func act(on database: DatabaseOptions, _ action: (StreamDestination, PostgresConnection) throws -> String) throws {
        let connection = try database.connect()
        print(try action(try find(on: connection), connection))
    }

    func find(on connection: PostgresConnection) throws -> StreamDestination {
        guard let found = try StreamDestinations.find(destination, tenantID: tenant?.lowercased(), on: connection) else {
            FileHandle.standardError.write(Data("Error: no destination \(destination)\(tenant.map { " of tenant \($0)" } ?? ""); see `stream destination list`\n".utf8))
            throw ExitCode(2)
        }
        return found
    }
}

extension StreamCommand.Destination {
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a destination; prints it (with its id) as JSON.")
        @Option(help: "A name, unique per tenant: letters, digits, '.', '_', '-'.") var name: String
        @Option(help: """
            webhook (JSON batches, HMAC-SHA256 signed with the secret), splunk-hec (the secret is the HEC token), \
            file (NDJSON segments in a directory, finished by --rotate-bytes and --rotate-seconds) or kafka (one \
            message per event, keyed by tenant id; the secret, if any, holds librdkafka properties, one name=value per line).
            """)
        var kind: String = "webhook"
        @Option(help: """
            Where to POST (http:// or https://; Splunk: .../services/collector/event); for a file destination the \
            directory on the streamer's host (file:///var/lib/audit-ingest/out); for kafka the brokers and topic \
            (kafka://broker1:9092,broker2:9092/audit-events). Keep secrets out of it.
            """)
        var url: String
        @Option(help: ArgumentHelp("file: finish a segment once it holds this many bytes (at least 1024).", valueName: "bytes"))
        var rotateBytes: Int64 = 64 << 20
        @Option(help: ArgumentHelp("file: finish a segment once its first event is this old, even if idle.", valueName: "seconds"))
        var rotateSeconds: Int = 300
        @Option(help: "Only this tenant's events (default: every tenant's).") var tenant: String?
        @Option(help: ArgumentHelp("""
            Where the streamer reads the secret: env:NAME (its environment) or file:PATH. The database stores the \
            reference only, never the secret. kafka: the librdkafka properties, one name=value per line \
            (security.protocol, sasl.*, ssl.*).
            """, valueName: "reference"))
        var secret: String?
        @Option(help: "Events per delivery, 1-1000.") var batchSize: Int = 500
        @Option(help: ArgumentHelp("Mark the destination failed after deliveries have failed this long.", valueName: "seconds"))
        var failAfter: Int = 3600
        @Option(help: "now: only events stored from now on; beginning: every stored event first.") var from: String = "now"
        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard ["webhook", "splunk-hec", "file", "kafka"].contains(kind) else {
                throw ValidationError("--kind must be webhook, splunk-hec, file or kafka")
            }
            if kind == "file" {
                guard url.hasPrefix("file:///"), url.count > 8 else {
                    throw ValidationError("--url of a file destination is file:///DIRECTORY (an absolute path on the streamer's host)")
                }
                guard secret == nil else { throw ValidationError("a file destination has no --secret") }
                guard (1024...(1 << 40)).contains(rotateBytes) else { throw ValidationError("--rotate-bytes must be 1024 to 1 TiB") }
                guard (1...86_400).contains(rotateSeconds) else { throw ValidationError("--rotate-seconds must be 1-86400") }
            } else if kind == "kafka" {
                do { _ = try KafkaTopicDestination(url: url) } catch { throw ValidationError("--url: \(error)") }
            } else {
                guard url.hasPrefix("https://") || url.hasPrefix("http://") else { throw ValidationError("--url must start with https:// or http://") }
            }
            guard (1...1000).contains(batchSize) else { throw ValidationError("--batch-size must be 1-1000") }
            guard failAfter >= 1 else { throw ValidationError("--fail-after must be at least 1 second") }
            guard from == "now" || from == "beginning" else { throw ValidationError("--from must be now or beginning") }
            if let secret, !(secret.hasPrefix("env:") || secret.hasPrefix("file:/")) {
                throw ValidationError("--secret takes a reference, env:NAME or file:/PATH, not the secret itself")
            }
            if let tenant, UUIDValue(tenant) == nil { throw ValidationError("--tenant must be a tenant id (a UUID)") }
        }

        func run() throws {
            let kind: StreamDestination.Kind = switch self.kind {
            case "file": .file
            case "kafka": .kafka
            case "splunk-hec": .splunkHEC
            default: .webhook
            }
            let destination = try StreamDestinations.create(StreamDestinations.New(
                name: name, tenantID: tenant?.lowercased(), kind: kind, url: url,
                secretReference: secret, batchSize: batchSize, failAfter: .seconds(failAfter), fromNow: from == "now",
                rotateBytes: kind == .file ? rotateBytes : nil, rotateSeconds: kind == .file ? rotateSeconds : nil),
                on: try database.connect())
            if kind == .file, let directory = URL(string: url)?.path, !FileManager.default.isWritableFile(atPath: directory) {
                FileHandle.standardError.write(Data("""
                    warning: \(directory) is not a directory this user may write; the streamer fails deliveries to it until it is
                    (`stream destination test \(name)` checks it from the streamer's host)\n
                    """.utf8))
            }
            try printJSON(DestinationView(destination))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Destinations as JSON: state and why, events delivered, the last delivery; URLs without query or password.")
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let connection = try database.connect()
            let totals = try connection.execute("""
                SELECT destination_id::text, sum(delivered)::text, max(delivered_at)::text FROM stream_cursor GROUP BY 1
                """).rows.reduce(into: [String: (String?, String?)]()) { $0[$1[0] ?? ""] = ($1[1], $1[2]) }
            try printJSON(try StreamDestinations.all(on: connection).map { destination in
                var view = DestinationView(destination)
                view.delivered = totals[destination.id]?.0.flatMap { Int($0) } ?? 0
                view.lastDelivery = totals[destination.id]?.1
                return view
            })
        }
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop delivering to it (after the batch in flight); the cursor stays.")
        @OptionGroup var reference: DestinationReference
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            try reference.act(on: database) { destination, connection in
                try StreamDestinations.setState(.paused, reason: "paused by an operator", id: destination.id, on: connection)
                return "paused \(destination.name) (\(destination.id))"
            }
        }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deliver again (paused or failed), from its cursor: nothing is skipped.")
        @OptionGroup var reference: DestinationReference
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            try reference.act(on: database) { destination, connection in
                try StreamDestinations.setState(.active, reason: nil, id: destination.id, on: connection)
                return "resumed \(destination.name) (\(destination.id)), from its cursor"
            }
        }
    }

    struct Rewind: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deliver again every event ingested at or after a time (reads every row's ingested_at once).")
        @OptionGroup var reference: DestinationReference
        @Option(help: ArgumentHelp("beginning, or an RFC 3339 time (2026-12-01T00:00:00Z).", valueName: "time")) var to: String
        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard to == "beginning" || RFC3339.unixMicroseconds(to) != nil else {
                throw ValidationError("--to must be beginning or an RFC 3339 time with an offset, e.g. 2026-12-01T00:00:00Z")
            }
        }

        func run() throws {
            try reference.act(on: database) { destination, connection in
                try StreamDestinations.rewind(id: destination.id, since: to == "beginning" ? nil : to, on: connection)
                return "rewound \(destination.name) (\(destination.id)) to \(to); its events are delivered again, with the same ids"
            }
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: """
                Send one test delivery with no events (webhook) or one test event (Splunk HEC; Kafka, with the header \
                audit-ingest-test: 1, once the brokers acknowledged it), or check that a file destination's directory is \
                writable; exit 1 if not.
                """)
        @OptionGroup var reference: DestinationReference
        @OptionGroup var secrets: StreamSecretOptions
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let secrets = try self.secrets.secrets()
            let destination = try reference.find(on: try database.connect())
            do {
                try await DeliveryTest.send(to: destination, secrets: secrets)
                print("delivered a test to \(destination.name) (\(StreamDestination.shown(destination.url)))")
            } catch {
                FileHandle.standardError.write(Data("Error: \(destination.name) refused the test: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a destination and its cursors.")
        @OptionGroup var reference: DestinationReference
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            try reference.act(on: database) { destination, connection in
                _ = try StreamDestinations.delete(id: destination.id, on: connection)
                return "deleted \(destination.name) (\(destination.id))"
            }
        }
    }
}

/// A destination as `create` and `list` print it.
struct DestinationView: Encodable {
    var id: String
    var name: String
    var tenantID: String?
    var kind: String
    var url: String
    var secret: String?
    /// `tenant`: made by the tenant's token; its secret is sealed and never shown (`secret` says "sealed").
    var managedBy: String
    var rotateBytes: Int64?
    var rotateSeconds: Int?
    var batchSize: Int
    var failAfterSeconds: Int64
    var state: String
    var stateReason: String?
    var delivered: Int?
    var lastDelivery: String?

    enum CodingKeys: String, CodingKey {
        case id, name, tenantID = "tenant_id", kind, url, secret, managedBy = "managed_by", rotateBytes = "rotate_bytes", rotateSeconds = "rotate_seconds", batchSize = "batch_size", failAfterSeconds = "fail_after_seconds"
        case state, stateReason = "state_reason", delivered, lastDelivery = "last_delivery"
    }

    init(_ destination: StreamDestination) {
        id = destination.id
        name = destination.name
        tenantID = destination.tenantID
        kind = destination.kind == .splunkHEC ? "splunk-hec" : destination.kind.rawValue
        rotateBytes = destination.rotateBytes
        rotateSeconds = destination.rotateSeconds
        url = StreamDestination.shown(destination.url)
        secret = destination.secretReference ?? (destination.sealedSecret != nil ? "sealed" : nil)
        managedBy = destination.managedBy.rawValue
        batchSize = destination.batchSize
        failAfterSeconds = destination.failAfter.components.seconds
        state = destination.state.rawValue
        stateReason = destination.stateReason
    }
}
