/* kcp patch: JSON, JSON merge and strategic merge patches, as the API server applies them. */
#ifndef KCP_PATCH_H
#define KCP_PATCH_H

#include <jansson.h>

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

#endif
