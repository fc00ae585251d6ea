/// `${NAME}` in a string value of the file: the environment variable NAME. `${NAME:-default}`
/// gives `default` (itself expanded, up to the first `}`) when NAME is unset or empty; `$$` is
/// one literal `$` (write `$${` for a literal `${`); any other `$` is itself. Only strings are
/// expanded, and only those of the command being run, so a migrate job need not have the
/// consumer's secrets in its environment.
struct EnvironmentInterpolation {
    enum Failure: Error {
        /// `${NAME}` with NAME unset.
        case unset(String)
        /// `${` without `}`, or no variable name inside (what is wrong, without the value).
        case malformed(String)
    }

    let environment: [String: String]

    func expand(_ text: String) throws(Failure) -> String {
        var result = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            result += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.hasPrefix("$") {
                result += "$"
                rest = after.dropFirst()
            } else if after.hasPrefix("{") {
                guard let close = after.firstIndex(of: "}") else { throw .malformed("${ without a closing }") }
                result += try value(of: after[after.index(after: after.startIndex)..<close])
                rest = after[after.index(after: close)...]
            } else {
                result += "$"
                rest = after
            }
        }
        return result + rest
    }

    /// The value of `NAME` or `NAME:-default` (the text between the braces).
    private func value(of reference: Substring) throws(Failure) -> String {
        let parts = reference.split(separator: ":-", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard let first = name.first, first == "_" || first.isLetter,
              name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else {
            throw .malformed("${...} must start with a variable name (letters, digits, _), as in ${DATABASE_URL}")
        }
        if parts.count == 2 {
            guard let value = environment[name], !value.isEmpty else { return try expand(String(parts[1])) }
            return value
        }
        guard let value = environment[name] else { throw .unset(name) }
        return value
    }
}
