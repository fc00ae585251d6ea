import AuditCore
import Testing
@testable import Pipeline

/// A masked address keeps its network: an IPv4 /24, an IPv6 /48, and an IPv4 address written
/// as IPv6 (::ffff:a.b.c.d) its IPv4 /24, not `::`.
@Suite struct RedactionMaskTests {
    @Test func aMaskedAddressKeepsItsNetwork() {
        #expect(IPAddress.v4(0xCB00_714D).network == .v4(0xCB00_7100))  // 203.0.113.77 → 203.0.113.0
        #expect(IPAddress.v6(high: 0x2001_0db8_1234_5678, low: 9).network == .v6(high: 0x2001_0db8_1234_0000, low: 0))
        #expect(IPAddress.v6(high: 0, low: 0xFFFF_CB00_714D).network == .v6(high: 0, low: 0xFFFF_CB00_7100))
    }
}
