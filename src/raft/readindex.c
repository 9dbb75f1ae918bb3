/* ReadIndex (§6.4): linearizable reads without writing to the log, on leader and followers. */
#include "raft_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Leader: a read records max(commit, the term's first index) and a heartbeat round number; it
 * is answered once a quorum has acknowledged that round (we were still leader after the read
 * arrived) and the term's first entry is committed (our commit index is current).
 * Follower: the read is forwarded to the leader and answered with the leader's index; a new
 * leader, a new term or a timeout fails it, so every read gets exactly one result.
 * r->reads is kept in arrival order; a leader's rounds increase along it.
 */

static void push(struct kcp_raft *r, uint64_t token, uint64_t from, uint64_t index, uint64_t seq)
{
    if (r->n_reads == r->cap_reads) {
        r->cap_reads = r->cap_reads ? 2 * r->cap_reads : 16;
        r->reads = kcp_realloc(r->reads, r->cap_reads * sizeof(*r->reads));
    }
    r->reads[r->n_reads++] =
        (struct raft_read){token, from, index, seq, r->now + r->o.read_timeout_ms};
}

/* Delivers a result to whoever asked: the local caller or a follower. */
static void answer(struct kcp_raft *r, const struct raft_read *rd, uint64_t index, int status)
{
    if (rd->from == r->id) {
        raft_out_read(r, rd->token, status ? 0 : index, status);
        return;
    }
    struct kcp_raft_msg *m = raft_msg(r, KCP_RAFT_MSG_READ_INDEX_RESP, rd->from);
    m->read_index_resp.token = rd->token;
    m->read_index_resp.index = status ? 0 : index;
    m->read_index_resp.ok = status == 0;
}

static uint64_t read_index(const struct kcp_raft *r)
{
    return r->commit > r->noop_index ? r->commit : r->noop_index;
}

int raft_read(struct kcp_raft *r, uint64_t token)
{
    if (r->role == KCP_RAFT_LEADER) {
        if (r->n_reads >= r->o.max_pending_reads)
            return KCP_ETOOMANY;
        push(r, token, r->id, read_index(r), ++r->read_seq);
        r->out.read_broadcast = true;
        return 0;
    }
    if (r->role != KCP_RAFT_FOLLOWER || !r->leader_id)
        return KCP_EUNAVAILABLE;
    if (r->n_reads >= r->o.max_pending_reads)
        return KCP_ETOOMANY;
    push(r, token, r->id, 0, 0);
    struct kcp_raft_msg *m = raft_msg(r, KCP_RAFT_MSG_READ_INDEX, r->leader_id);
    m->read_index.token = token;
    return 0;
}

void raft_recv_read_index(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    if (r->role != KCP_RAFT_LEADER || r->n_reads >= r->o.max_pending_reads) {
        struct kcp_raft_msg *resp = raft_msg(r, KCP_RAFT_MSG_READ_INDEX_RESP, m->from);
        resp->read_index_resp.token = m->read_index.token;
        return;
    }
    push(r, m->read_index.token, m->from, read_index(r), ++r->read_seq);
    r->out.read_broadcast = true;
}

void raft_recv_read_index_resp(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    if (r->role != KCP_RAFT_FOLLOWER || m->from != r->leader_id)
        return;
    for (size_t i = 0; i < r->n_reads; i++) {
        if (r->reads[i].token != m->read_index_resp.token)
            continue;
        raft_out_read(r, r->reads[i].token, m->read_index_resp.ok ? m->read_index_resp.index : 0,
                      m->read_index_resp.ok ? 0 : KCP_EUNAVAILABLE);
        memmove(&r->reads[i], &r->reads[i + 1], (r->n_reads - i - 1) * sizeof(*r->reads));
        r->n_reads--;
        return;
    }
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

void raft_reads_advance(struct kcp_raft *r)
{
    if (r->role != KCP_RAFT_LEADER || !r->n_reads || r->commit < r->noop_index)
        return;
    uint64_t acked[KCP_RAFT_MAX_SERVERS];
    size_t n = 0;
    for (size_t i = 0; i < r->n_prs; i++)
        if (raft_is_voter(r, r->prs[i].id))
            acked[n++] = r->prs[i].id == r->id ? r->read_seq : r->prs[i].hb_seq;
    if (!n)
        return;
    qsort(acked, n, sizeof(acked[0]), cmp_desc);
    uint64_t confirmed = acked[n / 2];
    size_t done = 0;
    while (done < r->n_reads && r->reads[done].seq <= confirmed) {
        answer(r, &r->reads[done], r->reads[done].index, 0);
        done++;
    }
    memmove(r->reads, r->reads + done, (r->n_reads - done) * sizeof(*r->reads));
    r->n_reads -= done;
}

void raft_reads_fail_all(struct kcp_raft *r, int status)
{
    for (size_t i = 0; i < r->n_reads; i++)
        answer(r, &r->reads[i], 0, status);
    r->n_reads = 0;
}

void raft_reads_tick(struct kcp_raft *r)
{
    size_t j = 0;
    for (size_t i = 0; i < r->n_reads; i++) {
        if (r->reads[i].deadline_ms <= r->now)
            answer(r, &r->reads[i], 0, KCP_ETIMEOUT);
        else
            r->reads[j++] = r->reads[i];
    }
    r->n_reads = j;
}

uint64_t raft_reads_deadline(const struct kcp_raft *r)
{
    uint64_t d = UINT64_MAX;
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].deadline_ms < d)
            d = r->reads[i].deadline_ms;
    return d;
}
