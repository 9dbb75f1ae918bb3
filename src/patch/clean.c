/* Copies of patch values as they end up in a result: directives stripped, null members dropped. */
#include "patch_int.h"

#include <string.h>

bool patch_is_directive(const char *key)
{
    return strcmp(key, "$patch") == 0 || strcmp(key, "$retainKeys") == 0 ||
           strncmp(key, "$setElementOrder", 16) == 0 ||
           strncmp(key, "$deleteFromPrimitiveList", 24) == 0;
}

/*
 * Upstream drops null members of values it takes from a patch (discardNullValuesFromPatch) in
 * some places, and decoding into the typed object drops the rest along with unknown "$" keys.
 * kcp keeps untyped JSON, so both happen here: whatever a patch leaves is what a typed decode
 * upstream would have kept.
 */
json_t *patch_clean_copy(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *out = json_object();
        const char *k;
        json_t *c;
        json_object_foreach (PATCH_MUT(v), k, c) {
            if (json_is_null(c) || patch_is_directive(k))
                continue;
            json_object_set_new(out, k, patch_clean_copy(c));
        }
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *c;
        json_array_foreach (v, i, c) {
            json_array_append_new(out, patch_clean_copy(c));
        }
        return out;
    }
    return json_deep_copy(v);
}

json_t *patch_prune_copy(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *out = json_object();
        const char *k;
        json_t *c;
        json_object_foreach (PATCH_MUT(v), k, c) {
            if (!json_is_null(c))
                json_object_set_new(out, k, patch_prune_copy(c));
        }
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *c;
        json_array_foreach (v, i, c) {
            json_array_append_new(out, patch_prune_copy(c));
        }
        return out;
    }
    return json_deep_copy(v);
}
