#ifndef AUDIT_INGEST_CTREESHA256_SHIM_H
#define AUDIT_INGEST_CTREESHA256_SHIM_H
// The Merkle tree's SHA-256 (Evidence's MerkleTree): OpenSSL's SHA256_CTX on the stack, with
// SHA-NI where the CPU has it. A flush hashes two small messages per row, its leaf and about one
// tree node. swift-crypto's SHA256 allocates a context per hash and zeroes it on release. OpenSSL 3
// marks this interface deprecated in favour of EVP, whose per-call dispatch costs as much (measured
// here, per hash of 702 / 65 bytes: SHA256_CTX 455 / 93 ns, EVP with a reused context 660 / 300 ns;
// swift-crypto's SHA256.hash 645 ns for 700 bytes). It is kept through OpenSSL 3.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <stddef.h>
#include <stdint.h>

/// SHA-256(prefix[0..<prefixCount] || data[0..<count]) into `out` (32 bytes).
static inline void audit_tree_sha256(const uint8_t *prefix, size_t prefixCount, const void *data, size_t count,
                                     uint8_t *out) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, prefix, prefixCount);
    if (count > 0) SHA256_Update(&context, data, count);
    SHA256_Final(out, &context);
}
#endif
