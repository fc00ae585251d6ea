#ifndef AUDIT_INGEST_CJSONSCAN_H
#define AUDIT_INGEST_CJSONSCAN_H
#include <stdint.h>

#if defined(__SSE2__)
#include <emmintrin.h>

/// Bit i is set where byte i of the 16 at `bytes` ends a JSON string's plain run: a quote, a
/// backslash or a control character (below 0x20). SSE2, which every x86-64 CPU has.
static inline uint32_t audit_json_string_stops16(const uint8_t *bytes) {
    __m128i chunk = _mm_loadu_si128((const __m128i *)bytes);
    __m128i quote = _mm_cmpeq_epi8(chunk, _mm_set1_epi8(0x22));
    __m128i backslash = _mm_cmpeq_epi8(chunk, _mm_set1_epi8(0x5C));
    __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(chunk, _mm_set1_epi8(0x1F)), chunk);  /* chunk <= 0x1F */
    return (uint32_t)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control));
}
#endif
#endif
