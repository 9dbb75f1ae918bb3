/* The in-memory Raft log: entries after (and a few before) the snapshot, payloads owned. */
#include "raft_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void raft_log_init(struct raft_log *l)
{
    memset(l, 0, sizeof(*l));
    l->first = 1;
}

void raft_log_close(struct kcp_raft *r)
{
    struct raft_log *l = &r->log;
    for (size_t i = 0; i < l->n; i++)
        free(l->e[l->head + i].data.base);
    free(l->e);
    raft_log_init(l);
}

uint64_t raft_log_last_index(const struct raft_log *l)
{
    uint64_t last = l->n ? l->first + l->n - 1 : 0;
    return last > l->snap_index ? last : l->snap_index;
}

uint64_t raft_log_last_term(const struct raft_log *l)
{
    if (l->n && l->first + l->n - 1 >= l->snap_index)
        return l->e[l->head + l->n - 1].term;
    return l->snap_term;
}

const struct kcp_raft_entry *raft_log_get(const struct raft_log *l, uint64_t index)
{
    if (!l->n || index < l->first || index >= l->first + l->n)
        return NULL;
    return &l->e[l->head + (index - l->first)];
}

int raft_log_term(const struct raft_log *l, uint64_t index, uint64_t *out)
{
    const struct kcp_raft_entry *e = raft_log_get(l, index);
    if (e) {
        *out = e->term;
        return 0;
    }
    if (index == l->snap_index) {
        *out = l->snap_term;
        return 0;
    }
    return KCP_ENOTFOUND;
}

void raft_log_append(struct raft_log *l, const struct kcp_raft_entry *e)
{
    if (l->n == 0) {
        assert(e->index <= l->snap_index + 1);
        l->first = e->index;
    } else {
        assert(e->index == l->first + l->n);
    }
    if (l->head + l->n == l->cap) {
        if (l->head && l->head >= l->cap / 2) {
            /* Compaction left the front empty: slide rather than grow. */
            memmove(l->e, l->e + l->head, l->n * sizeof(*l->e));
            l->head = 0;
        } else {
            l->cap = l->cap ? 2 * l->cap : 64;
            l->e = kcp_realloc(l->e, l->cap * sizeof(*l->e));
        }
    }
    l->e[l->head + l->n++] = *e;
}

void raft_log_truncate(struct kcp_raft *r, uint64_t from)
{
    struct raft_log *l = &r->log;
    assert(from > l->snap_index);
    while (l->n && l->first + l->n - 1 >= from) {
        /* The update may still point at this payload until the next step. */
        raft_defer_free(r, l->e[l->head + l->n - 1].data.base);
        l->n--;
    }
    if (r->persisted >= from)
        r->persisted = from - 1;
}

void raft_log_drop_before(struct kcp_raft *r, uint64_t first)
{
    struct raft_log *l = &r->log;
    while (l->n && l->first < first) {
        raft_defer_free(r, l->e[l->head].data.base);
        l->head++;
        l->n--;
        l->first++;
    }
    if (!l->n) {
        l->head = 0;
        l->first = l->snap_index + 1;
    }
}

void raft_log_reset(struct kcp_raft *r, uint64_t index, uint64_t term)
{
    struct raft_log *l = &r->log;
    for (size_t i = 0; i < l->n; i++)
        raft_defer_free(r, l->e[l->head + i].data.base);
    l->head = l->n = 0;
    l->snap_index = index;
    l->snap_term = term;
    l->first = index + 1;
}

bool raft_log_up_to_date(const struct raft_log *l, uint64_t last_index, uint64_t last_term)
{
    uint64_t my_term = raft_log_last_term(l);
    return last_term > my_term || (last_term == my_term && last_index >= raft_log_last_index(l));
}
