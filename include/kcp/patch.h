/* kcp patch: JSON, merge and strategic merge patches, and server-side apply, as upstream does. */
#ifndef KCP_PATCH_H
#define KCP_PATCH_H

#include <jansson.h>
#include <stdbool.h>

/*
 * Each function takes the stored object (original, not modified: it may be a shared cached
 * value) and the already parsed request body (patch, not modified), and on success returns 0 and
 * a new document through *out that the caller owns (json_decref). On failure *out is NULL and
 * *out_err (if out_err is not NULL) is a one-line message the caller frees; the messages are
 * upstream's words, so the API layer can put them in a Status as they are.
 *
 * Return codes and what upstream kube-apiserver 1.32 answers for the same input:
 *   KCP_EBADREQUEST  400 BadRequest: the patch cannot be read (JSON patch not an array of
 *                    objects, merge patch null or a scalar, strategic patch not an object),
 *                    a malformed directive ($deleteFromPrimitiveList, $setElementOrder,
 *                    $retainKeys), an input nested deeper than KCP_PATCH_MAX_DEPTH, or a JSON
 *                    patch whose result would nest deeper than that (kcp's own limits).
 *   KCP_EINVALID     422 Invalid: the patch is well formed but does not apply: a failed JSON
 *                    patch "test", a path that does not exist, a bad array index, an unknown
 *                    op, copies past KCP_PATCH_MAX_COPY_BYTES; for strategic merge patch,
 *                    lists of lists. Upstream's Status message is then "the server rejected
 *                    our request due to an error in our request" and *out_err is the cause.
 *   KCP_ETOOLARGE    413 RequestEntityTooLarge: a JSON patch of more than KCP_PATCH_MAX_OPS
 *                    operations (upstream prefixes "Request entity too large: "), or one whose
 *                    moves into deeper places would make kcp re-walk more than ten million
 *                    values (kcp's own limit).
 *   KCP_EINTERNAL    500: strategic merge patch errors upstream does not classify and so
 *                    answers with 500 (a missing merge key, "$patch: merge" in a list, an
 *                    unknown $patch value, element types that differ, a $setElementOrder list
 *                    that does not match the patch list). Upstream's Status reason is empty.
 *   KCP_EINTERNAL is also merge patch's answer for an original that is JSON null.
 */
#define KCP_PATCH_MAX_DEPTH 100                    /* containers nested in any input document */
#define KCP_PATCH_MAX_OPS 10000                    /* operations in one JSON patch (upstream's) */
#define KCP_PATCH_MAX_COPY_BYTES (3 * 1024 * 1024) /* JSON bytes "copy" may add (upstream's) */

/*
 * RFC 6902 JSON patch with upstream's (evanphx/json-patch v4) behaviour where it differs from
 * the RFC: "replace" of a missing object member adds it, negative array indexes count from the
 * end, "copy" from a missing member adds null, "replace" at "" swaps the whole document.
 */
int kcp_patch_apply_json(json_t **out, const json_t *original, const json_t *patch, char **out_err);

/* RFC 7386 JSON merge patch. A patch that is an array replaces the document (the API layer
 * then rejects a non-object result as upstream's decoder does); null or a scalar is rejected. */
int kcp_patch_apply_merge(json_t **out, const json_t *original, const json_t *patch,
                          char **out_err);

/*
 * Strategic merge patch schema. The API layer supplies nodes from its generated tables; kcp
 * only passes them back to these callbacks. A node describes one field together with its value's
 * type. NULL stands for "unknown": unknown fields merge like unstructured data (maps merge, lists
 * are replaced), as upstream does for them. Callbacks are never called with a NULL node.
 */
enum {
    KCP_SMP_MERGE = 1u << 0,       /* list: merge (by merge key for lists of objects) */
    KCP_SMP_RETAIN_KEYS = 1u << 1, /* object/list items: clients send $retainKeys for it */
    KCP_SMP_REPLACE = 1u << 2,     /* object: replace as a whole instead of merging */
};
struct kcp_smp_schema {
    const void *root; /* the node of the whole object (the kind) */
    /* The node of member `name` of an object described by node; for map types (labels), the
     * node of every value. NULL if the field is unknown. */
    const void *(*field)(const void *node, const char *name);
    /* The node of the items of the list described by node, or NULL. */
    const void *(*items)(const void *node);
    /* KCP_SMP_* flags of the field described by node; for a merged list of objects also its
     * patchMergeKey through *out_merge_key (a string that outlives the call). */
    unsigned (*strategy)(const void *node, const char **out_merge_key);
};

/*
 * Strategic merge patch as upstream's strategicpatch.StrategicMergeMapPatch applies it on the
 * server: directives $patch (replace, delete; merge in a list is rejected as upstream does),
 * $retainKeys, $deleteFromPrimitiveList/<list> and $setElementOrder/<list>, and upstream's order
 * of merged list items. schema may be NULL (every field unknown). original and patch must be
 * objects. No directive key is ever left in the result, and values taken from the patch have
 * their null members dropped, as decoding into the typed object does upstream.
 */
int kcp_patch_apply_strategic(json_t **out, const json_t *original, const json_t *patch,
                              const struct kcp_smp_schema *schema, char **out_err);

/* ---- Server-side apply: field ownership (metadata.managedFields) and the apply merge ----
 *
 * What kube-apiserver 1.32 does through sigs.k8s.io/structured-merge-diff and its field
 * manager chain (docs/APPLY.md): every write records which manager owns
 * which fields (entries of operation Update), an apply patch merges the applied configuration
 * into the live object, removes what the manager applied last time and no manager owns any
 * more, and fails with conflicts when it would change a field another manager owns.
 *
 * Field sets are written in the FieldsV1 format: a trie of JSON objects whose keys are path
 * elements, "f:<field>", "k:<json of the key fields>" (items of a list keyed by
 * x-kubernetes-list-map-keys), "v:<json value>" (items of a set) and "i:<index>" (never
 * produced here), with "." marking a node that is itself owned and has owned children.
 */

/* How structured-merge-diff sees one node of a type (kube-openapi's OpenAPI conversion). */
enum kcp_ssa_kind {
    KCP_SSA_DEDUCED, /* no schema: objects are maps with every key owned, arrays atomic */
    KCP_SSA_SCALAR,  /* strings, numbers, booleans, and special values (Time, Quantity, ...) */
    KCP_SSA_STRUCT,  /* an object with declared fields */
    KCP_SSA_MAP,     /* an object whose keys are data (labels): every key is owned */
    KCP_SSA_LIST,
};
#define KCP_SSA_MAX_KEYS 4
struct kcp_ssa_type {
    enum kcp_ssa_kind kind;
    bool atomic; /* struct/map: x-kubernetes-map-type atomic; list: owned as a whole */
    /* A non-atomic list is a set of scalars (nkeys 0) or keyed by these item fields. */
    size_t nkeys;
    const char *keys[KCP_SSA_MAX_KEYS];
};
struct kcp_ssa_schema {
    const void *root; /* the node of the whole object (the kind) */
    /* The type of the node; never called with NULL (NULL nodes are KCP_SSA_DEDUCED). */
    void (*type)(const void *node, struct kcp_ssa_type *out);
    /* A struct's declared field `name` (NULL if not declared), or a map's value node. */
    const void *(*field)(const void *node, const char *name);
    /* A list's item node, or NULL. */
    const void *(*items)(const void *node);
    /* For a keyed list node: the value an item that omits key field `key` takes (the OpenAPI
     * default), as a new reference; NULL when there is none (the item is then an error). May
     * be NULL. */
    json_t *(*key_default)(const void *node, const char *key);
};

/* One write, as the field manager records it. Strings are borrowed for the call. */
struct kcp_ssa_op {
    const char *manager;     /* fieldManager, or the User-Agent's prefix */
    const char *api_version; /* of the resource: "apps/v1", "v1" */
    const char *subresource; /* "status", "scale", or NULL for the main resource */
    const char *time;        /* the write's time, RFC 3339 ("2026-11-25T19:26:17Z") */
    /* Top-level fields nobody owns through this endpoint (the strategy's reset fields, e.g.
     * "status" on a resource with a status subresource); NULL-terminated, or NULL. */
    const char *const *reset;
    bool force; /* apply only: take conflicting fields instead of failing */
};

#define KCP_SSA_MAX_UPDATE_MANAGERS 10 /* upstream's DefaultMaxUpdateManagers */

/*
 * Records an Update (create, update, non-apply patch) by op->manager in obj's
 * metadata.managedFields, as upstream's FieldManager.UpdateNoErrors: the managers start from
 * obj's own managedFields when it carries some (a client may replace them; not through a
 * subresource), else old's; fields this write added or changed move to op->manager; removed
 * fields leave every manager; more than KCP_SSA_MAX_UPDATE_MANAGERS Update entries fold the
 * oldest into "ancient-changes". An object without managedFields stays without them on update
 * (upstream tracks from create or from the first apply on).
 *
 * obj is modified (only metadata.managedFields). old is the stored object; for a create, the
 * zero value of the type as Go encodes it (value structs as {}, nil slices as null), which is
 * what upstream compares a new object against. Returns 0, or KCP_EBADREQUEST/KCP_EINTERNAL
 * when the objects do not fit the schema (then obj carries no managedFields, as upstream drops
 * them rather than failing the write; *out_err says why).
 */
int kcp_ssa_update(json_t *obj, const json_t *old, bool create, const struct kcp_ssa_schema *schema,
                   const struct kcp_ssa_op *op, char **out_err);

/*
 * Applies config (an apply patch, already decoded and checked against the kind) by op->manager
 * to live, as upstream's FieldManager.Apply: live's managers (from its managedFields; an object
 * without any first records its fields as "before-first-apply", compared against zero), the
 * merge (keyed lists by key, sets by value, atomic values replaced), the removal of fields
 * op->manager applied before but not now and no manager owns, conflicts, and op->manager's
 * Apply entry. For a create, live is zero (the type's zero value as for kcp_ssa_update).
 *
 * On success *out is the new object with its managedFields (caller owns) and *out_changed says
 * whether anything but managedFields differs from live. Errors:
 *   KCP_ECONFLICT    fields another manager owns would change and op->force is false:
 *                    *out_causes is an array of Status causes ({reason: FieldManagerConflict,
 *                    message: "conflict with \"m\" ...", field: ".spec.replicas"}) and *out_err
 *                    upstream's message ("Apply failed with 1 conflict: ...").
 *   KCP_EBADREQUEST  config carries metadata.managedFields, or does not fit the schema
 *                    (duplicate keys, a keyed item without its key, ...): *out_err says so.
 *   KCP_EINTERNAL    live's managedFields cannot be read.
 */
int kcp_ssa_apply(json_t **out, bool *out_changed, const json_t *live, const json_t *zero,
                  const json_t *config, const struct kcp_ssa_schema *schema,
                  const struct kcp_ssa_op *op, json_t **out_causes, char **out_err);

/*
 * The field set of a value as FieldsV1 (what an applier of it would own), with upstream's key
 * order; for tests and tools. Returns 0 or KCP_EBADREQUEST (*out_err).
 */
int kcp_ssa_fieldset(json_t **out, const json_t *value, const struct kcp_ssa_schema *schema,
                     char **out_err);

#endif
