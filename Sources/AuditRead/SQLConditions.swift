import Postgres

/// A WHERE clause under construction. No value is ever written into the SQL text: each goes in
/// as a `$n` parameter, or, for statements that take none (`COPY (SELECT ...) TO STDOUT`), as a
/// transaction-local setting the statement reads back with `current_setting`, set beforehand by
/// `bindSettings` with bound parameters. Either way the server receives the value as data, so
/// no quoting rule (or `standard_conforming_strings`) is involved.
struct SQLConditions {
    enum Binding { case parameters, settings }

    /// The settings' prefix: a custom setting needs a dotted name, and nothing else uses this one.
    static let settingPrefix = "audit_read.p"

    let binding: Binding
    private(set) var clauses: [String] = []
    private(set) var parameters: [String?] = []

    init(binding: Binding) { self.binding = binding }

    /// The SQL for `value` cast to `type`: `$3::uuid`, or `current_setting('audit_read.p3')::uuid`.
    mutating func bind(_ value: String, as type: String) -> String {
        parameters.append(value)
        switch binding {
        case .parameters: return "$\(parameters.count)::\(type)"
        case .settings: return "current_setting('\(Self.settingPrefix)\(parameters.count)')::\(type)"
        }
    }

    mutating func add(_ clause: String) { clauses.append(clause) }

    var whereClause: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }

    /// For `.settings`: sets every bound value for the current transaction only (`set_config(...,
    /// true)`), as parameters of one statement. Call inside the transaction that runs the SQL.
    func bindSettings(on connection: PostgresConnection) throws {
        precondition(binding == .settings)
        guard !parameters.isEmpty else { return }
        let calls = parameters.indices.map { "set_config('\(Self.settingPrefix)\($0 + 1)', $\($0 + 1), true)" }
        try connection.query("SELECT " + calls.joined(separator: ", "), parameters)
    }
}
