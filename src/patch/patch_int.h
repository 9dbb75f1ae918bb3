/* Internals shared by the patch module's files. */
#ifndef KCP_PATCH_INT_H
#define KCP_PATCH_INT_H

#include <kcp/base.h>
#include <kcp/patch.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- util.c ---- */

/* Sets *out_err (if wanted) to the formatted message and returns code. */
int patch_fail(char **out_err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* KCP_EBADREQUEST with a message if v nests more than KCP_PATCH_MAX_DEPTH containers. */
int patch_check_depth(const json_t *v, const char *what, char **out_err);
/* Containers nested in v (a scalar is 0), counting at most limit + 1 levels deep. */
int patch_depth(const json_t *v, int limit);
/* Casts away const for jansson's iteration API, which does not modify the object. */
#define PATCH_MUT(v) ((json_t *)(uintptr_t)(v))

/* Go's fmt rendering of a decoded JSON value, used where upstream's messages print values:
 * verb 'v' (%v) or 's' (%s, where non-strings print as %!s(type=value)). */
void patch_go_format(struct kcp_buf *b, const json_t *v, char verb);
/* The Go type name upstream's errors print for a decoded JSON value ("string",
 * "map[string]interface {}", ...); NULL for JSON null. */
const char *patch_go_type(const json_t *v);
/* Go's strconv.Quote, for strconv errors. */
void patch_go_quote(struct kcp_buf *b, const char *s);

/* Same JSON kind, counting true and false as one kind (Go's bool). */
bool patch_same_kind(const json_t *a, const json_t *b);

/* ---- pointer.c: upstream's JSON pointer and container semantics ---- */

/* A resolved parent: the container holding the target and the decoded last token. */
struct patch_target {
    json_t *container; /* borrowed from the document; NULL if the parent is missing */
    char *key;         /* owned */
};
/* Resolves every token but the last, as upstream's findObject does. */
void patch_pointer_find(json_t *root, const char *path, struct patch_target *out);
void patch_target_clear(struct patch_target *t);
/* Container operations. Errors are message strings in upstream's words (caller frees); on
 * success they return NULL. get's *out may be NULL (missing member, or a JSON null). */
char *patch_container_get(json_t *c, const char *key, json_t **out);
char *patch_container_add(json_t *c, const char *key, json_t *val); /* steals val */
char *patch_container_set(json_t *c, const char *key, json_t *val); /* steals val */
char *patch_container_remove(json_t *c, const char *key);
/* Tokens in a pointer ("" has none, "/a/b" two): nesting added by putting a value there. */
int patch_pointer_depth(const char *path);

/* ---- clean.c ---- */

/* Deep copy of a patch value with directive keys removed and, in objects, null members dropped
 * (upstream's discardNullValuesFromPatch plus decoding into the typed object). */
json_t *patch_clean_copy(const json_t *v);
/* True for a strategic merge patch directive key. */
bool patch_is_directive(const char *key);
/* Deep copy with null members of objects dropped (evanphx's pruneNulls); arrays keep nulls. */
json_t *patch_prune_copy(const json_t *v);

/* ---- scalar.c: an index of scalar JSON values by Go's == ---- */

struct patch_index;
/* An index over n expected entries. */
struct patch_index *patch_index_new(size_t n);
void patch_index_free(struct patch_index *ix);
/* Records v (the index takes a reference) at position pos unless an equal value is there
 * already (the first position wins). Returns 1 if added, 0 if already there, -1 if v is not a
 * scalar (Go cannot compare maps or slices with ==). */
int patch_index_add(struct patch_index *ix, const json_t *v, size_t pos);
/* Position recorded for a value equal to v, or -1. */
long patch_index_find(const struct patch_index *ix, const json_t *v);
/* Go's == on two decoded JSON scalars (false for containers). */
bool patch_scalar_equal(const json_t *a, const json_t *b);

/* ---- strategic.c / smplist.c ---- */

struct patch_smp {
    const struct kcp_smp_schema *schema;
    char **out_err;
};
/* Node helpers that tolerate a NULL schema or node. */
const void *patch_smp_field(const struct patch_smp *s, const void *node, const char *name);
const void *patch_smp_items(const struct patch_smp *s, const void *node);
unsigned patch_smp_strategy(const struct patch_smp *s, const void *node,
                            const char **out_merge_key);

/* Merges patch into orig (owned, may be NULL); returns the result through *out. */
int patch_smp_merge_map(struct patch_smp *s, json_t *orig, const json_t *patch, const void *node,
                        json_t **out);
/* Merges a list by upstream's mergeSlice; orig is owned and consumed. name is the field's. */
int patch_smp_merge_list(struct patch_smp *s, json_t *orig, const json_t *patch, const void *node,
                         const char *merge_key, bool delete_list, const char *name, json_t **out);
/* Handles every $setElementOrder/<list> key of patch, merging and ordering that list; records
 * each list it took care of as a key of handled. */
int patch_smp_set_element_order(struct patch_smp *s, json_t *orig, const json_t *patch,
                                const void *node, json_t *handled);
/* Upstream's partition and normalizeElementOrder: merged's items that are in order (by merge
 * key, or by value when merge_key is NULL) sorted as there, the others as in server, the two
 * interleaved by server's order. A new array through *out. */
int patch_smp_order(struct patch_smp *s, const json_t *merged, const json_t *order,
                    const json_t *server, const char *merge_key, int kind, json_t **out);
int patch_smp_err_bad_patch_type(struct patch_smp *s, const json_t *directive, const json_t *map);
int patch_smp_err_uncomparable(struct patch_smp *s, const char *what, const json_t *v);
/* Errors in upstream's words. */
int patch_smp_err_no_merge_key(struct patch_smp *s, const json_t *map, const char *key);
int patch_smp_err_bad_arg_type(struct patch_smp *s, const char *expected, const json_t *actual);
/* Upstream's sliceElementType over two lists; *out_kind is a json_type (JSON_TRUE for bools). */
int patch_smp_element_kind(struct patch_smp *s, const json_t *a, const json_t *b, int *out_kind);

#define PATCH_ERR_PRIMITIVE_LIST "invalid patch format of primitive list"
#define PATCH_ERR_RETAIN_KEYS "invalid patch format of retainKeys"
#define PATCH_ERR_SET_ORDER "invalid patch format of setElementOrder list"
#define PATCH_ERR_LIST_OF_LISTS "lists of lists are not supported"

#endif
