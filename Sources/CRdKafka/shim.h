#ifndef AUDIT_INGEST_CRDKAFKA_SHIM_H
#define AUDIT_INGEST_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/// rd_kafka_producev is variadic and so not callable from Swift: a copy-flagged message with
/// headers (ownership of `headers` passes to librdkafka on success only).
static inline rd_kafka_resp_err_t audit_ingest_produce_with_headers(
    rd_kafka_t *rk, const char *topic, const void *key, size_t key_len, void *value, size_t value_len,
    rd_kafka_headers_t *headers) {
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                             RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
}

/// The same, with `opaque` handed to the delivery report callback (`rkmessage->_private`).
static inline rd_kafka_resp_err_t audit_ingest_produce_with_opaque(
    rd_kafka_t *rk, const char *topic, const void *key, size_t key_len, void *value, size_t value_len,
    rd_kafka_headers_t *headers, void *opaque) {
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                             RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}
#endif
