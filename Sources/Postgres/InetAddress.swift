import Foundation

/// An IPv4 or IPv6 host address, as stored in an `inet` column.
public enum InetAddress: Sendable, Hashable, CustomStringConvertible {
    case v4((UInt8, UInt8, UInt8, UInt8))
    case v6((UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
             UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8))

    /// Parses `192.0.2.1` or `2001:db8::1` (inet_pton rules); nil for anything else.
    public init?(_ text: String) {
        if text.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
            self = .v6(withUnsafeBytes(of: address) { $0.load(as: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                                                                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8).self) })
        } else {
            var address = in_addr()
            guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
            self = .v4(withUnsafeBytes(of: address) { $0.load(as: (UInt8, UInt8, UInt8, UInt8).self) })
        }
    }

    public static func == (lhs: InetAddress, rhs: InetAddress) -> Bool { lhs.description == rhs.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }

    /// The canonical text form (inet_ntop).
    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch self {
        case .v4(let octets):
            var raw = octets
            _ = inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count))
        case .v6(let octets):
            var raw = octets
            _ = inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        }
        let length = buffer.firstIndex(of: 0) ?? buffer.count
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
