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

/* ---- fieldset.c / apply.c: server-side apply ---- */

/*
 * A field set is a trie of JSON objects: each key is a serialized path element ("f:spec",
 * "k:{\"name\":\"app\"}", "v:\"x\"", "i:0") and the key SSA_SELF (value null) marks a node
 * that is itself in the set. A node with neither is never kept.
 */
#define SSA_SELF "."
#define SSA_MAX_PATH (KCP_PATCH_MAX_DEPTH + 2) /* path elements: one per nesting level */

/* A walk over values and their schema: the current path and where errors go. */
struct ssa_walk {
    const struct kcp_ssa_schema *schema;
    char **out_err;
    struct kcp_buf path;      /* the path elements, NUL-separated, root first */
    size_t off[SSA_MAX_PATH]; /* where each starts in path */
    size_t depth;
    bool check_dups; /* reject duplicate keys in lists (applied configurations) */
};
/* Forgets the path and frees its buffer (the walk stays usable). */
void ssa_walk_clear(struct ssa_walk *w);
/* Pushes a path element (copied), or "f:" + a field name; KCP_EBADREQUEST when the path would
 * be too deep. */
int ssa_push(struct ssa_walk *w, const char *pe);
int ssa_push_field(struct ssa_walk *w, const char *name);
void ssa_pop(struct ssa_walk *w);
/* Path element i of the current path. */
#define SSA_PE(w, i) ((w)->path.data + (w)->off[i])
/* "f:" + name in buf when it fits, else in *heap (caller frees). */
const char *ssa_field_key(char *buf, size_t cap, const char *name, char **heap);
/* Fails with "<path>: <message>" (upstream's shape for typed-value errors). */
int ssa_fail(struct ssa_walk *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The type of node for value v (v may be NULL): deduced from the value without a schema node,
 * and a schema type the value does not fit is read as a scalar. */
void ssa_resolve(const struct ssa_walk *w, const void *node, const json_t *v,
                 struct kcp_ssa_type *out);
/* The node of field name of an object of type t at node; *out_declared says whether it is a
 * declared struct field (else a map key or an unknown field). */
const void *ssa_field_node(const struct ssa_walk *w, const void *node, const struct kcp_ssa_type *t,
                           const char *name, bool *out_declared);
const void *ssa_items_node(const struct ssa_walk *w, const void *node);
/* The path element of a list item ("k:{...}" or "v:..."), into out (reset first). */
int ssa_item_pe(struct ssa_walk *w, const void *node, const struct kcp_ssa_type *t,
                const json_t *item, size_t index, struct kcp_buf *out);

/* Trie operations. New tries are returned as new references; inputs are not modified. */
json_t *ssa_set_new(void);
bool ssa_set_member(const json_t *s);
bool ssa_set_has_children(const json_t *s);
bool ssa_set_empty(const json_t *s);
/* Inserts the walk's current path. */
void ssa_set_insert(json_t *s, const struct ssa_walk *w);
json_t *ssa_set_union(const json_t *a, const json_t *b);
json_t *ssa_set_difference(const json_t *a, const json_t *b);
json_t *ssa_set_intersection(const json_t *a, const json_t *b);
/* a without everything at or below a member of b. */
json_t *ssa_set_recursive_difference(const json_t *a, const json_t *b);
/* FieldsV1 <-> trie. from_v1 canonicalises k: and v: elements; KCP_EBADREQUEST if malformed. */
json_t *ssa_set_to_v1(const json_t *s);
int ssa_set_from_v1(json_t **out, const json_t *v1, char **out_err);
/* Calls fn for each member path in upstream's iteration order (a node's members, then its
 * children), with the path rendered as upstream prints it (".spec.containers[name=\"a\"]"). */
void ssa_set_iterate(const json_t *s, void (*fn)(const char *path, void *data), void *data);
/* Orders path elements as upstream does (fields, keys, values, indexes). */
int ssa_pe_compare(const char *a, const char *b);

/* The field set of value (ToFieldSet). */
int ssa_to_set(struct ssa_walk *w, json_t *set, const json_t *v, const void *node);
/* Compares lhs and rhs (either may be NULL for absent) into added, modified and removed. */
struct ssa_cmp {
    json_t *added, *modified, *removed;
};
int ssa_compare(struct ssa_walk *w, struct ssa_cmp *c, const json_t *l, const json_t *r,
                const void *node);

#endif
