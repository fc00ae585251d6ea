import AuditCore

/// Tenant ids numbered in the order first inserted, looked up without `Hasher`: an
/// open-addressing table on the hot paths (the registered tenants every event is checked
/// against, the distinct tenants of a flush), a few times cheaper per lookup than a `Set`.
///
/// Its hash is seeded per process, as `Set`'s is, so ids made to collide cannot make probing
/// quadratic; every bit of the id reaches the slot (sequential, hand-made ids spread too).
struct TenantTable {
    private(set) var ids: [UUIDValue] = []
    /// An ordinal into `ids`, or -1 for an empty slot. At most half full.
    private var slots: [Int32]
    private var mask: Int
    private let seed = TenantTable.processSeed
    private static let processSeed = UInt64.random(in: .min ... .max)

    /// A table with room for `capacity` tenants before it grows.
    init(capacity: Int = 16) {
        let size = 1 << (Int.bitWidth - (2 * max(capacity, 8) - 1).leadingZeroBitCount)  // a power of two ≥ 2 × capacity
        slots = Array(repeating: -1, count: size)
        mask = size - 1
    }

    init(_ tenants: some Collection<UUIDValue>) {
        self.init(capacity: tenants.count)
        for tenant in tenants { _ = ordinal(inserting: tenant) }
    }

    var count: Int { ids.count }

    func contains(_ tenant: UUIDValue) -> Bool { ordinal(of: tenant) != nil }

    /// The tenant's number, or nil when it was never inserted.
    @inline(__always)
    func ordinal(of tenant: UUIDValue) -> Int? {
        var slot = firstSlot(tenant)
        while true {
            let ordinal = Int(slots[slot])
            if ordinal < 0 { return nil }
            if ids[ordinal] == tenant { return ordinal }
            slot = (slot + 1) & mask
        }
    }

    /// The tenant's number, inserting it first when it is new.
    @inline(__always)
    mutating func ordinal(inserting tenant: UUIDValue) -> Int {
        var slot = firstSlot(tenant)
        while true {
            let ordinal = Int(slots[slot])
            if ordinal < 0 { break }
            if ids[ordinal] == tenant { return ordinal }
            slot = (slot + 1) & mask
        }
        slots[slot] = Int32(ids.count)
        ids.append(tenant)
        if ids.count * 2 > slots.count { grow() }
        return ids.count - 1
    }

    /// splitmix64's finaliser over both halves of the id and the seed.
    @inline(__always)
    private func firstSlot(_ tenant: UUIDValue) -> Int {
        var mixed = tenant.high ^ seed
        mixed = (mixed ^ mixed >> 30) &* 0xBF58_476D_1CE4_E5B9 ^ tenant.low
        mixed = (mixed ^ mixed >> 27) &* 0x94D0_49BB_1331_11EB
        return Int(truncatingIfNeeded: mixed ^ mixed >> 31) & mask
    }

    private mutating func grow() {
        slots = Array(repeating: -1, count: slots.count * 2)
        mask = slots.count - 1
        for (ordinal, tenant) in ids.enumerated() {
            var slot = firstSlot(tenant)
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(ordinal)
        }
    }
}
