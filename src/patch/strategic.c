/* Strategic merge patch: the entry point, map merging and map directives (upstream's mergeMap). */
#include "patch_int.h"

#include <string.h>

const void *patch_smp_field(const struct patch_smp *s, const void *node, const char *name)
{
    if (!s->schema || !node || !s->schema->field)
        return NULL;
    return s->schema->field(node, name);
}

const void *patch_smp_items(const struct patch_smp *s, const void *node)
{
    if (!s->schema || !node || !s->schema->items)
        return NULL;
    return s->schema->items(node);
}

unsigned patch_smp_strategy(const struct patch_smp *s, const void *node, const char **out_merge_key)
{
    *out_merge_key = NULL;
    if (!s->schema || !node || !s->schema->strategy)
        return 0;
    return s->schema->strategy(node, out_merge_key);
}

int patch_smp_err_no_merge_key(struct patch_smp *s, const json_t *map, const char *key)
{
    struct kcp_buf b = KCP_BUF_INIT;
    patch_go_format(&b, map, 'v');
    int rc = patch_fail(s->out_err, KCP_EINTERNAL,
                        "map: %s does not contain declared merge key: %s", b.data, key);
    kcp_buf_free(&b);
    return rc;
}

int patch_smp_err_bad_arg_type(struct patch_smp *s, const char *expected, const json_t *actual)
{
    const char *t = actual ? patch_go_type(actual) : NULL;
    return patch_fail(s->out_err, KCP_EINTERNAL, "expected a %s, but received a %s", expected,
                      t ? t : "%!s(<nil>)");
}

int patch_smp_err_bad_patch_type(struct patch_smp *s, const json_t *directive, const json_t *map)
{
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_buf_puts(&b, "unknown patch type: ");
    patch_go_format(&b, directive, 's');
    kcp_buf_puts(&b, " in map: ");
    patch_go_format(&b, map, 'v');
    int rc = patch_fail(s->out_err, KCP_EINTERNAL, "%s", b.data);
    kcp_buf_free(&b);
    return rc;
}

int patch_smp_err_uncomparable(struct patch_smp *s, const char *what, const json_t *v)
{
    /* Go panics on == or hashing of maps and slices; the apiserver answers that with a 500 */
    return patch_fail(s->out_err, KCP_EINTERNAL, "runtime error: %s %s", what, patch_go_type(v));
}

int patch_smp_element_kind(struct patch_smp *s, const json_t *a, const json_t *b, int *out_kind)
{
    const json_t *lists[2] = {a, b};
    bool first = true;
    int kind = 0;
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *v;
        if (!lists[l])
            continue;
        json_array_foreach (lists[l], i, v) {
            int k = json_is_boolean(v) ? JSON_TRUE : (int)json_typeof(v);
            if (first) {
                if (json_is_null(v)) /* upstream dereferences a nil type here and panics */
                    return patch_fail(s->out_err, KCP_EINTERNAL,
                                      "runtime error: invalid memory address or nil pointer "
                                      "dereference");
                if (json_is_array(v))
                    return patch_fail(s->out_err, KCP_EINVALID, PATCH_ERR_LIST_OF_LISTS);
                kind = k;
                first = false;
            } else if (k != kind) {
                struct kcp_buf m = KCP_BUF_INIT;
                kcp_buf_puts(&m, "list element types are not identical: [");
                for (int j = 0; j < 2; j++) {
                    if (j)
                        kcp_buf_puts(&m, " ");
                    if (lists[j])
                        patch_go_format(&m, lists[j], 'v');
                    else
                        kcp_buf_puts(&m, "[]");
                }
                kcp_buf_puts(&m, "]");
                int rc = patch_fail(s->out_err, KCP_EINTERNAL, "%s", m.data);
                kcp_buf_free(&m);
                return rc;
            }
        }
    }
    if (first)
        return patch_fail(s->out_err, KCP_EINTERNAL, "no elements in any of the given slices");
    *out_kind = kind;
    return 0;
}

/*
 * $retainKeys: every non-null patch key must be listed, and the original keeps only listed keys.
 * Upstream applies it wherever a patch carries it; the schema's retainKeys only tells clients
 * when to send it.
 */
static int apply_retain_keys(struct patch_smp *s, json_t *orig, const json_t *patch)
{
    const json_t *rk = json_object_get(patch, "$retainKeys");
    json_t *keep = NULL;
    const char *k;
    json_t *v, *tmp;
    size_t i;
    int rc = 0;
    if (!rk)
        return 0;
    if (!json_is_array(rk))
        return patch_fail(s->out_err, KCP_EBADREQUEST, PATCH_ERR_RETAIN_KEYS);
    keep = json_object();
    json_array_foreach (rk, i, v) {
        if (json_is_string(v))
            json_object_set_new(keep, json_string_value(v), json_true());
    }
    json_object_foreach (PATCH_MUT(patch), k, v) {
        if (json_is_null(v) || strcmp(k, "$retainKeys") == 0 ||
            strncmp(k, "$deleteFromPrimitiveList", 24) == 0 ||
            strncmp(k, "$setElementOrder", 16) == 0)
            continue;
        if (!json_object_get(keep, k)) {
            rc = patch_fail(s->out_err, KCP_EBADREQUEST, PATCH_ERR_RETAIN_KEYS);
            goto done;
        }
    }
    json_object_foreach_safe (orig, tmp, k, v) {
        if (!json_object_get(keep, k))
            json_object_del(orig, k);
    }
done:
    json_decref(keep);
    return rc;
}

/* One key of a patch map (upstream's loop body in mergeMap). */
static int merge_field(struct patch_smp *s, json_t *orig, const char *key, const json_t *pv,
                       const void *node, bool delete_list)
{
    if (json_is_null(pv)) {
        json_object_del(orig, key);
        return 0;
    }
    json_t *ov = json_object_get(orig, key);
    if (!ov || !patch_same_kind(ov, pv)) {
        /* A parallel deletion list with nothing (of its kind) to delete from does nothing. */
        if (!delete_list)
            json_object_set_new(orig, key, patch_clean_copy(pv));
        return 0;
    }
    const char *merge_key = NULL;
    const void *child = patch_smp_field(s, node, key);
    unsigned strategy = patch_smp_strategy(s, child, &merge_key);
    json_t *res = NULL;
    int rc = 0;
    if (json_is_object(ov)) {
        if (strategy & KCP_SMP_REPLACE)
            res = patch_clean_copy(pv);
        else
            rc = patch_smp_merge_map(s, json_incref(ov), pv, child, &res);
    } else if (json_is_array(ov)) {
        /* Without merge strategy the patch list (even a deletion list) replaces the original. */
        if (strategy & KCP_SMP_MERGE)
            rc = patch_smp_merge_list(s, json_incref(ov), pv, child, merge_key, delete_list, key,
                                      &res);
        else
            res = patch_clean_copy(pv);
    } else {
        res = json_deep_copy(pv);
    }
    if (rc != 0)
        return rc;
    json_object_set_new(orig, key, res);
    return 0;
}

int patch_smp_merge_map(struct patch_smp *s, json_t *orig, const json_t *patch, const void *node,
                        json_t **out)
{
    const json_t *directive = json_object_get(patch, "$patch");
    json_t *handled = NULL;
    const char *k;
    json_t *pv;
    int rc = 0;
    *out = NULL;
    if (directive) {
        json_decref(orig);
        if (json_is_string(directive) && strcmp(json_string_value(directive), "replace") == 0) {
            *out = patch_clean_copy(patch);
            return 0;
        }
        if (json_is_string(directive) && strcmp(json_string_value(directive), "delete") == 0) {
            *out = json_object();
            return 0;
        }
        /* "$patch": "merge" included: upstream does not take it in a map */
        return patch_smp_err_bad_patch_type(s, directive, patch);
    }
    if (!orig)
        orig = json_object();
    if ((rc = apply_retain_keys(s, orig, patch)) != 0)
        goto fail;
    handled = json_object();
    if ((rc = patch_smp_set_element_order(s, orig, patch, node, handled)) != 0)
        goto fail;
    /*
     * Upstream walks the patch in Go's random map order. Deletion lists go first here so that
     * an item both deleted and added (which kubectl never sends) ends up added, every time.
     */
    for (int pass = 0; pass < 2; pass++) {
        json_object_foreach (PATCH_MUT(patch), k, pv) {
            const char *key = k;
            bool del = strncmp(k, "$deleteFromPrimitiveList", 24) == 0;
            if (strcmp(k, "$retainKeys") == 0 || strncmp(k, "$setElementOrder", 16) == 0 ||
                del != (pass == 0))
                continue;
            if (del) {
                if (k[24] != '/') {
                    rc = patch_fail(s->out_err, KCP_EBADREQUEST, PATCH_ERR_PRIMITIVE_LIST);
                    goto fail;
                }
                key = k + 25;
                if (!*key)
                    continue; /* names no list: upstream's lookup finds nothing either */
            } else if (json_object_get(handled, key)) {
                continue; /* merged and ordered by its $setElementOrder already */
            }
            if ((rc = merge_field(s, orig, key, pv, node, del)) != 0)
                goto fail;
        }
    }
    json_decref(handled);
    *out = orig;
    return 0;
fail:
    json_decref(handled);
    json_decref(orig);
    return rc;
}

static const char *go_json_kind(const json_t *v)
{
    if (json_is_array(v))
        return "array";
    if (json_is_string(v))
        return "string";
    if (json_is_number(v))
        return "number";
    return "bool";
}

int kcp_patch_apply_strategic(json_t **out, const json_t *original, const json_t *patch,
                              const struct kcp_smp_schema *schema, char **out_err)
{
    struct patch_smp s = {.schema = schema, .out_err = out_err};
    int rc;
    *out = NULL;
    if (out_err)
        *out_err = NULL;
    if ((rc = patch_check_depth(original, "object", out_err)) != 0 ||
        (rc = patch_check_depth(patch, "patch", out_err)) != 0)
        return rc;
    if (!json_is_object(original))
        return patch_fail(out_err, KCP_EBADREQUEST, "invalid JSON document");
    /* the apiserver decodes the body into a map first: null is an empty patch */
    if (json_is_null(patch)) {
        *out = json_deep_copy(original);
        return 0;
    }
    if (!json_is_object(patch))
        return patch_fail(out_err, KCP_EBADREQUEST,
                          "json: cannot unmarshal %s into Go value of type map[string]interface {}",
                          go_json_kind(patch));
    return patch_smp_merge_map(&s, json_deep_copy(original), patch, schema ? schema->root : NULL,
                               out);
}
