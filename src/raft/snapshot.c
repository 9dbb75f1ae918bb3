/* Snapshots: compaction, and InstallSnapshot streamed in chunks to lagging followers (§5.1). */
#include "raft_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Leader side, per follower in RAFT_SNAPSHOT:
 *   happy path: start -> snapshot_read (caller) -> SNAPSHOT_CHUNK event -> SNAPSHOT message ->
 *   SNAPSHOT_RESP with the next offset -> next read ... -> last chunk -> SNAPSHOT_RESP done ->
 *   PROBE from the snapshot's index.
 *   failure modes: a lost chunk or answer is sent again after an election timeout; a follower
 *   that lost its staged bytes answers with the offset it wants (0); the caller dropping the
 *   snapshot (status < 0) sends the follower back to PROBE, which starts over with the current
 *   snapshot; a follower that caught up some other way answers APPEND_RESP and the stream stops.
 * Follower side: chunks must arrive in order; the last one waits for SNAPSHOT_PERSISTED, then
 * the update's install replaces the state machine and the log.
 */

static void request_read(struct kcp_raft *r, struct raft_progress *p)
{
    struct raft_out *o = &r->out;
    if (o->n_sreads == o->cap_sreads) {
        o->cap_sreads = o->cap_sreads ? 2 * o->cap_sreads : 8;
        o->sreads = kcp_realloc(o->sreads, o->cap_sreads * sizeof(*o->sreads));
    }
    o->sreads[o->n_sreads++] = (struct kcp_raft_snapshot_read){p->id, p->snap_index, p->snap_offset,
                                                               r->o.snapshot_chunk_bytes};
    p->snap_reading = true;
    p->snap_sent_ms = r->now;
}

void raft_snapshot_start(struct kcp_raft *r, struct raft_progress *p)
{
    if (!r->log.snap_index) {
        kcp_log(KCP_LOG_ERROR, "raft", "%llu: %llu needs entries no longer held, and no snapshot",
                (unsigned long long)r->id, (unsigned long long)p->id);
        return;
    }
    free(p->snap_config);
    p->snap_config = kcp_malloc(sizeof(*p->snap_config));
    *p->snap_config = r->snap_config;
    p->state = RAFT_SNAPSHOT;
    p->paused = false;
    p->in_head = p->in_count = 0;
    p->snap_index = r->log.snap_index;
    p->snap_term = r->log.snap_term;
    p->snap_offset = 0;
    p->snap_sent_end = 0;
    p->snap_last_sent = false;
    request_read(r, p);
}

void raft_snapshot_stop(struct kcp_raft *r, struct raft_progress *p)
{
    free(p->snap_config);
    p->snap_config = NULL;
    p->snap_reading = false;
    p->state = RAFT_PROBE;
    p->paused = false;
    p->in_head = p->in_count = 0;
    p->next = p->match + 1;
}

int raft_snapshot_chunk(struct kcp_raft *r, const struct kcp_raft_event *ev)
{
    const struct kcp_raft_ev_chunk *c = &ev->snapshot_chunk;
    if (c->status >= 0 && (c->data.len > r->o.snapshot_chunk_bytes ||
                           (c->data.len && !c->data.base) || (!c->last && !c->data.len)))
        return KCP_EINVAL;
    if (r->role != KCP_RAFT_LEADER)
        return 0;
    struct raft_progress *p = raft_progress_find(r, c->to);
    if (!p || p->state != RAFT_SNAPSHOT || !p->snap_reading || c->index != p->snap_index ||
        c->offset != p->snap_offset)
        return 0; /* an answer to a read we no longer want */
    if (c->status < 0) {
        raft_snapshot_stop(r, p);
        p->paused = true; /* retry on the next heartbeat answer, not in a tight loop */
        return 0;
    }
    struct kcp_raft_msg *m = raft_msg(r, KCP_RAFT_MSG_SNAPSHOT, p->id);
    m->snapshot.index = p->snap_index;
    m->snapshot.term = p->snap_term;
    m->snapshot.offset = c->offset;
    m->snapshot.last = c->last;
    /* The update outlives neither copy: both go at the start of the next step. */
    struct kcp_raft_config *cfg = kcp_malloc(sizeof(*cfg));
    *cfg = *p->snap_config;
    raft_defer_free(r, cfg);
    m->snapshot.config = cfg;
    if (c->data.len) {
        m->snapshot.data.base = kcp_malloc(c->data.len);
        memcpy(m->snapshot.data.base, c->data.base, c->data.len);
        m->snapshot.data.len = c->data.len;
        raft_defer_free(r, m->snapshot.data.base);
    }
    p->snap_reading = false;
    p->snap_sent_end = c->offset + c->data.len;
    p->snap_last_sent = c->last;
    p->snap_sent_ms = r->now;
    return 0;
}

void raft_snapshot_tick(struct kcp_raft *r, struct raft_progress *p)
{
    /* Retransmit the chunk in flight when neither it nor its answer showed up. */
    if (p->state != RAFT_SNAPSHOT || p->snap_reading ||
        r->now < p->snap_sent_ms + r->o.election_timeout_ms)
        return;
    request_read(r, p);
}

void raft_recv_snapshot_resp(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    if (r->role != KCP_RAFT_LEADER)
        return;
    struct raft_progress *p = raft_progress_find(r, m->from);
    if (!p || p->id == r->id)
        return;
    p->active = true;
    uint64_t index = m->snapshot_resp.index;
    if (m->snapshot_resp.done) {
        /* Installed: its log now matches ours up to the snapshot's index. */
        if (index > raft_log_last_index(&r->log))
            return;
        if (index > p->match) {
            p->match = index;
            raft_transfer_check(r, p);
            raft_maybe_commit(r);
            if (r->role != KCP_RAFT_LEADER)
                return; /* resigned: p is gone */
        }
        if (p->state == RAFT_SNAPSHOT)
            raft_snapshot_stop(r, p);
        raft_send_append(r, p, false);
        return;
    }
    if (p->state != RAFT_SNAPSHOT || index != p->snap_index || p->snap_reading)
        return;
    if (m->snapshot_resp.offset == p->snap_sent_end && p->snap_last_sent)
        return; /* the last chunk is in; "done" follows the install */
    p->snap_offset = m->snapshot_resp.offset;
    request_read(r, p);
}

static bool holds(const struct kcp_raft *r, uint64_t index, uint64_t term)
{
    uint64_t t;
    return raft_log_term(&r->log, index, &t) == 0 && t == term;
}

/*
 * The log already has the snapshot's last entry, which is committed: so is everything before
 * it, and applying from the log gets us there without the snapshot.
 */
static void caught_up_by_log(struct kcp_raft *r, uint64_t leader, uint64_t index)
{
    if (r->commit < index)
        r->commit = index;
    if (!leader)
        return;
    uint64_t a = r->persisted < index ? r->persisted : index;
    struct kcp_raft_msg *resp = raft_msg(r, KCP_RAFT_MSG_APPEND_RESP, leader);
    resp->append_resp.index = a;
}

static void snapshot_resp(struct kcp_raft *r, uint64_t to, uint64_t index, uint64_t offset,
                          bool done)
{
    struct kcp_raft_msg *m = raft_msg(r, KCP_RAFT_MSG_SNAPSHOT_RESP, to);
    m->snapshot_resp.index = index;
    m->snapshot_resp.offset = offset;
    m->snapshot_resp.done = done;
}

void raft_recv_snapshot(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    const struct kcp_raft_msg_snapshot *s = &m->snapshot;
    if (!s->config || !s->index || !s->term || s->term > m->term || (s->data.len && !s->data.base))
        return;
    if (s->index <= r->commit) {
        /* Already have it: tell the leader how far we match so that it stops streaming. */
        uint64_t a = r->commit < r->persisted ? r->commit : r->persisted;
        struct kcp_raft_msg *resp = raft_msg(r, KCP_RAFT_MSG_APPEND_RESP, m->from);
        resp->append_resp.index = a;
        return;
    }
    if (r->install_pending)
        return;
    if (holds(r, s->index, s->term)) {
        caught_up_by_log(r, m->from, s->index);
        return;
    }
    if (s->offset == 0) {
        r->recv_active = true;
        r->recv_index = s->index;
        r->recv_term = s->term;
        r->recv_offset = 0;
        r->recv_config = *s->config;
    }
    if (!r->recv_active || s->index != r->recv_index || s->term != r->recv_term ||
        s->offset != r->recv_offset) {
        bool same = r->recv_active && s->index == r->recv_index && s->term == r->recv_term;
        snapshot_resp(r, m->from, s->index, same ? r->recv_offset : 0, false);
        return;
    }
    struct raft_out *o = &r->out;
    if (o->n_chunks == o->cap_chunks) {
        o->cap_chunks = o->cap_chunks ? 2 * o->cap_chunks : 4;
        o->chunks = kcp_realloc(o->chunks, o->cap_chunks * sizeof(*o->chunks));
    }
    struct kcp_raft_snapshot_chunk *c = &o->chunks[o->n_chunks++];
    memset(c, 0, sizeof(*c));
    c->index = s->index;
    c->term = s->term;
    c->offset = s->offset;
    c->last = s->last;
    if (s->data.len) {
        c->data.base = kcp_malloc(s->data.len);
        memcpy(c->data.base, s->data.base, s->data.len);
        c->data.len = s->data.len;
        raft_defer_free(r, c->data.base);
    }
    r->recv_offset += s->data.len;
    if (s->last) {
        r->recv_active = false;
        r->install_pending = true; /* answered once durable, in raft_snapshot_persisted */
    } else {
        snapshot_resp(r, m->from, s->index, r->recv_offset, false);
    }
}

void raft_snapshot_persisted(struct kcp_raft *r, uint64_t index, uint64_t term)
{
    if (!r->install_pending || index != r->recv_index || term != r->recv_term)
        return;
    r->install_pending = false;
    if (index <= r->applied)
        return; /* overtaken while staging: the staged copy is simply not installed */
    if (holds(r, index, term)) {
        /* Entries after index may have been acknowledged: they must survive (§5.1). */
        caught_up_by_log(r, r->leader_id, index);
        return;
    }
    /*
     * Our log disagrees with the snapshot's last entry or ends before it, so nothing we hold
     * after it was acknowledged to a leader that has the snapshot's (committed) entry.
     */
    raft_log_reset(r, index, term);
    r->snap_config = r->recv_config;
    raft_out_truncate(r, r->log.first);
    r->out.install = true;
    r->out.install_meta = (struct kcp_raft_snapshot_meta){index, term, &r->snap_config};
    raft_config_refresh(r);
    r->persisted = index;
    if (r->commit < index)
        r->commit = index;
    r->applied = index;
    if (r->ack_index < index)
        r->ack_index = index;
    if (r->ack_sent < index)
        r->ack_sent = index;
    if (r->leader_id)
        snapshot_resp(r, r->leader_id, index, 0, true);
}

int raft_compact(struct kcp_raft *r, uint64_t index)
{
    uint64_t term;
    if (index > r->applied)
        return KCP_EINVAL;
    if (index <= r->log.snap_index)
        return 0;
    if (raft_log_term(&r->log, index, &term) != 0)
        return KCP_EINTERNAL;
    struct kcp_raft_config c;
    if (raft_config_at(r, index, &c) < 0)
        return KCP_EINTERNAL;
    r->snap_config = c;
    r->log.snap_index = index;
    r->log.snap_term = term;
    uint64_t keep = r->o.compact_trailing;
    raft_log_drop_before(r, index > keep ? index - keep + 1 : 1);
    r->out.compacted = true;
    return 0;
}
