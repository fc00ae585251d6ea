#ifndef AUDIT_INGEST_CLIBPQ_SHIM_H
#define AUDIT_INGEST_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
