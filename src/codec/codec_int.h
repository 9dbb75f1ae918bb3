/* codec_int.h: helpers shared by the codec's files. */
#ifndef KCP_CODEC_INT_H
#define KCP_CODEC_INT_H

#include <stdarg.h>
#include <stdbool.h>

#include "kcp/codec.h"

int codec_fail(struct kcp_codec_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Base64 (standard alphabet, padded). decode returns false on malformed input. */
char *codec_base64_encode(const uint8_t *data, size_t len);
bool codec_base64_decode(const char *s, size_t slen, uint8_t **out, size_t *out_len);

/* MicroTime: "2006-01-02T15:04:05.000000Z". buf holds 40 bytes. */
void codec_format_microtime(char *buf, int64_t seconds, int32_t nanos);
/* Go time.Duration formatting and parsing (nanoseconds). */
void codec_format_duration(char *buf, size_t cap, int64_t ns);
int codec_parse_duration(const char *s, int64_t *out_ns);

/* The zero/empty test of Go's omitempty for a JSON value. */
bool codec_json_is_empty(const json_t *v);

#endif
