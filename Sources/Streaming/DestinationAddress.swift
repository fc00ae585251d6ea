import Foundation

/// Where a tenant may point a destination: an https URL whose host resolves only to public
/// addresses. The streamer runs inside the operator's network, so a tenant's URL must not reach
/// the database, the admin API, cloud metadata (169.254.169.254) or any other private service
/// (server-side request forgery). Checked when a tenant creates a destination or test-sends,
/// and before every round of deliveries to it (a DNS name may change); redirects are never
/// followed. What it cannot see: a name that resolves to a public address here and to a private
/// one when the HTTP client resolves it a moment later (DNS rebinding within the TTL).
public enum DestinationAddress {
    public struct Refused: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Checks `url` for a tenant's destination; `allowLocal` (development) allows http and
    /// private addresses.
    public static func check(_ url: String, allowLocal: Bool) throws(Refused) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty else {
            throw Refused(description: "url: not an absolute URL")
        }
        guard scheme == "https" || (allowLocal && scheme == "http") else {
            throw Refused(description: "url: a tenant's destination must use https://")
        }
        guard components.user == nil, components.password == nil else {
            throw Refused(description: "url: credentials go in the secret, not in the URL")
        }
        if allowLocal { return }
        let name = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let addresses = try resolve(name)
        guard !addresses.isEmpty else { throw Refused(description: "url: \(name) does not resolve") }
        for address in addresses {
            if let reason = privateReason(address) {
                throw Refused(description: "url: \(name) resolves to \(format(address)), \(reason): not a public address")
            }
        }
    }

    /// Every address `host` resolves to (4 or 16 bytes each).
    static func resolve(_ host: String) throws(Refused) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            throw Refused(description: "url: cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [[UInt8]] = []
        var entry = list
        while let current = entry?.pointee {
            if current.ai_family == AF_INET, let raw = current.ai_addr {
                raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    addresses.append(withUnsafeBytes(of: address.pointee.sin_addr) { Array($0) })
                }
            } else if current.ai_family == AF_INET6, let raw = current.ai_addr {
                raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    addresses.append(withUnsafeBytes(of: address.pointee.sin6_addr) { Array($0) })
                }
            }
            entry = current.ai_next
        }
        return addresses
    }

    /// Why an address is not public, or nil when it is.
    static func privateReason(_ address: [UInt8]) -> String? {
        if address.count == 4 { return privateReasonV4(address) }
        guard address.count == 16 else { return "an unknown address family" }
        let prefix = Array(address.prefix(12))
        if prefix == Array(repeating: 0, count: 10) + [0xff, 0xff] { return privateReasonV4(Array(address.suffix(4))) }  // ::ffff:a.b.c.d
        if prefix == [0, 0x64, 0xff, 0x9b] + Array(repeating: 0, count: 8) {  // NAT64 64:ff9b::/96
            return privateReasonV4(Array(address.suffix(4)))
        }
        if address.allSatisfy({ $0 == 0 }) { return "unspecified" }
        if address == Array(repeating: 0, count: 15) + [1] { return "loopback" }
        if address[0] & 0xfe == 0xfc { return "unique local (fc00::/7)" }
        if address[0] == 0xfe && address[1] & 0xc0 == 0x80 { return "link-local (fe80::/10)" }
        if address[0] == 0xff { return "multicast" }
        // Only global unicast (2000::/3) is public; in it, the ranges that lead elsewhere.
        guard address[0] & 0xe0 == 0x20 else { return "not global unicast (outside 2000::/3)" }
        if address[0] == 0x20 && address[1] == 0x01 && address[2] == 0x0d && address[3] == 0xb8 { return "documentation (2001:db8::/32)" }
        if address[0] == 0x20 && address[1] == 0x01 && address[2] == 0 && address[3] == 0 { return "Teredo (2001::/32)" }
        if address[0] == 0x20 && address[1] == 0x02 { return "6to4 (2002::/16)" }
        return nil
    }

    static func privateReasonV4(_ a: [UInt8]) -> String? {
        switch (a[0], a[1]) {
        case (0, _): return "this network (0.0.0.0/8)"
        case (10, _): return "private (10.0.0.0/8)"
        case (100, 64...127): return "shared address space (100.64.0.0/10)"
        case (127, _): return "loopback"
        case (169, 254): return "link-local (169.254.0.0/16, cloud metadata)"
        case (172, 16...31): return "private (172.16.0.0/12)"
        case (192, 0) where a[2] == 0: return "IETF protocol assignments (192.0.0.0/24)"
        case (192, 0) where a[2] == 2: return "documentation (192.0.2.0/24)"
        case (192, 168): return "private (192.168.0.0/16)"
        case (198, 18...19): return "benchmarking (198.18.0.0/15)"
        case (198, 51) where a[2] == 100, (203, 0) where a[2] == 113: return "documentation"
        case (224...239, _): return "multicast"
        case (240...255, _): return "reserved (240.0.0.0/4)"
        default: return nil
        }
    }

    static func format(_ address: [UInt8]) -> String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}
