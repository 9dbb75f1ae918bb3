/* Order of merged list items, as upstream's normalizeElementOrder and mergeSortedSlice give it. */
#include "patch_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Upstream puts the items named by the patch (or by $setElementOrder) in that order, the others
 * in the live object's order, and interleaves the two by the live order. Its sort is Go's
 * sort.SliceStable with a comparator that calls items missing from the order "less"; it is
 * reproduced step by step below (insertion-sorted blocks of 20, then SymMerge) so that even
 * those odd inputs come out as upstream's do. Positions are looked up once, through an index.
 */
struct sorter {
    json_t **v;
    long *pos; /* item's position in the order, or -1 */
};

static bool less(const struct sorter *s, long i, long j)
{
    if (s->pos[i] >= 0 && s->pos[j] >= 0)
        return s->pos[i] < s->pos[j];
    return true;
}

static void swap(struct sorter *s, long i, long j)
{
    json_t *v = s->v[i];
    long p = s->pos[i];
    s->v[i] = s->v[j];
    s->pos[i] = s->pos[j];
    s->v[j] = v;
    s->pos[j] = p;
}

static void insertion_sort(struct sorter *s, long a, long b)
{
    for (long i = a + 1; i < b; i++)
        for (long j = i; j > a && less(s, j, j - 1); j--)
            swap(s, j, j - 1);
}

static void swap_range(struct sorter *s, long a, long b, long n)
{
    for (long i = 0; i < n; i++)
        swap(s, a + i, b + i);
}

static void rotate(struct sorter *s, long a, long m, long b)
{
    long i = m - a, j = b - m;
    while (i != j) {
        if (i > j) {
            swap_range(s, m - i, m, j);
            i -= j;
        } else {
            swap_range(s, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(s, m - i, m, i);
}

/* SymMerge (Kim and Kutzner) of the sorted runs [a, m) and [m, b). */
static void sym_merge(struct sorter *s, long a, long m, long b)
{
    if (m - a == 1) {
        long i = m, j = b;
        while (i < j) {
            long h = (i + j) / 2;
            if (less(s, h, a))
                i = h + 1;
            else
                j = h;
        }
        for (long k = a; k < i - 1; k++)
            swap(s, k, k + 1);
        return;
    }
    if (b - m == 1) {
        long i = a, j = m;
        while (i < j) {
            long h = (i + j) / 2;
            if (!less(s, m, h))
                i = h + 1;
            else
                j = h;
        }
        for (long k = m; k > i; k--)
            swap(s, k, k - 1);
        return;
    }
    long mid = (a + b) / 2, n = mid + m, start, r;
    if (m > mid) {
        start = n - b;
        r = mid;
    } else {
        start = a;
        r = m;
    }
    long p = n - 1;
    while (start < r) {
        long c = (start + r) / 2;
        if (!less(s, p - c, c))
            start = c + 1;
        else
            r = c;
    }
    long end = n - start;
    if (start < m && m < end)
        rotate(s, start, m, end);
    if (a < start && start < mid)
        sym_merge(s, a, start, mid);
    if (mid < end && end < b)
        sym_merge(s, mid, end, b);
}

static void go_stable_sort(struct sorter *s, long n)
{
    long block = 20, a = 0, b = block;
    while (b <= n) {
        insertion_sort(s, a, b);
        a = b;
        b += block;
    }
    insertion_sort(s, a, n);
    while (block < n) {
        a = 0;
        b = 2 * block;
        while (b <= n) {
            sym_merge(s, a, a + block, b);
            a = b;
            b += 2 * block;
        }
        if (a + block < n)
            sym_merge(s, a, a + block, n);
        block *= 2;
    }
}

/* What items are compared by: the merge key's value, or the item itself. NULL if absent. */
static const json_t *key_of(const json_t *item, const char *mk)
{
    if (!mk)
        return item;
    return json_is_object(item) ? json_object_get(item, mk) : NULL;
}

static bool is_container(const json_t *v)
{
    return json_is_object(v) || json_is_array(v);
}

/* First position of every comparable key in list. */
static struct patch_index *index_of(const json_t *list, const char *mk)
{
    size_t i, n = list ? json_array_size(list) : 0;
    json_t *v;
    struct patch_index *ix = patch_index_new(n);
    if (list)
        json_array_foreach (list, i, v) {
            const json_t *k = key_of(v, mk);
            if (k)
                patch_index_add(ix, k, i);
        }
    return ix;
}

/* upstream's validateMergeKeyInLists for one list */
static int check_merge_keys(struct patch_smp *s, const json_t *list, const char *mk)
{
    size_t i;
    json_t *v;
    if (list)
        json_array_foreach (list, i, v) {
            if (!json_is_object(v))
                return patch_smp_err_bad_arg_type(s, "map[string]interface {}", v);
            if (!json_object_get(v, mk))
                return patch_smp_err_no_merge_key(s, v, mk);
        }
    return 0;
}

static bool is_delete_item(const json_t *v)
{
    const json_t *d = json_object_get(v, "$patch");
    return json_is_string(d) && strcmp(json_string_value(d), "delete") == 0;
}

/* upstream's normalizeSliceOrder: items (consumed) sorted by their place in order. */
static int sort_by(struct patch_smp *s, json_t *items, const json_t *order, const char *mk,
                   int kind, json_t **out)
{
    size_t n = json_array_size(items), i;
    json_t *deletes = json_array(), *v;
    struct sorter so = {kcp_calloc(n + 1, sizeof(json_t *)), kcp_calloc(n + 1, sizeof(long))};
    struct patch_index *ix = NULL;
    long m = 0;
    int rc = 0;
    if (kind == JSON_OBJECT &&
        ((rc = check_merge_keys(s, items, mk)) != 0 || (rc = check_merge_keys(s, order, mk)) != 0))
        goto done;
    ix = index_of(order, mk);
    json_array_foreach (items, i, v) {
        if (kind == JSON_OBJECT && is_delete_item(v)) {
            json_array_append(deletes, v); /* deletions go last */
            continue;
        }
        so.v[m] = v;
        so.pos[m++] = patch_index_find(ix, key_of(v, mk));
    }
    go_stable_sort(&so, m);
    *out = json_array();
    for (long k = 0; k < m; k++)
        json_array_append(*out, so.v[k]);
    json_array_extend(*out, deletes);
done:
    patch_index_free(ix);
    free(so.v);
    free(so.pos);
    json_decref(deletes);
    json_decref(items);
    return rc;
}

/* upstream's mergeSortedSlice: server-only items (left) slotted among the patch items (right). */
static json_t *merge_sorted(const json_t *left, const json_t *right, const json_t *server,
                            const char *mk)
{
    struct patch_index *ix = index_of(server, mk);
    size_t i = 0, j = 0, nl = json_array_size(left), nr = json_array_size(right);
    json_t *out = json_array();
    while (i < nl || j < nr) {
        if (i >= nl) {
            json_array_append(out, json_array_get(right, j++));
        } else if (j >= nr) {
            json_array_append(out, json_array_get(left, i++));
        } else {
            long li = patch_index_find(ix, key_of(json_array_get(left, i), mk));
            long ri = patch_index_find(ix, key_of(json_array_get(right, j), mk));
            if (li >= 0 && ri >= 0 && li < ri)
                json_array_append(out, json_array_get(left, i++));
            else
                json_array_append(out, json_array_get(right, j++));
        }
    }
    patch_index_free(ix);
    return out;
}

/* upstream's partitionPrimitivesByPresentInList / partitionMapsByPresentInList */
static int partition(struct patch_smp *s, const json_t *merged, const json_t *by, const char *mk,
                     json_t *in, json_t *out)
{
    size_t i, first_non_map = (size_t)-1;
    json_t *v;
    struct patch_index *ix = NULL;
    int rc = 0;
    if (!mk) {
        ix = patch_index_new(json_array_size(by));
        json_array_foreach (by, i, v) {
            if (patch_index_add(ix, v, i) < 0) {
                rc = patch_smp_err_uncomparable(s, "hash of unhashable type", v);
                goto done;
            }
        }
        json_array_foreach (merged, i, v) {
            if (is_container(v)) {
                rc = patch_smp_err_uncomparable(s, "hash of unhashable type", v);
                goto done;
            }
            json_array_append(patch_index_find(ix, v) >= 0 ? in : out, v);
        }
        goto done;
    }
    /* Upstream scans `by` for each item and stops, with an error, at an item that is not a map
     * before it finds a match; the index answers the same from the first such position. */
    json_array_foreach (by, i, v) {
        if (!json_is_object(v)) {
            first_non_map = i;
            break;
        }
    }
    ix = index_of(by, mk);
    json_array_foreach (merged, i, v) {
        if (!json_is_object(v)) {
            rc = patch_smp_err_bad_arg_type(s, "map[string]interface {}", v);
            goto done;
        }
        const json_t *k = json_object_get(v, mk);
        if (!k) {
            rc = patch_smp_err_no_merge_key(s, v, mk);
            goto done;
        }
        if (is_container(k)) {
            rc = patch_smp_err_uncomparable(s, "comparing uncomparable type", k);
            goto done;
        }
        long pos = patch_index_find(ix, k);
        if (pos >= 0 && (size_t)pos < first_non_map) {
            json_array_append(in, v);
        } else if (first_non_map != (size_t)-1) {
            rc = patch_fail(s->out_err, KCP_EINTERNAL, "value for key %zu is not a map",
                            first_non_map);
            goto done;
        } else {
            json_array_append(out, v);
        }
    }
done:
    patch_index_free(ix);
    return rc;
}

int patch_smp_order(struct patch_smp *s, const json_t *merged, const json_t *order,
                    const json_t *server, const char *mk, int kind, json_t **out)
{
    json_t *in = json_array(), *rest = json_array(), *in_sorted = NULL, *rest_sorted = NULL;
    int rc;
    *out = NULL;
    if ((rc = partition(s, merged, order, mk, in, rest)) != 0) {
        json_decref(in);
        json_decref(rest);
        return rc;
    }
    if ((rc = sort_by(s, in, order, mk, kind, &in_sorted)) != 0) {
        json_decref(rest);
        return rc;
    }
    if ((rc = sort_by(s, rest, server, mk, kind, &rest_sorted)) != 0) {
        json_decref(in_sorted);
        return rc;
    }
    *out = merge_sorted(rest_sorted, in_sorted, server, mk);
    json_decref(in_sorted);
    json_decref(rest_sorted);
    return 0;
}
