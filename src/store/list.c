/* Reads: GET and LIST from the cache, at the latest revision or rebuilt at an older one. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * The state at revision R is the current state with every event after R undone: for each key
 * touched after R, its version at R is the `prev` of the first event after R (NULL: it did not
 * exist). Those keys form a small sorted "undo" list, merged with a walk of the cache that skips
 * them. Its size is bounded by the history window, never by the size of the list.
 */

static int check_revision(const struct kcp_store *s, uint64_t *rev)
{
    if (*rev == 0)
        *rev = s->durable;
    if (*rev > s->durable)
        return KCP_ETIMEOUT;
    if (*rev < s->durable && *rev < s->hist.floor)
        return KCP_EGONE;
    return 0;
}

static bool has_prefix(const char *key, size_t len, const void *prefix, size_t plen)
{
    return plen == 0 || (len >= plen && memcmp(key, prefix, plen) == 0);
}

int kcp_store_get(struct kcp_store *s, const void *key, size_t key_len, uint64_t revision,
                  struct kcp_obj **out)
{
    *out = NULL;
    int rc = check_revision(s, &revision);
    if (rc != 0)
        return rc;
    struct kcp_obj *found = NULL;
    bool undone = false;
    if (revision < s->durable) {
        for (size_t i = store_history_after(&s->hist, revision); i < s->hist.count; i++) {
            const struct store_event_rec *r = store_history_at(&s->hist, i);
            if (store_key_cmp(r->obj->key, r->obj->key_len, key, key_len) == 0) {
                found = r->prev;
                undone = true;
                break;
            }
        }
    }
    if (!undone) {
        struct store_node *n = store_map_find(&s->cache, key, key_len);
        found = n ? n->obj : NULL;
    }
    if (!found)
        return KCP_ENOTFOUND;
    *out = kcp_obj_ref(found);
    return 0;
}

struct undo {
    const struct kcp_obj *key_obj; /* the event's object, for its key */
    const struct kcp_obj *at;      /* the version at the revision, or NULL */
    uint64_t revision;
};

static int undo_cmp(const void *a, const void *b)
{
    const struct undo *x = a, *y = b;
    int c =
        store_key_cmp(x->key_obj->key, x->key_obj->key_len, y->key_obj->key, y->key_obj->key_len);
    if (c != 0)
        return c;
    return x->revision < y->revision ? -1 : x->revision > y->revision;
}

/* The undo list for keys under prefix and after start_after: sorted, one entry per key. */
static struct undo *build_undo(struct kcp_store *s, uint64_t rev, const void *prefix, size_t plen,
                               const void *after, size_t alen, size_t *out_n)
{
    size_t first = store_history_after(&s->hist, rev), n = 0;
    struct undo *u = NULL;
    *out_n = 0;
    if (first == s->hist.count)
        return NULL;
    u = kcp_malloc((s->hist.count - first) * sizeof(*u));
    for (size_t i = first; i < s->hist.count; i++) {
        const struct store_event_rec *r = store_history_at(&s->hist, i);
        if (!has_prefix(r->obj->key, r->obj->key_len, prefix, plen))
            continue;
        if (after && store_key_cmp(r->obj->key, r->obj->key_len, after, alen) <= 0)
            continue;
        u[n++] = (struct undo){r->obj, r->prev, r->revision};
    }
    qsort(u, n, sizeof(*u), undo_cmp);
    /* Keep the earliest event per key: its prev is the version at rev. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || store_key_cmp(u[k - 1].key_obj->key, u[k - 1].key_obj->key_len,
                                    u[i].key_obj->key, u[i].key_obj->key_len) != 0)
            u[k++] = u[i];
    *out_n = k;
    return u;
}

int kcp_store_list(struct kcp_store *s, const void *prefix, size_t prefix_len, uint64_t revision,
                   const void *start_after, size_t start_after_len, size_t limit,
                   kcp_store_list_cb cb, void *ctx, struct kcp_store_list_result *out)
{
    struct kcp_store_list_result res = {0};
    struct undo *u = NULL;
    size_t nu = 0, ui = 0;
    int rc = check_revision(s, &revision);
    if (rc != 0)
        return rc;
    res.revision = revision;
    if (revision < s->durable)
        u = build_undo(s, revision, prefix, prefix_len, start_after, start_after_len, &nu);

    struct store_node *n;
    if (start_after && store_key_cmp(start_after, start_after_len, prefix, prefix_len) >= 0)
        n = store_map_seek(&s->cache, start_after, start_after_len, true);
    else
        n = store_map_seek(&s->cache, prefix, prefix_len, false);
    for (;;) {
        if (n && !has_prefix(n->key, n->key_len, prefix, prefix_len))
            n = NULL;
        if (!n && ui == nu)
            break;
        const struct kcp_obj *item;
        int c = !n ? 1
                : ui == nu
                    ? -1
                    : store_key_cmp(n->key, n->key_len, u[ui].key_obj->key, u[ui].key_obj->key_len);
        if (c < 0) { /* unchanged since rev */
            item = n->obj;
            n = store_map_next(n);
        } else { /* changed since rev: the version at rev, if it existed */
            item = u[ui++].at;
            if (c == 0)
                n = store_map_next(n);
        }
        if (!item)
            continue;
        if (limit && res.count == limit) {
            res.more = true;
            break;
        }
        res.count++;
        if ((rc = cb(ctx, item)) != 0)
            break;
    }
    free(u);
    if (out)
        *out = res;
    return rc;
}
