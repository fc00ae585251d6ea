import Foundation

/// A destination's secret, named by reference (`env:NAME` or `file:PATH`) and read by the
/// streamer when it delivers: the database holds where the secret is, never the secret.
enum SecretReference {
    struct Unreadable: Error, CustomStringConvertible {
        var description: String
    }

    /// The secret's bytes (a file's trailing line break removed); nil for no reference.
    static func read(_ reference: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [UInt8]? {
        guard let reference else { return nil }
        if reference.hasPrefix("env:") {
            let name = String(reference.dropFirst(4))
            guard let value = environment[name], !value.isEmpty else {
                throw Unreadable(description: "secret \(reference): \(name) is not set in the streamer's environment")
            }
            return Array(value.utf8)
        }
        if reference.hasPrefix("file:") {
            let path = String(reference.dropFirst(5))
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Unreadable(description: "secret \(reference): cannot read the file (missing, or not readable by the streamer)")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            guard !text.isEmpty else { throw Unreadable(description: "secret \(reference): the file is empty") }
            return Array(text.utf8)
        }
        throw Unreadable(description: "secret reference \(reference): expected env:NAME or file:PATH")
    }
}
