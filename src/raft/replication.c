/* Log replication (§3.5): progress per member, pipelined AppendEntries, commitment, apply. */
#include "raft_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- progress ---- */

struct raft_progress *raft_progress_find(struct kcp_raft *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static void progress_init(struct kcp_raft *r, struct raft_progress *p, uint64_t id)
{
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->next = raft_log_last_index(&r->log) + 1;
    p->state = RAFT_PROBE;
    p->inflight = kcp_calloc(r->o.max_inflight, sizeof(uint64_t));
    if (id == r->id)
        p->match = r->persisted;
}

static void progress_release(struct raft_progress *p)
{
    free(p->inflight);
    free(p->snap_config);
}

void raft_progress_free(struct kcp_raft *r)
{
    for (size_t i = 0; i < r->n_prs; i++)
        progress_release(&r->prs[i]);
    free(r->prs);
    r->prs = NULL;
    r->n_prs = 0;
}

void raft_progress_reset(struct kcp_raft *r)
{
    raft_progress_free(r);
    r->prs = kcp_calloc(KCP_RAFT_MAX_SERVERS, sizeof(*r->prs));
    for (uint32_t i = 0; i < r->config.n; i++)
        progress_init(r, &r->prs[r->n_prs++], r->config.servers[i].id);
}

/* The configuration changed under a leader: members come and go, the rest keep their place. */
void raft_progress_sync(struct kcp_raft *r)
{
    size_t j = 0;
    for (size_t i = 0; i < r->n_prs; i++) {
        if (kcp_raft_config_find(&r->config, r->prs[i].id))
            r->prs[j++] = r->prs[i];
        else
            progress_release(&r->prs[i]);
    }
    r->n_prs = j;
    for (uint32_t i = 0; i < r->config.n; i++)
        if (!raft_progress_find(r, r->config.servers[i].id))
            progress_init(r, &r->prs[r->n_prs++], r->config.servers[i].id);
}

bool raft_progress_caught_up(const struct kcp_raft *r, const struct raft_progress *p)
{
    return p->match + r->o.catchup_margin >= r->commit;
}

static bool inflight_full(const struct kcp_raft *r, const struct raft_progress *p)
{
    return p->in_count >= r->o.max_inflight;
}

static void inflight_add(const struct kcp_raft *r, struct raft_progress *p, uint64_t index)
{
    p->inflight[(p->in_head + p->in_count) % r->o.max_inflight] = index;
    p->in_count++;
}

static void inflight_free_to(const struct kcp_raft *r, struct raft_progress *p, uint64_t index)
{
    while (p->in_count && p->inflight[p->in_head] <= index) {
        p->in_head = (p->in_head + 1) % r->o.max_inflight;
        p->in_count--;
    }
}

static void become_probe(struct raft_progress *p, uint64_t next)
{
    p->state = RAFT_PROBE;
    p->paused = false;
    p->in_head = p->in_count = 0;
    p->next = next;
}

/* ---- leader: sending ---- */

void raft_send_append(struct kcp_raft *r, struct raft_progress *p, bool allow_empty)
{
    if (p->id == r->id || p->state == RAFT_SNAPSHOT || (p->state == RAFT_PROBE && p->paused) ||
        (p->state == RAFT_REPLICATE && inflight_full(r, p)))
        return;
    uint64_t last = raft_log_last_index(&r->log);
    if (p->state == RAFT_REPLICATE && p->next > last && !allow_empty)
        return;
    uint64_t prev = p->next - 1, prev_term;
    if (raft_log_term(&r->log, prev, &prev_term) != 0 ||
        (p->next <= last && !raft_log_get(&r->log, p->next))) {
        /* The entries this follower needs were compacted away (§5.1). */
        raft_snapshot_start(r, p);
        return;
    }
    struct kcp_raft_msg *m = raft_msg(r, KCP_RAFT_MSG_APPEND, p->id);
    m->append.prev_index = prev;
    m->append.prev_term = prev_term;
    m->append.commit = r->commit;
    struct raft_out *o = &r->out;
    size_t n = 0, bytes = 0;
    for (uint64_t i = p->next; i <= last && n < r->o.max_batch_entries; i++) {
        const struct kcp_raft_entry *e = raft_log_get(&r->log, i);
        if (n && bytes + e->data.len > r->o.max_batch_bytes)
            break;
        if (o->n_msg_entries == o->cap_msg_entries) {
            o->cap_msg_entries = o->cap_msg_entries ? 2 * o->cap_msg_entries : 64;
            o->msg_entries =
                kcp_realloc(o->msg_entries, o->cap_msg_entries * sizeof(*o->msg_entries));
        }
        o->msg_entries[o->n_msg_entries++] = *e;
        bytes += e->data.len;
        n++;
    }
    m->append.n_entries = n;
    if (p->state == RAFT_REPLICATE) {
        /* Pipelining: assume success and move on; a rejection sends us back to PROBE. */
        if (n) {
            p->next += n;
            inflight_add(r, p, p->next - 1);
        }
    } else {
        p->paused = true;
    }
}

/* Everything the pipeline allows for one member. */
static void send_all(struct kcp_raft *r, struct raft_progress *p)
{
    uint64_t last = raft_log_last_index(&r->log);
    for (;;) {
        uint64_t before = p->next;
        raft_send_append(r, p, false);
        if (p->state != RAFT_REPLICATE || p->next == before || p->next > last)
            return;
    }
}

void raft_broadcast_append(struct kcp_raft *r)
{
    for (size_t i = 0; i < r->n_prs; i++)
        send_all(r, &r->prs[i]);
}

void raft_broadcast_heartbeat(struct kcp_raft *r, uint64_t seq)
{
    for (size_t i = 0; i < r->n_prs; i++) {
        struct raft_progress *p = &r->prs[i];
        if (p->id == r->id)
            continue;
        struct kcp_raft_msg *m = raft_msg(r, KCP_RAFT_MSG_HEARTBEAT, p->id);
        /* Never more than the follower is known to hold: its log past match may differ. */
        m->heartbeat.commit = p->match < r->commit ? p->match : r->commit;
        m->heartbeat.seq = seq;
    }
}

void raft_replicate_tick(struct kcp_raft *r)
{
    if (r->now >= r->heartbeat_deadline) {
        r->heartbeat_deadline = r->now + r->o.heartbeat_ms;
        raft_broadcast_heartbeat(r, r->read_seq);
        for (size_t i = 0; i < r->n_prs; i++)
            raft_snapshot_tick(r, &r->prs[i]);
    }
    if (r->o.check_quorum && r->now >= r->quorum_deadline) {
        /* §6.2: a leader that has not heard from a majority for an election timeout resigns. */
        size_t active = 0;
        for (size_t i = 0; i < r->n_prs; i++) {
            struct raft_progress *p = &r->prs[i];
            if (raft_is_voter(r, p->id) && (p->active || p->id == r->id))
                active++;
            p->active = false;
        }
        if (active < raft_voters(r) / 2 + 1) {
            KCP_LOG_V(1, "raft", "%llu: lost quorum in term %llu, stepping down",
                      (unsigned long long)r->id, (unsigned long long)r->term);
            raft_become_follower(r, r->term, 0);
            return;
        }
        r->quorum_deadline = r->now + r->o.election_timeout_ms;
    }
    if (r->transfer_target && r->now >= r->transfer_deadline)
        r->transfer_target = 0; /* §3.10: give up; proposals flow again */
}

/* ---- leader: appending and committing ---- */

uint64_t raft_append_local(struct kcp_raft *r, enum kcp_raft_entry_type type,
                           struct kcp_raft_buf data)
{
    struct kcp_raft_entry e = {r->term, raft_log_last_index(&r->log) + 1, type, data};
    raft_log_append(&r->log, &e);
    raft_out_entry(r, &e);
    if (type == KCP_RAFT_ENTRY_CONFIG)
        raft_config_appended(r, &e);
    return e.index;
}

int raft_propose(struct kcp_raft *r, const struct kcp_raft_event *ev)
{
    if (r->role != KCP_RAFT_LEADER || r->transfer_target)
        return KCP_EUNAVAILABLE;
    if (!ev->propose.n || ev->propose.n > KCP_RAFT_MAX_PROPOSE || !ev->propose.payloads)
        return KCP_EINVAL;
    for (size_t i = 0; i < ev->propose.n; i++)
        if (ev->propose.payloads[i].len && !ev->propose.payloads[i].base)
            return KCP_EINVAL;
    for (size_t i = 0; i < ev->propose.n; i++) {
        uint64_t index = raft_append_local(r, KCP_RAFT_ENTRY_NORMAL, ev->propose.payloads[i]);
        if (i == 0)
            r->out.proposed_index = index;
    }
    raft_broadcast_append(r);
    return 0;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

void raft_maybe_commit(struct kcp_raft *r)
{
    if (r->role != KCP_RAFT_LEADER)
        return;
    uint64_t match[KCP_RAFT_MAX_SERVERS];
    size_t n = 0;
    for (size_t i = 0; i < r->n_prs; i++)
        if (raft_is_voter(r, r->prs[i].id))
            match[n++] = r->prs[i].match;
    if (!n)
        return;
    qsort(match, n, sizeof(match[0]), cmp_desc);
    uint64_t q = match[n / 2], t;
    /* §3.6.2 (paper §5.4.2): only an entry of the current term is committed by counting. */
    if (q <= r->commit || raft_log_term(&r->log, q, &t) != 0 || t != r->term)
        return;
    r->commit = q;
    raft_config_committed(r);
}

/*
 * A commit index that moved goes to the followers in the same step: they apply, and answer
 * the clients whose writes they forwarded, without waiting for the next heartbeat or write
 * (up to heartbeat_ms later). An AppendEntries the step sends anyway carries it; otherwise an
 * empty one does, which also checks the follower's log like any other.
 */
void raft_notify_commit(struct kcp_raft *r)
{
    if (r->role != KCP_RAFT_LEADER || r->commit <= r->commit_sent)
        return;
    r->commit_sent = r->commit;
    for (size_t i = 0; i < r->n_prs; i++) {
        struct raft_progress *p = &r->prs[i];
        bool carried = false;
        for (size_t k = 0; k < r->out.n_msgs && !carried; k++) {
            const struct kcp_raft_msg *m = &r->out.msgs[k];
            carried =
                m->to == p->id && m->type == KCP_RAFT_MSG_APPEND && m->append.commit >= r->commit;
        }
        if (!carried && p->id != r->id)
            raft_send_append(r, p, true);
    }
}

void raft_collect_committed(struct kcp_raft *r, struct kcp_raft_update *out)
{
    /* Apply only what is durable here too, so a restart never finds applied > log. */
    uint64_t upto = r->commit < r->persisted ? r->commit : r->persisted;
    if (upto <= r->applied)
        return;
    size_t n = upto - r->applied;
    struct raft_out *o = &r->out;
    if (n > o->cap_committed) {
        o->cap_committed = n;
        o->committed = kcp_realloc(o->committed, n * sizeof(*o->committed));
    }
    for (size_t i = 0; i < n; i++)
        o->committed[i] = *raft_log_get(&r->log, r->applied + 1 + i);
    out->committed = o->committed;
    out->n_committed = n;
    r->applied = upto;
}

void raft_persisted(struct kcp_raft *r, uint64_t index, uint64_t term)
{
    uint64_t t;
    /* A report from before a truncation names an (index, term) the log no longer has. */
    if (index <= r->persisted || raft_log_term(&r->log, index, &t) != 0 || t != term)
        return;
    r->persisted = index;
    if (r->role == KCP_RAFT_LEADER) {
        struct raft_progress *self = raft_progress_find(r, r->id);
        if (self)
            self->match = index;
        raft_maybe_commit(r);
    } else if (r->role == KCP_RAFT_FOLLOWER && r->leader_id) {
        uint64_t a = r->ack_index < r->persisted ? r->ack_index : r->persisted;
        if (a > r->ack_sent) {
            struct kcp_raft_msg *m = raft_msg(r, KCP_RAFT_MSG_APPEND_RESP, r->leader_id);
            m->append_resp.index = a;
            r->ack_sent = a;
        }
    }
}

/* ---- follower ---- */

static void reject(struct kcp_raft *r, const struct kcp_raft_msg *m, uint64_t prev)
{
    uint64_t last = raft_log_last_index(&r->log), hint, t, ct;
    if (prev > last) {
        hint = last;
    } else {
        /* Skip back over the whole conflicting term rather than one entry per round trip. */
        raft_log_term(&r->log, prev, &ct);
        hint = prev - 1;
        while (hint > r->commit && hint > r->log.snap_index &&
               raft_log_term(&r->log, hint, &t) == 0 && t == ct)
            hint--;
    }
    struct kcp_raft_msg *resp = raft_msg(r, KCP_RAFT_MSG_APPEND_RESP, m->from);
    resp->append_resp.reject = true;
    resp->append_resp.index = m->append.prev_index;
    resp->append_resp.hint = hint;
}

static void ack(struct kcp_raft *r, uint64_t index)
{
    if (index > r->ack_index)
        r->ack_index = index;
    /* Acknowledge only what is durable: a success counts towards commitment (§3.8). */
    if (index <= r->persisted) {
        struct kcp_raft_msg *resp = raft_msg(r, KCP_RAFT_MSG_APPEND_RESP, r->leader_id);
        resp->append_resp.index = index;
        if (index > r->ack_sent)
            r->ack_sent = index;
    }
}

void raft_recv_append(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    const struct kcp_raft_entry *e = m->append.entries;
    size_t n = m->append.n_entries;
    uint64_t prev = m->append.prev_index, prev_term = m->append.prev_term, t;
    uint64_t last_new = prev + n;
    if (r->install_pending || (n && !e) || last_new < prev)
        return;
    /* Entries our snapshot covers are committed, hence the same as the leader's. */
    if (prev < r->log.snap_index) {
        if (last_new <= r->log.snap_index) {
            ack(r, last_new);
            return;
        }
        size_t skip = r->log.snap_index - prev;
        if (e[skip - 1].term != r->log.snap_term) {
            kcp_log(KCP_LOG_ERROR, "raft", "%llu: leader %llu disagrees with snapshot at %llu",
                    (unsigned long long)r->id, (unsigned long long)m->from,
                    (unsigned long long)r->log.snap_index);
            return;
        }
        e += skip;
        n -= skip;
        prev = r->log.snap_index;
        prev_term = r->log.snap_term;
    }
    if (raft_log_term(&r->log, prev, &t) != 0 || t != prev_term) {
        reject(r, m, prev);
        return;
    }
    /* Find where the message goes beyond what we hold or disagrees with it (§3.5). */
    uint64_t last = raft_log_last_index(&r->log);
    size_t i = 0;
    for (; i < n; i++) {
        uint64_t index = prev + 1 + i;
        if (index > last || raft_log_term(&r->log, index, &t) != 0 || t != e[i].term)
            break;
    }
    /* Validate before changing anything: a bad message must leave the log as it was. */
    for (size_t k = i; k < n; k++) {
        struct kcp_raft_config c;
        if (e[k].term < (k ? e[k - 1].term : prev_term) || e[k].term > m->term ||
            e[k].type < KCP_RAFT_ENTRY_NORMAL || e[k].type > KCP_RAFT_ENTRY_CONFIG ||
            (e[k].type == KCP_RAFT_ENTRY_CONFIG &&
             kcp_raft_config_decode(&c, e[k].data.base, e[k].data.len) < 0))
            return;
    }
    bool config_touched = false;
    if (i < n && prev + 1 + i <= last) {
        uint64_t from = prev + 1 + i;
        if (from <= r->commit) {
            kcp_log(KCP_LOG_ERROR, "raft", "%llu: leader %llu conflicts with committed %llu",
                    (unsigned long long)r->id, (unsigned long long)m->from,
                    (unsigned long long)from);
            return;
        }
        config_touched = r->config_index >= from;
        raft_log_truncate(r, from);
        raft_out_truncate(r, from);
    }
    for (; i < n; i++) {
        struct kcp_raft_entry c = e[i];
        c.index = prev + 1 + i;
        c.data.base = NULL;
        if (e[i].data.len) {
            c.data.base = kcp_malloc(e[i].data.len);
            memcpy(c.data.base, e[i].data.base, e[i].data.len);
        }
        raft_log_append(&r->log, &c);
        raft_out_entry(r, &c);
        config_touched |= c.type == KCP_RAFT_ENTRY_CONFIG;
    }
    if (config_touched)
        raft_config_refresh(r); /* §4.1: the latest configuration in the log, committed or not */
    if (m->append.commit > r->commit) {
        uint64_t c = m->append.commit < last_new ? m->append.commit : last_new;
        if (c > r->commit)
            r->commit = c;
    }
    ack(r, last_new);
}

void raft_recv_heartbeat(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    uint64_t c = m->heartbeat.commit, last = raft_log_last_index(&r->log);
    if (c > last)
        c = last;
    if (c > r->commit && !r->install_pending)
        r->commit = c;
    struct kcp_raft_msg *resp = raft_msg(r, KCP_RAFT_MSG_HEARTBEAT_RESP, m->from);
    resp->heartbeat_resp.seq = m->heartbeat.seq;
}

/* ---- leader: responses ---- */

/* Last, because committing our own removal makes us resign, which frees every progress. */
static void matched(struct kcp_raft *r, struct raft_progress *p, uint64_t index)
{
    p->match = index;
    if (p->next <= index)
        p->next = index + 1;
    const struct kcp_raft_server *s = kcp_raft_config_find(&r->config, p->id);
    if (s && s->role == KCP_RAFT_LEARNER && !p->caught_up && raft_progress_caught_up(r, p)) {
        p->caught_up = true;
        raft_out_caught_up(r, p->id);
    }
    raft_transfer_check(r, p);
    raft_maybe_commit(r);
}

void raft_recv_append_resp(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    if (r->role != KCP_RAFT_LEADER)
        return;
    struct raft_progress *p = raft_progress_find(r, m->from);
    if (!p || p->id == r->id)
        return;
    p->active = true;
    uint64_t index = m->append_resp.index;
    if (m->append_resp.reject) {
        if (!index || p->state == RAFT_SNAPSHOT)
            return;
        /* Drop answers to messages we have since moved past. */
        if (p->state == RAFT_REPLICATE ? index <= p->match : index != p->next - 1)
            return;
        uint64_t next = index;
        if (m->append_resp.hint + 1 < next)
            next = m->append_resp.hint + 1;
        if (next < p->match + 1)
            next = p->match + 1;
        become_probe(p, next);
        raft_send_append(r, p, false);
        return;
    }
    if (index > raft_log_last_index(&r->log))
        return;
    if (index > p->match)
        matched(r, p, index);
    if (r->role != KCP_RAFT_LEADER)
        return; /* committing our own removal made us resign */
    if (p->state == RAFT_SNAPSHOT && p->match >= p->snap_index)
        raft_snapshot_stop(r, p);
    else if (p->state == RAFT_PROBE && index >= p->match) {
        become_probe(p, p->match + 1);
        p->state = RAFT_REPLICATE;
    }
    inflight_free_to(r, p, index);
    send_all(r, p);
}

void raft_recv_heartbeat_resp(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    if (r->role != KCP_RAFT_LEADER)
        return;
    struct raft_progress *p = raft_progress_find(r, m->from);
    if (!p || p->id == r->id)
        return;
    p->active = true;
    if (m->heartbeat_resp.seq > p->hb_seq)
        p->hb_seq = m->heartbeat_resp.seq;
    if (p->state == RAFT_PROBE)
        p->paused = false;
    if (p->match < raft_log_last_index(&r->log)) {
        /* Messages may have been lost: make room and resend (an empty one finds the gap). */
        if (p->state == RAFT_REPLICATE && inflight_full(r, p)) {
            p->in_head = (p->in_head + 1) % r->o.max_inflight;
            p->in_count--;
        }
        raft_send_append(r, p, true);
    }
}

int kcp_raft_progress_get(const struct kcp_raft *r, uint64_t id, struct kcp_raft_progress *out)
{
    if (r->role != KCP_RAFT_LEADER)
        return KCP_EUNAVAILABLE;
    for (size_t i = 0; i < r->n_prs; i++) {
        const struct raft_progress *p = &r->prs[i];
        if (p->id != id)
            continue;
        out->match = p->id == r->id ? r->persisted : p->match;
        out->next = p->next;
        out->active = p->active || p->id == r->id;
        out->caught_up = raft_progress_caught_up(r, p);
        return 0;
    }
    return KCP_ENOTFOUND;
}
