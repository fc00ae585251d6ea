#ifndef AUDIT_INGEST_CRDKAFKA_SHIM_H
#define AUDIT_INGEST_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#endif
