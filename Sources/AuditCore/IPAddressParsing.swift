import Foundation

extension IPAddress {
    /// Parses a host address as inet_pton does: dotted-quad IPv4 or IPv6 (with embedded IPv4).
    /// No prefix lengths, zone ids or abbreviated IPv4 forms.
    init?(parsing text: UnsafeRawBufferPointer) {
        guard text.count >= 2, text.count <= 45 else { return nil }
        guard text.contains(0x3A) else {
            guard let address = Self.dottedQuad(text) else { return nil }
            self = .v4(address)
            return
        }
        // A NUL would end the C string early and hide what follows it ("::1\0garbage").
        guard !text.contains(0) else { return nil }
        let parsed: IPAddress? = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 48) { buffer in
            for (index, byte) in text.enumerated() { buffer[index] = CChar(bitPattern: byte) }
            buffer[text.count] = 0
            var address = in6_addr()
            guard inet_pton(AF_INET6, buffer.baseAddress!, &address) == 1 else { return nil }
            let (high, low) = unsafeBitCast(address, to: (UInt64, UInt64).self)
            return .v6(high: UInt64(bigEndian: high), low: UInt64(bigEndian: low))
        }
        guard let parsed else { return nil }
        self = parsed
    }

    /// An IPv4 address in the form inet_pton takes: four decimal parts of at most 255, without
    /// leading zeros, separated by dots. Parsed here rather than by inet_pton, which needs a C
    /// string and costs as much as the rest of an event's fields.
    static func dottedQuad(_ text: UnsafeRawBufferPointer) -> UInt32? {
        var address: UInt32 = 0
        var parts = 0
        var part: UInt32 = 0
        var digits = 0
        for byte in text {
            switch byte {
            case 0x30...0x39:
                guard digits == 0 || part != 0 else { return nil }  // a leading zero
                part = part * 10 + UInt32(byte - 0x30)
                guard part <= 255 else { return nil }
                digits += 1
            case 0x2E:
                guard digits > 0, parts < 3 else { return nil }
                address = address << 8 | part
                parts += 1
                (part, digits) = (0, 0)
            default:
                return nil
            }
        }
        guard digits > 0, parts == 3 else { return nil }
        return address << 8 | part
    }
}
