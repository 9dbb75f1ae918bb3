/* kcp schema: the built-in API types (generated from proto/) — resources, messages, OpenAPI. */
#ifndef KCP_SCHEMA_H
#define KCP_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * Everything here is static, generated data (docs/SCHEMA.md): pointers returned by these
 * functions are borrowed, valid for the life of the process, and never freed. The tables are
 * read-only and safe to share between threads.
 */

/* How a field's value maps to JSON (and protobuf). */
enum kcp_schema_kind {
    KCP_SCHEMA_STRING,
    KCP_SCHEMA_BYTES,       /* base64 (standard, padded) in JSON */
    KCP_SCHEMA_BOOL,
    KCP_SCHEMA_INT32,
    KCP_SCHEMA_INT64,
    KCP_SCHEMA_DOUBLE,
    KCP_SCHEMA_MESSAGE,     /* a JSON object of the field's message */
    KCP_SCHEMA_TIME,        /* meta/v1 Time: RFC 3339 seconds, UTC ("2024-01-02T03:04:05Z") */
    KCP_SCHEMA_MICROTIME,   /* meta/v1 MicroTime: RFC 3339 with 6 fractional digits, UTC */
    KCP_SCHEMA_DURATION,    /* meta/v1 Duration: Go duration string ("1h2m3s") */
    KCP_SCHEMA_QUANTITY,    /* resource.Quantity: canonical string ("100m", "1Gi") */
    KCP_SCHEMA_INTORSTRING, /* intstr.IntOrString: JSON number or string */
    KCP_SCHEMA_RAWJSON,     /* RawExtension, FieldsV1, apiextensions JSON: embedded JSON */
    KCP_SCHEMA_STRINGLIST,  /* a message wrapping `repeated string items`: JSON array */
    KCP_SCHEMA_SCHEMAORARRAY,       /* JSONSchemaPropsOrArray: object or array of objects */
    KCP_SCHEMA_SCHEMAORBOOL,        /* JSONSchemaPropsOrBool: bool or object */
    KCP_SCHEMA_SCHEMAORSTRINGARRAY, /* JSONSchemaPropsOrStringArray: object or string array */
};

/* Field flags. */
#define KCP_SCHEMA_F_REPEATED 0x01u /* a JSON array */
#define KCP_SCHEMA_F_MAP 0x02u      /* a JSON object with string keys; kind is the value's */
#define KCP_SCHEMA_F_PTR 0x04u      /* Go pointer: kept when zero, omitted when unset */
#define KCP_SCHEMA_F_OMITEMPTY 0x08u /* Go value with omitempty: omitted when zero */
#define KCP_SCHEMA_F_VALUE 0x10u    /* Go value without omitempty: always present */
#define KCP_SCHEMA_F_REQUIRED 0x20u /* required by the OpenAPI schema */
#define KCP_SCHEMA_F_INLINE 0x40u   /* embedded struct: its fields appear in the parent object */

/* Strategic-merge patch strategy bits (x-kubernetes-patch-strategy). */
#define KCP_SCHEMA_PATCH_MERGE 0x01u
#define KCP_SCHEMA_PATCH_REPLACE 0x02u
#define KCP_SCHEMA_PATCH_RETAIN_KEYS 0x04u

/* x-kubernetes-list-type. */
enum kcp_schema_list_type {
    KCP_SCHEMA_LIST_NONE,
    KCP_SCHEMA_LIST_ATOMIC,
    KCP_SCHEMA_LIST_SET,
    KCP_SCHEMA_LIST_MAP,
};

struct kcp_schema_field {
    const char *json;       /* JSON name */
    uint32_t number;        /* protobuf field number */
    uint16_t pb_index;      /* index into the message descriptor's fields[] */
    uint8_t kind;           /* enum kcp_schema_kind (for maps and lists: of one value) */
    uint8_t flags;          /* KCP_SCHEMA_F_* */
    int16_t msg;            /* message index for MESSAGE (and special) kinds, else -1 */
    uint8_t patch;          /* KCP_SCHEMA_PATCH_* */
    uint8_t list_type;      /* enum kcp_schema_list_type */
    const char *merge_key;  /* x-kubernetes-patch-merge-key, or NULL */
    const char *list_keys;  /* x-kubernetes-list-map-keys, comma-separated, or NULL */
    uint8_t map_atomic;     /* x-kubernetes-map-type: atomic */
};

#define KCP_SCHEMA_M_TYPEMETA 0x01u /* JSON starts with kind, apiVersion (not in protobuf) */
#define KCP_SCHEMA_M_ATOMIC 0x02u   /* x-kubernetes-map-type: atomic on the type */

struct kcp_schema_message {
    const char *name;                       /* OpenAPI definition name: io.k8s.api.core.v1.Pod */
    const ProtobufCMessageDescriptor *desc; /* protobuf-c descriptor */
    const struct kcp_schema_field *fields;  /* JSON order (inline fields not flattened) */
    uint16_t nfields;
    uint8_t kind;  /* KCP_SCHEMA_MESSAGE, or the special kind of a special type */
    uint8_t flags; /* KCP_SCHEMA_M_* */
};

/* Verbs of a resource or subresource. */
#define KCP_VERB_GET 0x001u
#define KCP_VERB_LIST 0x002u
#define KCP_VERB_WATCH 0x004u
#define KCP_VERB_CREATE 0x008u
#define KCP_VERB_UPDATE 0x010u
#define KCP_VERB_PATCH 0x020u
#define KCP_VERB_DELETE 0x040u
#define KCP_VERB_DELETECOLLECTION 0x080u

struct kcp_schema_subresource {
    const char *name;                   /* "status", "scale", "log", ... */
    const char *group, *version, *kind; /* kind served there (core group is "") */
    uint16_t verbs;                     /* KCP_VERB_* */
    uint8_t connect;                    /* streaming/connect subresource (exec, log, proxy...) */
};

struct kcp_schema_resource {
    const char *group;   /* "" for the core group */
    const char *version;
    const char *kind;
    const char *list_kind;
    const char *resource; /* plural, lower case */
    const char *singular;
    bool namespaced;
    uint16_t verbs;                  /* KCP_VERB_* */
    const char *const *short_names;  /* NULL-terminated */
    const char *const *categories;   /* NULL-terminated */
    const struct kcp_schema_subresource *subresources;
    uint8_t nsubresources;
    int16_t msg;      /* message index of kind */
    int16_t list_msg; /* message index of list_kind, or -1 */
};

/* Resources, in discovery order (group, version, resource). */
size_t kcp_schema_resource_count(void);
const struct kcp_schema_resource *kcp_schema_resource_at(size_t i);
/* By group ("" = core), version and plural resource name; NULL if unknown. */
const struct kcp_schema_resource *kcp_schema_resource_find(const char *group, const char *version,
                                                           const char *resource);
/* By group, version and kind (the object kind, not the list kind); NULL if unknown. */
const struct kcp_schema_resource *kcp_schema_resource_by_kind(const char *group,
                                                              const char *version,
                                                              const char *kind);
/* A subresource of r by name, or NULL. */
const struct kcp_schema_subresource *kcp_schema_subresource_find(
    const struct kcp_schema_resource *r, const char *name);
/* Maps a verb name ("get", "deletecollection", ...) to its KCP_VERB_* bit; 0 if unknown. */
unsigned kcp_schema_verb_bit(const char *verb);
/* The name of a single KCP_VERB_* bit, or NULL. */
const char *kcp_schema_verb_name(unsigned bit);

/* Messages. */
size_t kcp_schema_message_count(void);
const struct kcp_schema_message *kcp_schema_message_at(int index);
/* By OpenAPI definition name ("io.k8s.api.core.v1.Pod"); NULL if unknown. */
const struct kcp_schema_message *kcp_schema_message_find(const char *name);
/* By group/version/kind ("" group = core); NULL if unknown. */
const struct kcp_schema_message *kcp_schema_message_by_gvk(const char *group, const char *version,
                                                           const char *kind);
/* The message of a field of MESSAGE (or special) kind; NULL for scalars. */
const struct kcp_schema_message *kcp_schema_field_message(const struct kcp_schema_field *f);

/*
 * Looks up a JSON key among a message's fields, looking through inline fields. On success
 * *out is the field and, if the field lives in an inline child, *out_inline is the parent's
 * inline field (else NULL). Returns 0 or KCP_ENOTFOUND.
 */
int kcp_schema_field_find(const struct kcp_schema_field **out,
                          const struct kcp_schema_field **out_inline,
                          const struct kcp_schema_message *m, const char *json);

/*
 * Iterates a message's fields in JSON order with inline fields flattened. Start with
 * *it = 0; each call returns the next field (and its inline parent through out_inline, may be
 * NULL) or NULL at the end.
 */
const struct kcp_schema_field *kcp_schema_field_next(const struct kcp_schema_message *m,
                                                     size_t *it,
                                                     const struct kcp_schema_field **out_inline);

/*
 * OpenAPI documents, generated at build time from the same schema (upstream definition names,
 * extensions and paths). Each call inflates a new copy: *out is NUL-terminated JSON the caller
 * frees with free(). Cache the result; documents do not change while the process runs.
 */
int kcp_schema_openapi_v2(char **out, size_t *out_len);
/* Number of v3 documents and their paths ("api/v1", "apis/apps/v1", ...). */
size_t kcp_schema_openapi_v3_count(void);
const char *kcp_schema_openapi_v3_path(size_t i);
/* The v3 document for a path as above; KCP_ENOTFOUND if there is none. */
int kcp_schema_openapi_v3(const char *path, char **out, size_t *out_len);

#endif
