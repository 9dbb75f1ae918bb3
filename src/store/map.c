/* An ordered map from key to object: a skiplist, so scans by prefix and seeks are O(log n). */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Why a skiplist: the cache needs ordered iteration from any key (list pages, prefix scans),
 * point lookups and inserts, all O(log n), in little code. Levels come from a private xorshift
 * seeded with a constant; the map is local to a process, so nothing needs them to be random.
 */

int store_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0; /* a NULL prefix of length 0 is allowed */
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static struct store_node *node_new(int level, const void *key, size_t len)
{
    struct store_node *n = kcp_malloc(sizeof(*n) + (size_t)level * sizeof(n->next[0]) + len + 1);
    n->key = (char *)&n->next[level];
    memcpy(n->key, key, len);
    n->key[len] = '\0';
    n->key_len = len;
    n->level = level;
    n->obj = NULL;
    n->tag = 0;
    for (int i = 0; i < level; i++)
        n->next[i] = NULL;
    return n;
}

void store_map_init(struct store_map *m)
{
    m->head = node_new(STORE_MAP_LEVELS, "", 0);
    m->level = 1;
    m->count = 0;
    m->rng = 0x9e3779b97f4a7c15ull;
}

void store_map_free(struct store_map *m)
{
    struct store_node *n = m->head;
    while (n) {
        struct store_node *next = n->next[0];
        kcp_obj_unref(n->obj);
        free(n);
        n = next;
    }
    m->head = NULL;
    m->count = 0;
}

static int random_level(struct store_map *m)
{
    /* P(level > k) = 4^-k: about 1.33 pointers per node. */
    uint64_t x = m->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    m->rng = x;
    int level = 1;
    while (level < STORE_MAP_LEVELS && (x & 3) == 0) {
        level++;
        x >>= 2;
    }
    return level;
}

/* Fills update[i] with the last node at level i whose key is < key (<= when after). */
static struct store_node *find_pred(const struct store_map *m, const void *key, size_t len,
                                    bool after, struct store_node **update)
{
    struct store_node *x = m->head;
    for (int i = m->level - 1; i >= 0; i--) {
        while (x->next[i]) {
            int c = store_key_cmp(x->next[i]->key, x->next[i]->key_len, key, len);
            if (c < 0 || (after && c == 0))
                x = x->next[i];
            else
                break;
        }
        if (update)
            update[i] = x;
    }
    return x->next[0];
}

struct store_node *store_map_find(const struct store_map *m, const void *key, size_t len)
{
    struct store_node *n = find_pred(m, key, len, false, NULL);
    if (n && store_key_cmp(n->key, n->key_len, key, len) == 0)
        return n;
    return NULL;
}

struct store_node *store_map_seek(const struct store_map *m, const void *key, size_t len,
                                  bool after)
{
    return find_pred(m, key, len, after, NULL);
}

void store_map_put(struct store_map *m, const void *key, size_t len, struct kcp_obj *obj,
                   uint64_t tag)
{
    struct store_node *update[STORE_MAP_LEVELS];
    struct store_node *n = find_pred(m, key, len, false, update);
    if (n && store_key_cmp(n->key, n->key_len, key, len) == 0) {
        kcp_obj_unref(n->obj);
        n->obj = obj;
        n->tag = tag;
        return;
    }
    int level = random_level(m);
    for (int i = m->level; i < level; i++)
        update[i] = m->head;
    if (level > m->level)
        m->level = level;
    n = node_new(level, key, len);
    n->obj = obj;
    n->tag = tag;
    for (int i = 0; i < level; i++) {
        n->next[i] = update[i]->next[i];
        update[i]->next[i] = n;
    }
    m->count++;
}

void store_map_del(struct store_map *m, const void *key, size_t len)
{
    struct store_node *update[STORE_MAP_LEVELS];
    struct store_node *n = find_pred(m, key, len, false, update);
    if (!n || store_key_cmp(n->key, n->key_len, key, len) != 0)
        return;
    for (int i = 0; i < n->level; i++)
        if (update[i]->next[i] == n)
            update[i]->next[i] = n->next[i];
    while (m->level > 1 && !m->head->next[m->level - 1])
        m->level--;
    kcp_obj_unref(n->obj);
    free(n);
    m->count--;
}
