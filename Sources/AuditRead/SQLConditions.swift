import Postgres

/// A WHERE clause under construction. Values go in as `$n` parameters, or, for statements that
/// take none (`COPY (SELECT ...) TO STDOUT`), as quoted literals of values already validated.
struct SQLConditions {
    enum Binding { case parameters, literals }

    let binding: Binding
    private(set) var clauses: [String] = []
    private(set) var parameters: [String?] = []

    init(binding: Binding) { self.binding = binding }

    /// The SQL for `value` cast to `type` (`$3::uuid` or `'...'::uuid`).
    mutating func bind(_ value: String, as type: String) -> String {
        switch binding {
        case .parameters:
            parameters.append(value)
            return "$\(parameters.count)::\(type)"
        case .literals:
            return "\(PostgresConnection.quoteLiteral(value))::\(type)"
        }
    }

    mutating func add(_ clause: String) { clauses.append(clause) }

    var whereClause: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }
}
