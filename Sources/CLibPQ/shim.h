#ifndef AUDIT_INGEST_CLIBPQ_SHIM_H
#define AUDIT_INGEST_CLIBPQ_SHIM_H
#include <libpq-fe.h>

/// Asks the CPU to start loading the cache line at `address` (read, keep in all levels): used
/// before copying rows that another thread wrote a while ago.
static inline void audit_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }
#endif
