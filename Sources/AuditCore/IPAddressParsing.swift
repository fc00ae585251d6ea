import Foundation

extension IPAddress {
    /// Parses a host address as inet_pton does: dotted-quad IPv4 or IPv6 (with embedded IPv4).
    /// No prefix lengths, zone ids or abbreviated IPv4 forms.
    init?(parsing text: UnsafeRawBufferPointer) {
        // A NUL would end the C string early and hide what follows it ("10.1.2.3\0garbage").
        guard text.count >= 2, text.count <= 45, !text.contains(0) else { return nil }
        let isV6 = text.contains(0x3A)
        let parsed: IPAddress? = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 48) { buffer in
            for (index, byte) in text.enumerated() { buffer[index] = CChar(bitPattern: byte) }
            buffer[text.count] = 0
            if isV6 {
                var address = in6_addr()
                guard inet_pton(AF_INET6, buffer.baseAddress!, &address) == 1 else { return nil }
                let (high, low) = unsafeBitCast(address, to: (UInt64, UInt64).self)
                return .v6(high: UInt64(bigEndian: high), low: UInt64(bigEndian: low))
            }
            var address = in_addr()
            guard inet_pton(AF_INET, buffer.baseAddress!, &address) == 1 else { return nil }
            return .v4(UInt32(bigEndian: address.s_addr))
        }
        guard let parsed else { return nil }
        self = parsed
    }
}
