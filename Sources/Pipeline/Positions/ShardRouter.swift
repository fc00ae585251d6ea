import AuditCore

/// Picks a tenant's shard. Tenant ids are mostly random UUIDs, but a multiplicative mix keeps
/// sequential or hand-made ids spread too.
struct ShardRouter: Sendable, Equatable {
    let shardCount: Int

    /// By tenant whenever the message has one (rejected messages too), else by position: the
    /// same message goes to the same shard on every run (DESIGN invariant 6).
    @inline(__always)
    func shard(tenantID: UUIDValue?, offset: Int64) -> Int {
        if let tenantID { return shard(for: tenantID) }
        return shard(forOffset: offset)
    }

    @inline(__always)
    func shard(for tenantID: UUIDValue) -> Int {
        let mixed = (tenantID.high ^ (tenantID.low &* 0x9E37_79B9_7F4A_7C15)) &* 0xBF58_476D_1CE4_E5B9
        return Int((mixed >> 32) % UInt64(shardCount))
    }

    /// Messages without a usable tenant go by position.
    @inline(__always)
    func shard(forOffset offset: Int64) -> Int {
        Int(UInt64(bitPattern: offset) % UInt64(shardCount))
    }
}
