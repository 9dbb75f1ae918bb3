/* kcp codec: JSON and Kubernetes protobuf bodies <-> jansson trees in upstream's shape. */
#ifndef KCP_CODEC_H
#define KCP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kcp/base.h"
#include "kcp/schema.h"

/*
 * The internal form of an object is a jansson tree (json_t) whose object keys are in upstream's
 * JSON field order (jansson keeps insertion order). Every function returns 0 or a negative
 * KCP_E* code; on failure the optional `err` receives a one-line message for a Status.
 * Input trees are borrowed; trees returned through `out` belong to the caller (json_decref).
 */

#define KCP_CODEC_MAX_DEPTH 100 /* JSON nesting limit (docs/LIMITS.md) */

struct kcp_codec_err {
    char msg[256];
};

/*
 * Parses a JSON body. Fails with KCP_EBADREQUEST on malformed JSON, nesting deeper than
 * KCP_CODEC_MAX_DEPTH, or a NUL character. A repeated key keeps its last value (as upstream);
 * if `duplicates` is non-NULL (a JSON array), each repeated key's path (".metadata.name") is
 * appended to it.
 */
int kcp_codec_json_parse(json_t **out, const char *body, size_t len, json_t *duplicates,
                         struct kcp_codec_err *err);

/*
 * Parses a YAML document into a tree as sigs.k8s.io/yaml converts YAML to JSON (go-yaml v2, so
 * YAML 1.1 scalars: yes/no/on/off are booleans, 0x1F and 0777 integers). The subset manifests
 * use: block mappings and sequences, flow collections, plain and quoted scalars, literal and
 * folded block scalars, comments, one document. Anchors, aliases, tags, complex and merge keys
 * and several documents fail with KCP_EBADREQUEST rather than being guessed at, as does
 * nesting deeper than KCP_CODEC_MAX_DEPTH; messages read "error converting YAML to JSON: yaml:
 * line N: ..." like upstream's.
 */
int kcp_codec_yaml_parse(json_t **out, const char *body, size_t len, struct kcp_codec_err *err);

/* Flags of kcp_codec_normalize. */
#define KCP_CODEC_KEEP_UNKNOWN 0x1u /* keep unknown fields (after the known ones) */

/*
 * Rewrites `in`, an object of message m, into a new tree in upstream's field order with
 * special values in upstream's canonical form (Time in UTC, MicroTime with microseconds,
 * IntOrString/Quantity checked). Unknown fields are dropped (or kept, with
 * KCP_CODEC_KEEP_UNKNOWN) and, if `unknown` is a JSON array, their paths (".spec.foo") are
 * appended to it. A value of the wrong JSON type fails with KCP_EBADREQUEST. For a message
 * with TYPEMETA, kind and apiVersion come first when present.
 */
int kcp_codec_normalize(json_t **out, const json_t *in, const struct kcp_schema_message *m,
                        unsigned flags, json_t *unknown, struct kcp_codec_err *err);

/*
 * Encodes a tree as kube-apiserver writes JSON: compact, keys in tree order, Go's escaping
 * (<, >, & and U+2028/U+2029 as \u escapes, invalid UTF-8 as U+FFFD), no trailing newline.
 * Appends to out.
 */
void kcp_codec_json_write(struct kcp_buf *out, const json_t *v);
/* One string of n bytes as kcp_codec_json_write writes it, quotes included. Appends to out. */
void kcp_codec_json_string(struct kcp_buf *out, const char *s, size_t n);

/* Encodes a tree as YAML (block style, keys sorted, as upstream writes application/yaml). */
void kcp_codec_yaml_write(struct kcp_buf *out, const json_t *v);
/* Whether kcp_codec_yaml_write writes the string s (NUL-terminated) plain, not quoted. */
bool kcp_codec_yaml_plain(const char *s);

/* The Kubernetes protobuf envelope: "k8s\0" + runtime.Unknown. Fields are borrowed from buf. */
struct kcp_codec_envelope {
    const char *api_version; /* NUL-terminated copies owned by the envelope */
    const char *kind;
    const uint8_t *raw; /* the object message, borrowed from the input */
    size_t raw_len;
    char *storage_; /* internal */
};
/* Splits a protobuf body. KCP_EBADREQUEST when the magic or the Unknown message is wrong. */
int kcp_codec_envelope_decode(struct kcp_codec_envelope *out, const uint8_t *buf, size_t len,
                              struct kcp_codec_err *err);
void kcp_codec_envelope_free(struct kcp_codec_envelope *env);
/* Appends "k8s\0" + Unknown{typeMeta{apiVersion, kind}, raw, "", ""} to out. */
void kcp_codec_envelope_encode(struct kcp_buf *out, const char *api_version, const char *kind,
                               const uint8_t *raw, size_t raw_len);

/*
 * Protobuf message of type m <-> tree. kcp_codec_pb_to_json decodes raw (the object message,
 * no envelope) into a new tree in upstream's field order, applying Go's presence rules (a zero
 * value of a non-pointer omitempty field is omitted). kcp_codec_json_to_pb appends the message
 * encoding of a (normalized) tree to out; fields gogo-protobuf always writes are written.
 */
int kcp_codec_pb_to_json(json_t **out, const struct kcp_schema_message *m, const uint8_t *raw,
                         size_t len, struct kcp_codec_err *err);
int kcp_codec_json_to_pb(struct kcp_buf *out, const struct kcp_schema_message *m,
                         const json_t *obj, struct kcp_codec_err *err);

/*
 * Whole objects: a protobuf body (with envelope) to a tree carrying kind and apiVersion first,
 * and back. The type comes from the envelope (decode) or from the tree's apiVersion/kind
 * (encode). A type without a schema is KCP_EBADREQUEST on decode and KCP_ENOTACCEPTABLE on
 * encode (the caller answers JSON instead). Embedded objects (RawExtension) that carry the
 * protobuf magic are decoded recursively.
 */
int kcp_codec_pb_decode_object(json_t **out, const uint8_t *body, size_t len,
                               struct kcp_codec_err *err);
int kcp_codec_pb_encode_object(struct kcp_buf *out, const json_t *obj, struct kcp_codec_err *err);

/* Formats seconds since the epoch as RFC 3339 UTC ("2006-01-02T15:04:05Z") into buf[32]. */
void kcp_codec_format_time(char *buf, int64_t seconds);
/* Parses RFC 3339 (any offset, optional fraction) to seconds and nanoseconds (UTC). */
int kcp_codec_parse_time(const char *s, int64_t *out_seconds, int32_t *out_nanos);

#endif
