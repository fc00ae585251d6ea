/// A libpq connection string, either a URI (`postgresql://user:pw@host:5432/db?sslmode=require`)
/// or keyword/value pairs (`host=/tmp port=5433 dbname=audit password=secret`).
///
/// The raw text is handed to libpq unchanged; `masked` is the only form that may reach a log.
public struct ConnectionString: Sendable, Hashable, CustomStringConvertible {
    /// The text as given. Contains the password, if any: never log it.
    public let rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    /// The connection string with every password replaced by `***`.
    public var masked: String { Self.mask(rawValue) }

    public var description: String { masked }

    /// Replaces passwords in URIs (`user:secret@`, `?password=secret`) and in keyword/value
    /// strings (`password=secret`, `password='se cret'`) with `***`.
    public static func mask(_ text: String) -> String {
        if text.hasPrefix("postgresql://") || text.hasPrefix("postgres://") {
            return maskURI(text)
        }
        return maskKeywordValue(text)
    }

    private static func maskURI(_ uri: String) -> String {
        var result = uri
        // user:password@ in the authority part (before the first '/', '?' after the scheme).
        if let schemeEnd = result.range(of: "://") {
            let rest = result[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"),
               let colon = authority[..<at].firstIndex(of: ":") {
                result.replaceSubrange(result.index(after: colon)..<at, with: "***")
            }
        }
        // ?password=... or &password=... in the query part.
        guard let query = result.firstIndex(of: "?") else { return result }
        var output = String(result[...query])
        let pairs = result[result.index(after: query)...].split(separator: "&", omittingEmptySubsequences: false)
        output += pairs.map { pair -> String in
            pair.lowercased().hasPrefix("password=") ? "password=***" : String(pair)
        }.joined(separator: "&")
        return output
    }

    private static func maskKeywordValue(_ text: String) -> String {
        var output = ""
        var index = text.startIndex
        while index < text.endIndex {
            // Copy whitespace.
            if text[index].isWhitespace {
                output.append(text[index])
                index = text.index(after: index)
                continue
            }
            // keyword
            let keywordStart = index
            while index < text.endIndex, text[index] != "=", !text[index].isWhitespace {
                index = text.index(after: index)
            }
            let keyword = text[keywordStart..<index]
            output += keyword
            // optional spaces, '=', optional spaces
            while index < text.endIndex, text[index].isWhitespace || text[index] == "=" {
                output.append(text[index])
                index = text.index(after: index)
            }
            // value: quoted with '' and \ escapes, or up to whitespace
            let valueStart = index
            if index < text.endIndex, text[index] == "'" {
                index = text.index(after: index)
                while index < text.endIndex, text[index] != "'" {
                    if text[index] == "\\" { index = text.index(after: index) }
                    if index < text.endIndex { index = text.index(after: index) }
                }
                if index < text.endIndex { index = text.index(after: index) }
            } else {
                while index < text.endIndex, !text[index].isWhitespace {
                    index = text.index(after: index)
                }
            }
            output += keyword.lowercased() == "password" ? "***" : String(text[valueStart..<index])
        }
        return output
    }
}
