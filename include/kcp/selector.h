/* kcp selector: label and field selectors as the API server parses and matches them. */
#ifndef KCP_SELECTOR_H
#define KCP_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Grammar and semantics are upstream's (k8s.io/apimachinery/pkg/labels and pkg/fields), error
 * messages are upstream's words where upstream has them. Parsed selectors are immutable: one can
 * be shared by any number of readers (a LIST and its watch) until it is freed.
 *
 * Errors: every parse function returns 0, or KCP_EBADREQUEST with *out_err set to a one-line
 * message the caller frees (the API layer answers 400 BadRequest with it). out_err may be NULL.
 * On error *out is NULL. Input past the limits below is KCP_EBADREQUEST too.
 */
#define KCP_SELECTOR_MAX_LEN 65536         /* bytes of selector text */
#define KCP_SELECTOR_MAX_REQUIREMENTS 1000 /* comma-separated requirements or terms */
#define KCP_SELECTOR_MAX_VALUES 1000       /* values in one in/notin list */

/* Operators of a requirement (k8s.io/apimachinery/pkg/selection). Fields use EQ, DEQ and NEQ. */
enum kcp_selector_op {
    KCP_SELECTOR_EQ,         /* k=v */
    KCP_SELECTOR_DEQ,        /* k==v */
    KCP_SELECTOR_NEQ,        /* k!=v: also matches objects without k */
    KCP_SELECTOR_IN,         /* k in (a,b) */
    KCP_SELECTOR_NOTIN,      /* k notin (a,b): also matches objects without k */
    KCP_SELECTOR_EXISTS,     /* k */
    KCP_SELECTOR_NOT_EXISTS, /* !k */
    KCP_SELECTOR_GT,         /* k>5: k's value, read as an integer, is greater */
    KCP_SELECTOR_LT,         /* k<5 */
};

/* One label requirement, borrowed from its selector. values are sorted and unique. */
struct kcp_selector_requirement {
    const char *key;
    enum kcp_selector_op op;
    const char *const *values;
    size_t nvalues;
};

/* ---- Label selectors ------------------------------------------------------------------------ */

struct kcp_label_selector;

/*
 * Parses a label selector ("app=web,tier in (a,b),!canary"). "" (or whitespace) gives a selector
 * that matches everything. Requirements are kept sorted by key, as upstream keeps them.
 */
int kcp_selector_parse_labels(struct kcp_label_selector **out, const char *text, char **out_err);
/* True if every requirement holds for labels: an object of string to string, or NULL (no labels).
 * A non-string value counts as an absent label. */
bool kcp_selector_labels_matches(const struct kcp_label_selector *sel, const json_t *labels);
/* True if the selector has no requirement (matches everything). */
bool kcp_selector_labels_empty(const struct kcp_label_selector *sel);
size_t kcp_selector_labels_count(const struct kcp_label_selector *sel);
/* The i-th requirement (i < count), valid while sel lives. */
void kcp_selector_labels_get(const struct kcp_label_selector *sel, size_t i,
                             struct kcp_selector_requirement *out);
/* The one value key must equal (from k=v, k==v or k in (v)), as upstream's RequiresExactMatch;
 * NULL if the selector does not pin key. Borrowed from sel. */
const char *kcp_selector_labels_exact(const struct kcp_label_selector *sel, const char *key);
/* Upstream's canonical text ("a in (x,y),b!=c,!d"); the caller frees. */
char *kcp_selector_labels_string(const struct kcp_label_selector *sel);
void kcp_selector_labels_free(struct kcp_label_selector *sel);

/* ---- Field selectors ------------------------------------------------------------------------ */

struct kcp_field_selector;

/* One field term, borrowed from its selector; value is unescaped. */
struct kcp_selector_term {
    const char *field;
    enum kcp_selector_op op; /* EQ, DEQ or NEQ */
    const char *value;
};

/*
 * Reads field `field` of the object ctx points at: 0 and *out_value (borrowed for the duration of
 * the match), or KCP_ENOTFOUND for a field the kind does not support. At match time any non-zero
 * return reads as the empty string, as upstream's fields.Set does for a missing field.
 */
typedef int (*kcp_selector_field_get_cb)(void *ctx, const char *field, const char **out_value);
/* True if the kind the API layer serves supports selecting on field. */
typedef bool (*kcp_selector_field_supported_cb)(void *ctx, const char *field);

/*
 * Parses a field selector ("metadata.name=x,status.phase!=Running"), with upstream's escapes
 * \, \= and \\ in values. Field names are not checked here: see kcp_selector_fields_check.
 * "" matches everything. Terms are kept in upstream's order (sorted by their text).
 */
int kcp_selector_parse_fields(struct kcp_field_selector **out, const char *text, char **out_err);
/*
 * Checks every field name with supported(): the first unsupported one gives KCP_EBADREQUEST and
 * "field label not supported: X" (upstream's message for its 400) through *out_err.
 */
int kcp_selector_fields_check(const struct kcp_field_selector *sel,
                              kcp_selector_field_supported_cb supported, void *ctx, char **out_err);
/* True if every term holds for the object behind get/ctx. */
bool kcp_selector_fields_matches(const struct kcp_field_selector *sel,
                                 kcp_selector_field_get_cb get, void *ctx);
bool kcp_selector_fields_empty(const struct kcp_field_selector *sel);
size_t kcp_selector_fields_count(const struct kcp_field_selector *sel);
void kcp_selector_fields_get(const struct kcp_field_selector *sel, size_t i,
                             struct kcp_selector_term *out);
/* The value field must equal (f=v or f==v), or NULL; borrowed from sel. */
const char *kcp_selector_fields_exact(const struct kcp_field_selector *sel, const char *field);
/* Upstream's canonical text with values escaped again; the caller frees. */
char *kcp_selector_fields_string(const struct kcp_field_selector *sel);
void kcp_selector_fields_free(struct kcp_field_selector *sel);

#endif
