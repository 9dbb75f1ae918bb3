/*
 * Admission data generated from proto/ (scripts/gen/apigen.py, docs/SCHEMA.md "Admission"): the
 * default and validation rules of each schema message, which the generic walkers in admit.c
 * apply, and the named C hooks (admit_hooks.c) for defaults and checks that are real logic.
 */
#ifndef KCP_API_ADMIT_H
#define KCP_API_ADMIT_H

#include <kcp/schema.h>

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults come first: the walkers tell them from checks by op <= API_ADMIT_DEFAULT_FN. */
enum api_admit_op {
    API_ADMIT_DEFAULT,      /* arg: the JSON value, set when the field is unset */
    API_ADMIT_DEFAULT_FROM, /* arg: a sibling field whose value is copied when unset */
    API_ADMIT_DEFAULT_FN,   /* dfn decides (called whether or not the field is set) */
    API_ADMIT_REQUIRED,     /* "Required value" when unset or empty */
    API_ADMIT_MIN,          /* an integer >= num */
    API_ADMIT_ENUM,         /* arg: the supported values, '|'-separated */
    API_ADMIT_FORMAT,       /* a string of format fmt */
    API_ADMIT_KEYS,         /* a map whose keys have format fmt */
    API_ADMIT_IMMUTABLE,    /* on update: unchanged */
    API_ADMIT_FROZEN_WHEN,  /* on update: unchanged when the old object's arg field is true */
    API_ADMIT_CHECK_FN,     /* cfn checks */
};

enum api_admit_format {
    API_FMT_NONE,
    API_FMT_LABEL,        /* DNS-1123 label */
    API_FMT_SUBDOMAIN,    /* DNS-1123 subdomain */
    API_FMT_DNS1035,      /* DNS-1035 label */
    API_FMT_PATH_SEGMENT, /* a name usable as one path segment (RBAC) */
    API_FMT_CONFIG_KEY,   /* a ConfigMap or Secret key */
};

/* Where a walker is: the object being admitted and the objects enclosing the current one. */
struct api_admit_frame {
    json_t *obj;
    const struct kcp_schema_message *msg;
};

#define API_ADMIT_MAX_DEPTH 64

struct api_admit_ctx {
    const char *kind;     /* the admitted object's kind ("Pod"); rules may be scoped to kinds */
    json_t *root;
    const json_t *old_root; /* the stored object on update, else NULL (validation only) */
    struct api_admit_frame stack[API_ADMIT_MAX_DEPTH]; /* root first; the last is the current */
    size_t depth;
};

/*
 * A default hook: obj is the object holding field (a message-level hook gets field NULL). It may
 * set obj[field] or, for a message hook, anything in obj. Returns true if it changed obj.
 */
typedef bool api_default_fn(const struct api_admit_ctx *c, json_t *obj, const char *field);
/* A check hook: obj[field] at path (old: the old object at the same place, or NULL); appends
 * causes ({reason, message, field}) to causes. */
typedef void api_check_fn(const struct api_admit_ctx *c, const json_t *obj, const json_t *old,
                          const char *field, const char *path, json_t *causes);

struct api_admit_rule {
    uint16_t field;    /* index in the message's fields[] */
    uint8_t op;        /* enum api_admit_op */
    uint8_t fmt;       /* enum api_admit_format */
    const char *scope; /* kinds the rule applies to ("Job,CronJob"), or NULL for all */
    const char *arg;
    const char *cond;  /* defaults only: "sibling=A|B" or "!sibling=A|B", or NULL */
    api_default_fn *dfn;
    api_check_fn *cfn;
    int64_t num;
};

#define API_ADMIT_VISIT_DEFAULTS 0x1u /* defaults (or value structs to create) at or below */
#define API_ADMIT_VISIT_CHECKS 0x2u   /* checks at or below */

/* One per schema message, at the schema's message index. */
struct api_admit_message {
    const char *name; /* the schema message's name (tests check the two tables agree) */
    const struct api_admit_rule *rules;
    uint16_t nrules;
    uint8_t visit;         /* API_ADMIT_VISIT_* */
    api_default_fn *hook;  /* after the message's fields are defaulted, or NULL */
    uint8_t name_format;   /* kinds: the format of metadata.name */
};

extern const struct api_admit_message api_admit_messages[];
extern const size_t api_admit_nmessages;

/* ---- helpers for hooks (admit.c) ---- */

/* The enclosing object n levels above the current one (0 = current), or NULL. */
const struct api_admit_frame *api_admit_up(const struct api_admit_ctx *c, size_t n);
/* Go's "unset" for a field: absent, null, or the zero value of a non-pointer field. */
bool api_admit_unset(const json_t *v, const struct kcp_schema_field *f);
/* Appends {reason, message, field}; message is printf-style. */
void api_admit_cause(json_t *causes, const char *reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The problem with s as format fmt (upstream's message, caller frees), or NULL if it is valid. */
char *api_admit_check_format(enum api_admit_format fmt, const char *s);

#endif
