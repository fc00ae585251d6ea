import ArgumentParser
import AuditRead
import Foundation

extension Tenant {
    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bearer tokens of the tenant read API (/v1/tenants/{id}/...): each reads only its tenant.",
            subcommands: [Create.self, List.self, Revoke.self])

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make a token and print it once (only its SHA-256 is stored).")
            @Option(help: "The tenant's id (UUID).") var tenant: String
            @Option(help: "A name to recognise it by in `list`.") var name: String = ""
            @OptionGroup var database: DatabaseOptions

            func run() throws {
                let tenantID = try Events.usage { () throws(ReadError) in try ReaderSession.validTenantID(tenant) }
                do {
                    let issued = try TenantTokens.create(tenantID: tenantID, name: name, on: try database.connect())
                    FileHandle.standardError.write(Data("token \(issued.id) for tenant \(tenantID); it is not shown again:\n".utf8))
                    print(issued.token)
                } catch let error as ReadError {
                    FileHandle.standardError.write(Data("Error: \(error.message)\n".utf8))
                    throw ExitCode(2)
                }
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Tokens (id, tenant, name, created, revoked) as JSON; never the tokens.")
            @Option(help: "Only this tenant's tokens.") var tenant: String?
            @OptionGroup var database: DatabaseOptions

            func run() throws {
                let tenantID = try tenant.map { text in try Events.usage { () throws(ReadError) in try ReaderSession.validTenantID(text) } }
                try printJSON(try TenantTokens.list(tenantID: tenantID, on: try database.connect()))
            }
        }

        struct Revoke: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke a token by its id (from create or list); effective at once.")
            @Argument(help: "The token's id (UUID).") var id: String
            @OptionGroup var database: DatabaseOptions

            func run() throws {
                guard UUID(uuidString: id) != nil else { throw ValidationError("\(id) is not a token id (a UUID)") }
                guard try TenantTokens.revoke(id: id, on: try database.connect()) else {
                    FileHandle.standardError.write(Data("Error: no active token \(id)\n".utf8))
                    throw ExitCode(2)
                }
                print("revoked \(id)")
            }
        }
    }
}
