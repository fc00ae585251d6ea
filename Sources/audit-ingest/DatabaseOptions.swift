import ArgumentParser
import Foundation
import Postgres

/// Where the database is and as which role to work, shared by every command that talks to
/// PostgreSQL.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"),
            help: ArgumentHelp("""
                PostgreSQL connection URI or keyword/value string. Visible to every user in `ps`: \
                prefer --database-url-file or DATABASE_URL when it holds a password. \
                Default: $DATABASE_URL.
                """, valueName: "url"))
    var databaseURL: String?

    @Option(name: .customLong("database-url-file"),
            help: ArgumentHelp("Read the connection string from this file (e.g. /run/secrets/database-url). Default: $DATABASE_URL_FILE.",
                               valueName: "path"))
    var databaseURLFile: String?

    @Option(name: .customLong("database-role"),
            help: ArgumentHelp("""
                SET ROLE after connecting: a role name, none, or auto (default): become audit_ingest when the \
                login role is a plain member of it (BYPASSRLS, which COPY into audit_log needs, is not inherited).
                """, valueName: "role"))
    var databaseRole: String = "auto"

    @Option(help: ArgumentHelp("Statement timeout in seconds (0 = server default).", valueName: "seconds"))
    var statementTimeout: Int = 30

    func validate() throws {
        if databaseURL != nil, databaseURLFile != nil {
            throw ValidationError("give either --database-url or --database-url-file, not both")
        }
        if databaseRole.isEmpty { throw ValidationError("--database-role must be a role name, none or auto") }
    }

    func configuration() throws -> PostgresConfiguration {
        PostgresConfiguration(
            connectionString: ConnectionString(try connectionString()),
            statementTimeout: statementTimeout > 0 ? .seconds(statementTimeout) : nil,
            sessionSetup: Self.sessionSetup(role: databaseRole)
        )
    }

    func connect() throws -> PostgresConnection {
        try PostgresConnection(configuration: configuration())
    }

    /// --database-url, else --database-url-file, else DATABASE_URL, else DATABASE_URL_FILE.
    private func connectionString() throws -> String {
        if let text = try Self.connectionString(flag: databaseURL, file: databaseURLFile, name: "database-url") { return text }
        throw ValidationError("""
            no database given: set DATABASE_URL, or pass --database-url-file (or --database-url) \
            (e.g. postgresql://user@localhost/audit)
            """)
    }

    /// --NAME, else --NAME-file, else $NAME, else $NAME_FILE (NAME upper-cased, - as _); nil when
    /// none is given.
    static func connectionString(flag: String?, file: String?, name: String) throws -> String? {
        let environment = ProcessInfo.processInfo.environment
        let variable = name.uppercased().replacingOccurrences(of: "-", with: "_")
        if let flag, !flag.isEmpty { return flag }
        if let file { return try read(file, option: "--\(name)-file") }
        if let url = environment[variable], !url.isEmpty { return url }
        if let file = environment[variable + "_FILE"], !file.isEmpty { return try read(file, option: variable + "_FILE") }
        return nil
    }

    /// The file's content without the trailing line break.
    private static func read(_ path: String, option: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("\(option): cannot read \(path) (missing, or not readable by this user)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw ValidationError("\(option): \(path) is empty; it should hold a connection string") }
        return text
    }

    /// The SQL that takes on `role` for each session. `auto` becomes audit_ingest only for a login
    /// role that is a member of it without being a superuser, BYPASSRLS or the owner of audit_log
    /// (an owner may COPY as itself), and only when audit_ingest has BYPASSRLS.
    static func sessionSetup(role: String) -> String? {
        switch role {
        case "none":
            return nil
        case "auto":
            return """
                SELECT set_config('role', r.rolname, false)
                FROM pg_roles r JOIN pg_roles s ON s.rolname = session_user
                WHERE r.rolname = 'audit_ingest' AND r.rolbypassrls AND s.oid <> r.oid
                  AND NOT s.rolsuper AND NOT s.rolbypassrls AND pg_has_role(session_user, r.oid, 'MEMBER')
                  AND NOT coalesce(pg_has_role(session_user,
                                               (SELECT relowner FROM pg_class WHERE oid = to_regclass('audit_log')), 'USAGE'), false)
                """
        default:
            return "SET ROLE \(PostgresConnection.quoteIdentifier(role))"
        }
    }
}
