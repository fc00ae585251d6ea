/// RFC 6962 inclusion proofs (RFC 9162 section 2.1.3): the sibling hashes from a leaf up to the
/// root of a tree of `size` leaves, and the check that folds them back.
public enum MerkleProof {
    /// PATH(index, leaves): the audit path of leaf `index`, nearest sibling first.
    public static func inclusionPath(index: Int, leaves: [TreeHash]) -> [TreeHash] {
        precondition(leaves.indices.contains(index), "no leaf \(index) in a tree of \(leaves.count)")
        return inclusionRanges(index: Int64(index), size: Int64(leaves.count)).map { $0.hash(leaves: leaves) }
    }

    /// The root that `path` proves `leaf` at `index` of a tree of `size` leaves hashes to, or nil
    /// when the path cannot be one of such a tree (too long or too short).
    public static func root(leaf: TreeHash, index: Int64, size: Int64, path: [TreeHash]) -> TreeHash? {
        guard index >= 0, index < size else { return nil }
        var fn = index, sn = size - 1
        var hash = leaf
        for sibling in path {
            guard sn != 0 else { return nil }
            if fn & 1 == 1 || fn == sn {
                hash = MerkleTree.node(sibling, hash)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                hash = MerkleTree.node(hash, sibling)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 ? hash : nil
    }

    /// PROOF(first, leaves): the RFC 6962 consistency proof that the tree of the first `first`
    /// leaves is a prefix of the tree of all `leaves`.
    public static func consistencyPath(first: Int, leaves: [TreeHash]) -> [TreeHash] {
        precondition(first > 0 && first <= leaves.count, "no consistency proof from \(first) to \(leaves.count) leaves")
        return consistencyRanges(first: Int64(first), size: Int64(leaves.count)).map { $0.hash(leaves: leaves) }
    }

    /// Whether `path` proves the tree of `first` leaves with root `firstRoot` a prefix of the tree
    /// of `second` leaves with root `secondRoot` (RFC 9162 section 2.1.4.2).
    public static func isConsistent(first: Int64, firstRoot: TreeHash, second: Int64, secondRoot: TreeHash,
                                    path: [TreeHash]) -> Bool {
        guard first > 0, first <= second else { return false }
        if first == second { return path.isEmpty && firstRoot == secondRoot }
        var path = path
        guard !path.isEmpty else { return false }
        if first & (first - 1) == 0 { path.insert(firstRoot, at: 0) }
        var fn = first - 1, sn = second - 1
        while fn & 1 == 1 { fn >>= 1; sn >>= 1 }
        var fr = path[0], sr = path[0]
        for sibling in path.dropFirst() {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                fr = MerkleTree.node(sibling, fr)
                sr = MerkleTree.node(sibling, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                sr = MerkleTree.node(sr, sibling)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && fr == firstRoot && sr == secondRoot
    }

    static func largestPowerOfTwo(below count: Int) -> Int {
        var split = 1
        while split << 1 < count { split <<= 1 }
        return split
    }
}
