/* RFC 7386 JSON merge patch as upstream applies it (evanphx/json-patch v4 MergePatch). */
#include "patch_int.h"

/*
 * Merges patch object p into object doc (owned, modified in place): null deletes, objects merge,
 * anything else replaces. A value put where there was none (or null, or a non-object) has its
 * null members pruned; a non-object patch value over an object is taken as it is, as upstream.
 */
static void merge_docs(json_t *doc, const json_t *p)
{
    const char *k;
    json_t *pv;
    json_object_foreach (PATCH_MUT(p), k, pv) {
        json_t *cur = json_object_get(doc, k);
        if (json_is_null(pv)) {
            json_object_del(doc, k);
        } else if (!cur || json_is_null(cur) || !json_is_object(cur)) {
            json_object_set_new(doc, k, patch_prune_copy(pv));
        } else if (!json_is_object(pv)) {
            json_object_set_new(doc, k, json_deep_copy(pv));
        } else {
            merge_docs(cur, pv);
        }
    }
}

int kcp_patch_apply_merge(json_t **out, const json_t *original, const json_t *patch, char **out_err)
{
    int rc;
    *out = NULL;
    if (out_err)
        *out_err = NULL;
    if ((rc = patch_check_depth(original, "object", out_err)) != 0 ||
        (rc = patch_check_depth(patch, "patch", out_err)) != 0)
        return rc;
    if (json_is_null(original))
        return patch_fail(out_err, KCP_EINTERNAL, "Invalid JSON Document");
    /* RFC 7386 lets any value replace the document; upstream refuses null and scalars with
     * its 400, and takes an array as the new document. */
    if (json_is_array(patch)) {
        *out = patch_prune_copy(patch);
        return 0;
    }
    if (!json_is_object(patch))
        return patch_fail(out_err, KCP_EBADREQUEST, "Invalid JSON Patch");
    if (!json_is_object(original)) {
        *out = patch_prune_copy(patch);
        return 0;
    }
    *out = json_deep_copy(original);
    merge_docs(*out, patch);
    return 0;
}
