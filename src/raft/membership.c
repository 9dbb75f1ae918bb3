/* Membership: single-server changes with learners (§4.1-§4.2), configurations in the log. */
#include "raft_int.h"

#include <stdlib.h>
#include <string.h>

const struct kcp_raft_server *kcp_raft_config_find(const struct kcp_raft_config *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->servers[i].id == id)
            return &c->servers[i];
    return NULL;
}

/* The latest configuration entry held in the log at or below index and after the snapshot. */
static const struct kcp_raft_entry *config_entry_at(const struct kcp_raft *r, uint64_t index)
{
    const struct raft_log *l = &r->log;
    if (!l->n)
        return NULL;
    uint64_t hi = l->first + l->n - 1;
    if (index < hi)
        hi = index;
    /* Entries up to the snapshot's index are covered by its configuration. */
    if (hi < l->first || hi <= l->snap_index)
        return NULL;
    uint64_t lo = l->snap_index + 1 > l->first ? l->snap_index + 1 : l->first;
    for (uint64_t i = hi; i >= lo; i--) {
        const struct kcp_raft_entry *e = raft_log_get(l, i);
        if (e->type == KCP_RAFT_ENTRY_CONFIG)
            return e;
    }
    return NULL;
}

/* The configuration as of index (>= the snapshot's). */
int raft_config_at(struct kcp_raft *r, uint64_t index, struct kcp_raft_config *out)
{
    const struct kcp_raft_entry *e = config_entry_at(r, index);
    if (!e) {
        *out = r->snap_config;
        return 0;
    }
    return kcp_raft_config_decode(out, e->data.base, e->data.len) < 0 ? KCP_EINTERNAL : 0;
}

/*
 * §4.1: a server uses the latest configuration in its log whether or not it is committed, so
 * a truncation that removes a configuration entry reverts to the one before it.
 */
void raft_config_refresh(struct kcp_raft *r)
{
    uint64_t last = raft_log_last_index(&r->log);
    /* Entries were validated on the way in; a failure here is a bug, not input. */
    if (raft_config_at(r, last, &r->config) < 0)
        abort();
    const struct kcp_raft_entry *e = config_entry_at(r, last);
    r->config_index = e ? e->index : r->log.snap_index;
    if (r->role == KCP_RAFT_LEADER)
        raft_progress_sync(r);
}

void raft_config_appended(struct kcp_raft *r, const struct kcp_raft_entry *e)
{
    if (kcp_raft_config_decode(&r->config, e->data.base, e->data.len) < 0)
        abort();
    r->config_index = e->index;
    if (r->role == KCP_RAFT_LEADER)
        raft_progress_sync(r);
}

void raft_config_committed(struct kcp_raft *r)
{
    /* §4.2.2: a leader removed by the entry it just committed steps down. */
    if (r->role == KCP_RAFT_LEADER && r->commit >= r->config_index && !raft_is_voter(r, r->id))
        raft_become_follower(r, r->term, 0);
}

int raft_change(struct kcp_raft *r, const struct kcp_raft_event *ev)
{
    if (r->role != KCP_RAFT_LEADER || r->transfer_target)
        return KCP_EUNAVAILABLE;
    /*
     * One change at a time, and only after this leader has committed an entry of its own term:
     * otherwise an uncommitted change of an earlier leader could combine with ours into two
     * disjoint majorities (the single-server bug noted after the dissertation, §4.1).
     */
    if (r->config_index > r->commit || r->commit < r->noop_index)
        return KCP_ECONFLICT;
    struct kcp_raft_config c = r->config;
    uint64_t id = ev->change.id;
    struct kcp_raft_server *s = NULL;
    for (uint32_t i = 0; i < c.n; i++)
        if (c.servers[i].id == id)
            s = &c.servers[i];
    if (!id)
        return KCP_EINVAL;
    switch (ev->change.type) {
    case KCP_RAFT_ADD_LEARNER: {
        const char *addr = ev->change.address ? ev->change.address : "";
        size_t len = strlen(addr);
        if (s)
            return KCP_EEXIST;
        if (c.n == KCP_RAFT_MAX_SERVERS)
            return KCP_ETOOMANY;
        if (len >= KCP_RAFT_ADDR_MAX)
            return KCP_EINVAL;
        s = &c.servers[c.n++];
        memset(s, 0, sizeof(*s));
        s->id = id;
        s->role = KCP_RAFT_LEARNER;
        memcpy(s->address, addr, len + 1);
        break;
    }
    case KCP_RAFT_PROMOTE: {
        if (!s)
            return KCP_ENOTFOUND;
        if (s->role != KCP_RAFT_LEARNER)
            return KCP_EINVAL;
        /* §4.2.1: a voter that is far behind would stall commitment while it catches up. */
        struct raft_progress *p = raft_progress_find(r, id);
        if (!p || !raft_progress_caught_up(r, p))
            return KCP_ECONFLICT;
        s->role = KCP_RAFT_VOTER;
        break;
    }
    case KCP_RAFT_REMOVE: {
        if (!s)
            return KCP_ENOTFOUND;
        if (s->role == KCP_RAFT_VOTER && raft_voters(r) == 1)
            return KCP_EINVAL;
        size_t at = (size_t)(s - c.servers);
        memmove(&c.servers[at], &c.servers[at + 1], (c.n - at - 1) * sizeof(c.servers[0]));
        c.n--;
        break;
    }
    default:
        return KCP_EINVAL;
    }
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_raft_config_encode(&c, &b);
    struct kcp_raft_buf data = {b.data, b.len};
    r->out.proposed_index = raft_append_local(r, KCP_RAFT_ENTRY_CONFIG, data);
    raft_broadcast_append(r);
    /* A leader that removed the only other voter commits on its own. */
    raft_maybe_commit(r);
    return 0;
}
