/// What a stored value may not do when it is shown: start a spreadsheet formula in a CSV cell, or
/// move the cursor, recolour or reorder a terminal's text. Producers write any text they like into
/// an event's free-text fields; these rules keep it inert wherever we print it.
public enum SafeText {
    /// The columns whose text comes from producers as it is (the rest are ids, times, levels,
    /// addresses and JSON, which cannot start with a formula character).
    public static let freeTextColumns: Set<String> = ["action", "resource_type", "resource_id", "user_agent"]

    // MARK: CSV (OWASP "CSV injection")

    /// The first characters a spreadsheet reads as the start of a formula (or, tab and CR, that
    /// it strips before looking again).
    static let formulaStarts: Set<Unicode.Scalar> = ["=", "+", "-", "@", "\t", "\r"]

    /// `value` with a leading `'` when it would start a formula, so a spreadsheet shows it as text.
    public static func spreadsheetCell(_ value: String) -> String {
        guard let first = value.unicodeScalars.first, formulaStarts.contains(first) else { return value }
        return "'" + value
    }

    /// The same rule as SQL, for the COPY that writes a CSV export.
    static func spreadsheetCellSQL(_ expression: String) -> String {
        #"CASE WHEN left(\#(expression), 1) IN ('=', '+', '-', '@', E'\t', E'\r') THEN '''' || \#(expression) ELSE \#(expression) END"#
    }

    // MARK: Terminals

    /// `value` with every control character shown as an escape (`\n`, `\u{1B}`): C0 and C1
    /// controls, DEL, and the bidirectional overrides and isolates that reorder what follows. A
    /// line feed in a field can then not forge a row, nor an ESC sequence rewrite the screen.
    public static func terminal(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: isHidden) else { return value }
        var shown = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\n": shown += "\\n"
            case "\r": shown += "\\r"
            case "\t": shown += "\\t"
            case _ where isHidden(scalar): shown += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: shown.unicodeScalars.append(scalar)
            }
        }
        return shown
    }

    static func isHidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true                    // C0, DEL, C1
        case 0x200E, 0x200F, 0x061C: true                       // direction marks
        case 0x202A...0x202E, 0x2066...0x2069: true             // embeddings, overrides, isolates
        default: false
        }
    }
}
