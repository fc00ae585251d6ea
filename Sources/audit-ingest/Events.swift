import ArgumentParser
import AuditRead
import Foundation
import Postgres

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a tenant's audit events: search (one page) and export (everything matching).",
        discussion: """
            Both run as the audit_reader role with app.tenant_id set for their transaction only, like the \
            HTTP read API, so row-level security applies. The connecting role must be a member of audit_reader \
            (migrate makes the schema owner one).
            """,
        subcommands: [Search.self, Export.self])

    /// The filters, under the HTTP API's parameter names.
    struct Filters: ParsableArguments {
        @Option(help: "The tenant's id (UUID).") var tenant: String
        @Option(help: ArgumentHelp("Events at or after this RFC 3339 time.", valueName: "time")) var since: String?
        @Option(help: ArgumentHelp("Events before this RFC 3339 time.", valueName: "time")) var until: String?
        @Option(help: "Only this action.") var action: String?
        @Option(help: "Only this user (UUID).") var userID: String?
        @Option(help: "Only this resource type.") var resourceType: String?
        @Option(help: "Only this resource id.") var resourceID: String?
        @Option(help: "Minimum severity: DEBUG, INFO, WARNING, ERROR, CRITICAL.") var severity: String?
        @Option(help: ArgumentHelp("A JSON object the metadata must contain, e.g. '{\"region\":\"eu\"}'.", valueName: "json"))
        var metadata: String?

        var parameters: [String: String] {
            let pairs: [(String, String?)] = [
                ("since", since), ("until", until), ("action", action), ("user_id", userID), ("resource_type", resourceType),
                ("resource_id", resourceID), ("severity", severity), ("metadata", metadata),
            ]
            return pairs.reduce(into: [:]) { if let value = $1.1 { $0[$1.0] = value } }
        }

        func tenantID() throws -> String {
            do { return try ReaderSession.validTenantID(tenant) } catch { throw ValidationError("--tenant: \(error.message)") }
        }
    }

    /// Runs `body` as the reader of `tenant`: bad input is a usage error (exit 64), an unknown
    /// tenant exit 2.
    static func reading<T>(_ tenant: String, on connection: PostgresConnection, statementTimeout: Duration? = nil,
                           _ body: (PostgresConnection) throws -> T) throws -> T {
        do {
            return try ReaderSession.run(tenantID: tenant, on: connection, statementTimeout: statementTimeout, body)
        } catch let error as ReadError where error.kind == .unknownTenant {
            FileHandle.standardError.write(Data("Error: \(error.message)\n".utf8))
            throw ExitCode(2)
        }
    }

    static func usage<T>(_ body: () throws(ReadError) -> T) throws -> T {
        do { return try body() } catch { throw ValidationError(error.message.replacingOccurrences(of: "_", with: "-")) }
    }
}
