import CLibPQ
import Foundation

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

    /// The libpq keywords whose values are secrets.
    static let secretKeywords: Set<String> = ["password", "sslpassword"]

    /// Replaces passwords with `***`: in a URI's user info (`user:secret@`, where libpq ends the
    /// password at the first `@`, not at `?` or `/`) and query (`?password=`), and in
    /// keyword/value strings (`password=secret`, `password='se cret'`). The result is checked
    /// against libpq's own parse (`PQconninfoParse`): if a secret libpq sees survived, the string
    /// is shown as keyword/value pairs rebuilt from that parse instead.
    public static func mask(_ text: String) -> String {
        let masked = isURI(text) ? maskURI(text) : maskKeywordValue(text)
        // libpq cannot use it either: it is only shown, so hide all a password could be.
        guard let options = parse(text) else { return isURI(text) ? maskUserInfoToLastAt(masked) : masked }
        let secrets = options.filter { secretKeywords.contains($0.keyword) && !$0.value.isEmpty }.map(\.value)
        guard !secrets.isEmpty else { return masked }
        let leftOver = parse(masked)?.contains { secretKeywords.contains($0.keyword) && $0.value != "***" && !$0.value.isEmpty } ?? true
        if !leftOver && !secrets.contains(where: { masked.contains($0) }) { return masked }
        return options.map { option in
            "\(option.keyword)=\(secretKeywords.contains(option.keyword) ? "***" : quoted(option.value))"
        }.joined(separator: " ")
    }

    /// libpq's parse of `text` (only the settings it names), or nil when libpq rejects it.
    static func parse(_ text: String) -> [(keyword: String, value: String)]? {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(text, &errorMessage) else {
            if let errorMessage { PQfreemem(errorMessage) }
            return nil
        }
        defer { PQconninfoFree(options) }
        var settings: [(keyword: String, value: String)] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { settings.append((String(cString: keyword), String(cString: value))) }
            option += 1
        }
        return settings
    }

    /// libpq's reason for rejecting `text`, redacted (see `redact`).
    static func parseError(_ text: String) -> String? {
        var errorMessage: UnsafeMutablePointer<CChar>?
        if let options = PQconninfoParse(text, &errorMessage) {
            PQconninfoFree(options)
            return nil
        }
        let message = errorMessage.map { String(cString: $0) } ?? "invalid connection string"
        if let errorMessage { PQfreemem(errorMessage) }
        return ConnectionString(text).redact(message).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `message` (libpq's, about this connection string) with each quoted fragment that is in
    /// the raw string but not in `masked` replaced by `"***"`: libpq quotes the values it
    /// rejects (`invalid integer value "pa" for connection option "port"`), and such a value
    /// may be a piece of a password the masking hid. Host names and other shown values stay.
    public func redact(_ message: String) -> String {
        let masked = self.masked
        var output = ""
        var rest = Substring(message)
        while let open = rest.firstIndex(of: "\""),
              let close = rest[rest.index(after: open)...].firstIndex(of: "\"") {
            let fragment = rest[rest.index(after: open)..<close]
            output += rest[...open]
            let hidden = !fragment.isEmpty && rawValue.contains(fragment) && !masked.contains(fragment)
            output += hidden ? "***" : String(fragment)
            output += "\""
            rest = rest[rest.index(after: close)...]
        }
        return output + rest
    }

    private static func isURI(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://")
    }

    private static func quoted(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0.isWhitespace || $0 == "'" || $0 == "\\" }) else { return value }
        return "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// `scheme://user:***@rest` with everything from the first ':' after the scheme to the last
    /// '@' hidden: for URIs libpq rejects, whose structure cannot be trusted.
    private static func maskUserInfoToLastAt(_ uri: String) -> String {
        guard let schemeEnd = uri.range(of: "://"), let at = uri[schemeEnd.upperBound...].lastIndex(of: "@"),
              let colon = uri[schemeEnd.upperBound..<at].firstIndex(of: ":") else { return uri }
        return String(uri[...colon]) + "***" + String(uri[at...])
    }

    private static func maskURI(_ uri: String) -> String {
        var result = uri
        guard let schemeEnd = result.range(of: "://") else { return result }
        let rest = result[schemeEnd.upperBound...]
        // The user info ends at an '@' before the host. libpq takes the first '@' before any '/';
        // a password may also hold '/', '?' or '@': mask up to the last '@' before the first '/'
        // or, failing that, before the first '?'.
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let question = rest.firstIndex(of: "?") ?? rest.endIndex
        let at = rest[..<slash].lastIndex(of: "@") ?? rest[..<question].lastIndex(of: "@")
        var queryFrom = rest.startIndex
        if let at {
            if let colon = rest[..<at].firstIndex(of: ":") {
                result.replaceSubrange(result.index(after: colon)..<at, with: "***")
            }
            queryFrom = result.range(of: "***@", range: schemeEnd.upperBound..<result.endIndex)?.upperBound ?? result.startIndex
        }
        // ?password=... or &password=... in the query part (keywords may be percent-encoded).
        guard let query = result[queryFrom...].firstIndex(of: "?") else { return result }
        var output = String(result[...query])
        let pairs = result[result.index(after: query)...].split(separator: "&", omittingEmptySubsequences: false)
        output += pairs.map { pair -> String in
            let key = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            let decoded = (key.removingPercentEncoding ?? key).lowercased()
            return secretKeywords.contains(decoded) ? "\(key)=***" : String(pair)
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
            output += secretKeywords.contains(keyword.lowercased()) ? "***" : String(text[valueStart..<index])
        }
        return output
    }
}
