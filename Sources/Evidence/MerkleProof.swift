/// RFC 6962 inclusion proofs (RFC 9162 section 2.1.3): the sibling hashes from a leaf up to the
/// root of a tree of `size` leaves, and the check that folds them back.
public enum MerkleProof {
    /// PATH(index, leaves): the audit path of leaf `index`, nearest sibling first.
    public static func inclusionPath(index: Int, leaves: [TreeHash]) -> [TreeHash] {
        precondition(leaves.indices.contains(index), "no leaf \(index) in a tree of \(leaves.count)")
        var path: [TreeHash] = []
        var range = leaves[...]
        var position = index
        // Top down (the split at the largest power of two below the size), then reversed.
        while range.count > 1 {
            let split = largestPowerOfTwo(below: range.count)
            let left = range.prefix(split), right = range.dropFirst(split)
            if position < split {
                path.append(MerkleTree.root(Array(right)))
                range = left
            } else {
                path.append(MerkleTree.root(Array(left)))
                range = right
                position -= split
            }
        }
        return path.reversed()
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

    static func largestPowerOfTwo(below count: Int) -> Int {
        var split = 1
        while split << 1 < count { split <<= 1 }
        return split
    }
}
