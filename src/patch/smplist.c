/* Strategic merge patch lists: merge by key, list directives, $setElementOrder (upstream's
 * mergeSlice). */
#include "patch_int.h"

#include <string.h>

static bool is_container(const json_t *v)
{
    return json_is_object(v) || json_is_array(v);
}

/* $deleteFromPrimitiveList: every occurrence of each listed value goes. */
static json_t *delete_values(const json_t *orig, const json_t *del)
{
    size_t i;
    json_t *v, *out = json_array();
    struct patch_index *ix = patch_index_new(json_array_size(del));
    json_array_foreach (del, i, v) {
        patch_index_add(ix, v, i);
    }
    json_array_foreach (orig, i, v) {
        if (patch_index_find(ix, v) < 0)
            json_array_append(out, v);
    }
    patch_index_free(ix);
    return out;
}

/* A list of scalars merges as a set: the original's values, then the patch's new ones. */
static json_t *union_values(const json_t *orig, const json_t *patch)
{
    size_t i, n = json_array_size(orig) + json_array_size(patch);
    json_t *v, *out = json_array();
    struct patch_index *ix = patch_index_new(n);
    json_array_foreach (orig, i, v) {
        if (patch_index_add(ix, v, i) > 0)
            json_array_append(out, v);
    }
    json_array_foreach (patch, i, v) {
        if (patch_index_add(ix, v, n + i) > 0)
            json_array_append_new(out, json_deep_copy(v));
    }
    patch_index_free(ix);
    return out;
}

/*
 * Lists of maps: $patch directives of items first (delete by key, replace the whole list, merge
 * refused), then each plain item merged into the original item with the same key or appended.
 * Returns the merged list, the patch items without directives, and the original after the
 * deletions (upstream orders by that list).
 */
static int merge_maps(struct patch_smp *s, json_t **orig, const json_t *patch, const void *node,
                      const char *mk, json_t **out_plain, json_t **out_server)
{
    size_t i;
    json_t *p, *kept = NULL, *plain = json_array();
    struct patch_index *del = patch_index_new(json_array_size(patch)), *ix = NULL;
    bool replace = false;
    int rc = 0;
    json_array_foreach (patch, i, p) {
        const json_t *d = json_object_get(p, "$patch");
        const char *ds = json_is_string(d) ? json_string_value(d) : NULL;
        if (!d) {
            json_array_append(plain, p);
        } else if (ds && strcmp(ds, "delete") == 0) {
            const json_t *k = json_object_get(p, mk);
            if (!k) {
                rc = patch_smp_err_no_merge_key(s, p, mk);
                goto done;
            }
            if (patch_index_add(del, k, i) < 0) {
                rc = patch_smp_err_uncomparable(s, "comparing uncomparable type", k);
                goto done;
            }
        } else if (ds && strcmp(ds, "replace") == 0) {
            replace = true; /* the other directives are still checked, as upstream does */
        } else if (ds && strcmp(ds, "merge") == 0) {
            rc = patch_fail(s->out_err, KCP_EINTERNAL,
                            "merging lists cannot yet be specified in the patch");
            goto done;
        } else {
            rc = patch_smp_err_bad_patch_type(s, d, p);
            goto done;
        }
    }
    kept = json_array();
    if (replace) {
        json_array_foreach (plain, i, p) {
            json_array_append_new(kept, patch_clean_copy(p));
        }
        json_array_clear(plain);
    } else {
        json_array_foreach (*orig, i, p) {
            const json_t *k = json_object_get(p, mk);
            if (!k || patch_index_find(del, k) < 0)
                json_array_append(kept, p);
        }
    }
    json_decref(*orig);
    *orig = kept;
    *out_server = json_copy(kept); /* shares the items, which merging changes in place, as Go */
    ix = patch_index_new(json_array_size(kept) + json_array_size(plain));
    json_array_foreach (kept, i, p) {
        const json_t *k = json_object_get(p, mk);
        if (k)
            patch_index_add(ix, k, i);
    }
    json_array_foreach (plain, i, p) {
        const json_t *k = json_object_get(p, mk);
        if (!k) {
            rc = patch_smp_err_no_merge_key(s, p, mk);
            goto done;
        }
        if (is_container(k)) {
            rc = patch_smp_err_uncomparable(s, "comparing uncomparable type", k);
            goto done;
        }
        long pos = patch_index_find(ix, k);
        if (pos >= 0) {
            json_t *res;
            json_t *item = json_array_get(kept, (size_t)pos);
            if ((rc = patch_smp_merge_map(s, json_incref(item), p, patch_smp_items(s, node),
                                          &res)) != 0)
                goto done;
            json_array_set_new(kept, (size_t)pos, res);
        } else {
            patch_index_add(ix, k, json_array_size(kept));
            json_array_append_new(kept, patch_clean_copy(p));
        }
    }
done:
    patch_index_free(del);
    patch_index_free(ix);
    if (rc != 0) {
        json_decref(plain);
        return rc;
    }
    *out_plain = plain;
    return 0;
}

int patch_smp_merge_list(struct patch_smp *s, json_t *orig, const json_t *patch, const void *node,
                         const char *mk, bool delete_list, const char *name, json_t **out)
{
    json_t *merged = NULL, *server = NULL, *order = NULL;
    int kind, rc;
    *out = NULL;
    if (mk && !*mk)
        mk = NULL;
    if (json_array_size(orig) == 0 && json_array_size(patch) == 0) {
        *out = orig;
        return 0;
    }
    if ((rc = patch_smp_element_kind(s, orig, patch, &kind)) != 0)
        goto done;
    if (kind != JSON_OBJECT) {
        if (delete_list) {
            *out = delete_values(orig, patch);
            goto done;
        }
        merged = union_values(orig, patch);
        server = json_incref(orig);
        order = json_incref(PATCH_MUT(patch));
    } else {
        /* a deletion list of maps merges like any patch list: upstream does the same */
        if (!mk) {
            rc = patch_fail(s->out_err, KCP_EINTERNAL,
                            "cannot merge lists without merge key for %s", name);
            goto done;
        }
        if ((rc = merge_maps(s, &orig, patch, node, mk, &order, &server)) != 0)
            goto done;
        merged = json_incref(orig);
    }
    rc = patch_smp_order(s, merged, order, server, mk, kind, out);
done:
    json_decref(orig);
    json_decref(merged);
    json_decref(server);
    json_decref(order);
    return rc;
}

/* Go's == between two decoded values, for the $setElementOrder check. */
static int values_equal(struct patch_smp *s, const json_t *a, const json_t *b, bool *out)
{
    if (is_container(a) && is_container(b) && json_typeof(a) == json_typeof(b))
        return patch_smp_err_uncomparable(s, "comparing uncomparable type", a);
    *out = patch_scalar_equal(a, b);
    return 0;
}

/* upstream's validatePatchWithSetOrderList: the patch list's items appear in the order list, in
 * the same relative order (deletions and other directive items aside). */
static int check_order_list(struct patch_smp *s, const json_t *plist, const json_t *order,
                            const char *mk)
{
    size_t n = plist ? json_array_size(plist) : 0, m = json_array_size(order), pi = 0, si = 0, i;
    json_t *v, *items;
    int rc = 0;
    if (n == 0 || m == 0)
        return 0;
    items = json_array();
    json_array_foreach (plist, i, v) {
        if (mk && !json_is_object(v)) {
            rc = patch_smp_err_bad_arg_type(s, "map[string]interface {}", v);
            goto done;
        }
        const json_t *d = mk ? json_object_get(v, "$patch") : NULL;
        if (!(json_is_string(d) && strcmp(json_string_value(d), "delete") == 0))
            json_array_append(items, v);
    }
    n = json_array_size(items);
    while (pi < n && si < m) {
        const json_t *a = json_array_get(items, pi), *b = json_array_get(order, si);
        bool eq = false;
        if (json_is_object(a) && json_object_get(a, "$patch")) {
            pi++;
            continue;
        }
        if (!mk) {
            if ((rc = values_equal(s, a, b, &eq)) != 0)
                goto done;
        } else {
            if (!json_is_object(b)) {
                rc = patch_smp_err_bad_arg_type(s, "map[string]interface {}", b);
                goto done;
            }
            const json_t *ka = json_object_get(a, mk), *kb = json_object_get(b, mk);
            if (!ka || !kb) {
                rc = patch_smp_err_no_merge_key(s, ka ? b : a, mk);
                goto done;
            }
            if ((rc = values_equal(s, ka, kb, &eq)) != 0)
                goto done;
        }
        if (eq)
            pi++;
        si++;
    }
    if (pi < n && si >= m) {
        struct kcp_buf b = KCP_BUF_INIT;
        kcp_buf_puts(&b, "The order in patch list:\n");
        patch_go_format(&b, plist, 'v');
        kcp_buf_puts(&b, "\n doesn't match $setElementOrder list:\n");
        patch_go_format(&b, order, 'v');
        kcp_buf_puts(&b, "\n");
        rc = patch_fail(s->out_err, KCP_EINTERNAL, "%s", b.data);
        kcp_buf_free(&b);
    }
done:
    json_decref(items);
    return rc;
}

/* One $setElementOrder/<key> directive (upstream's mergePatchIntoOriginal). */
static int set_order_one(struct patch_smp *s, json_t *orig, const json_t *patch, const char *dkey,
                         const json_t *order, const void *node, json_t *handled)
{
    json_t *merged = NULL, *server = NULL, *ordered = NULL;
    const char *mk = NULL;
    int kind, rc = 0;
    if (!json_is_array(order))
        return patch_smp_err_bad_arg_type(s, "[]interface {}", order);
    if (dkey[16] != '/')
        return patch_fail(s->out_err, KCP_EBADREQUEST, PATCH_ERR_SET_ORDER);
    const char *key = dkey + 17;
    json_t *ol = json_object_get(orig, key);
    const json_t *pl = json_object_get(patch, key);
    if (ol && !json_is_array(ol))
        return patch_smp_err_bad_arg_type(s, "[]interface {}", json_is_null(ol) ? NULL : ol);
    if (pl && !json_is_array(pl))
        return patch_smp_err_bad_arg_type(s, "[]interface {}", json_is_null(pl) ? NULL : pl);
    const void *child = patch_smp_field(s, node, key);
    unsigned strategy = patch_smp_strategy(s, child, &mk);
    if (mk && !*mk)
        mk = NULL;
    if ((rc = check_order_list(s, pl, order, mk)) != 0)
        return rc;
    if (!ol && !pl)
        return 0;
    server = ol ? json_copy(ol) : json_array(); /* the live order, before merging */
    if (ol && !pl)
        merged = json_incref(ol);
    else if (!ol || !(strategy & KCP_SMP_MERGE))
        merged = patch_clean_copy(pl);
    else if ((rc = patch_smp_merge_list(s, json_incref(ol), pl, child, mk, false, key, &merged)) !=
             0)
        goto done;
    if ((rc = patch_smp_element_kind(s, server, pl, &kind)) != 0)
        goto done;
    if ((rc = patch_smp_order(s, merged, order, server, mk, kind, &ordered)) != 0)
        goto done;
    json_object_set_new(orig, key, ordered);
    json_object_set_new(handled, key, json_true());
done:
    json_decref(merged);
    json_decref(server);
    return rc;
}

int patch_smp_set_element_order(struct patch_smp *s, json_t *orig, const json_t *patch,
                                const void *node, json_t *handled)
{
    const char *k;
    json_t *v;
    json_object_foreach (PATCH_MUT(patch), k, v) {
        if (strncmp(k, "$setElementOrder", 16) != 0)
            continue;
        int rc = set_order_one(s, orig, patch, k, v, node, handled);
        if (rc != 0)
            return rc;
    }
    return 0;
}
