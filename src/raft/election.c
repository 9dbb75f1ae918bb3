/* Leader election: randomized timeouts, PreVote, RequestVote, becoming leader, transfer. */
#include "raft_int.h"

#include <string.h>

void raft_election_reset_timer(struct kcp_raft *r)
{
    /* §3.4: a fresh random timeout each time makes split votes unlikely to repeat. */
    uint64_t t = r->o.election_timeout_ms;
    r->election_deadline = r->now + raft_random(r, t, 2 * t);
}

static size_t quorum(const struct kcp_raft *r)
{
    return raft_voters(r) / 2 + 1;
}

static void tally(struct kcp_raft *r, uint64_t id, bool granted)
{
    for (size_t i = 0; i < r->n_for; i++)
        if (r->votes_for[i] == id)
            return;
    for (size_t i = 0; i < r->n_against; i++)
        if (r->votes_against[i] == id)
            return;
    if (granted && r->n_for < KCP_RAFT_MAX_SERVERS)
        r->votes_for[r->n_for++] = id;
    else if (!granted && r->n_against < KCP_RAFT_MAX_SERVERS)
        r->votes_against[r->n_against++] = id;
}

void raft_election_tick(struct kcp_raft *r)
{
    if (r->now < r->election_deadline)
        return;
    /* Learners and servers outside the configuration never stand (§4.2.1, §4.2.3). */
    if (!raft_is_voter(r, r->id)) {
        raft_election_reset_timer(r);
        return;
    }
    raft_election_start(r, r->o.pre_vote, false);
}

void raft_election_start(struct kcp_raft *r, bool pre_vote, bool transfer)
{
    /* Forwarded reads went to a leader we are giving up on. */
    raft_reads_fail_all(r, KCP_EUNAVAILABLE);
    if (pre_vote) {
        raft_become(r, KCP_RAFT_PRECANDIDATE);
    } else {
        raft_become(r, KCP_RAFT_CANDIDATE);
        r->term++;
        r->vote = r->id;
    }
    r->leader_id = 0;
    r->ack_index = r->ack_sent = 0;
    r->n_for = r->n_against = 0;
    tally(r, r->id, true);
    raft_election_reset_timer(r);
    if (r->n_for >= quorum(r)) {
        if (pre_vote)
            raft_election_start(r, false, false);
        else
            raft_become_leader(r);
        return;
    }
    uint64_t last_index = raft_log_last_index(&r->log), last_term = raft_log_last_term(&r->log);
    for (uint32_t i = 0; i < r->config.n; i++) {
        const struct kcp_raft_server *s = &r->config.servers[i];
        if (s->id == r->id || s->role != KCP_RAFT_VOTER)
            continue;
        struct kcp_raft_msg *m =
            raft_msg(r, pre_vote ? KCP_RAFT_MSG_PREVOTE : KCP_RAFT_MSG_VOTE, s->id);
        /* A PreVote asks "would you vote for me in the next term?" without moving to it. */
        if (pre_vote)
            m->term = r->term + 1;
        m->vote.last_index = last_index;
        m->vote.last_term = last_term;
        m->vote.transfer = transfer;
    }
}

void raft_election_recv_vote(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    bool pre = m->type == KCP_RAFT_MSG_PREVOTE;
    bool up = raft_log_up_to_date(&r->log, m->vote.last_index, m->vote.last_term);
    bool grant;
    if (pre)
        /* §9.6: grant only what a real election in that term could grant. */
        grant = up && m->term > r->term && (m->vote.transfer || !raft_in_lease(r)) &&
                r->role != KCP_RAFT_LEADER;
    else
        grant = up && (r->vote == 0 || r->vote == m->from); /* §3.4, §3.6 */
    struct kcp_raft_msg *resp =
        raft_msg(r, pre ? KCP_RAFT_MSG_PREVOTE_RESP : KCP_RAFT_MSG_VOTE_RESP, m->from);
    resp->vote_resp.granted = grant;
    if (pre && grant)
        resp->term = m->term; /* the pre-candidate matches answers by the term it asked for */
    if (!pre && grant) {
        r->vote = m->from; /* durable before the response leaves: hard_state_sync */
        raft_election_reset_timer(r);
    }
}

void raft_election_recv_vote_resp(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    bool pre = m->type == KCP_RAFT_MSG_PREVOTE_RESP;
    if (pre) {
        if (r->role != KCP_RAFT_PRECANDIDATE)
            return;
        if (m->term != (m->vote_resp.granted ? r->term + 1 : r->term))
            return;
    } else if (r->role != KCP_RAFT_CANDIDATE) {
        return;
    }
    if (!raft_is_voter(r, m->from))
        return;
    tally(r, m->from, m->vote_resp.granted);
    if (r->n_for >= quorum(r)) {
        if (pre)
            raft_election_start(r, false, false);
        else
            raft_become_leader(r);
    } else if (r->n_against >= quorum(r)) {
        raft_become_follower(r, r->term, 0);
    }
}

void raft_election_recv_timeout_now(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    /* §3.10: the leader judged us up to date; skip PreVote and the lease. */
    if (r->role != KCP_RAFT_FOLLOWER || m->from != r->leader_id || !raft_is_voter(r, r->id))
        return;
    raft_election_start(r, false, true);
}

void raft_become_leader(struct kcp_raft *r)
{
    raft_become(r, KCP_RAFT_LEADER);
    r->leader_id = r->id;
    r->leader_seen = r->now;
    r->transfer_target = 0;
    raft_progress_reset(r);
    r->heartbeat_deadline = r->now + r->o.heartbeat_ms;
    r->quorum_deadline = r->now + r->o.election_timeout_ms;
    r->commit_sent = r->commit;
    /* §6.4 and §4.1's fix: an entry of our own term, committed, settles what came before. */
    r->noop_index = raft_append_local(r, KCP_RAFT_ENTRY_NOOP, (struct kcp_raft_buf){NULL, 0});
    raft_broadcast_append(r);
    raft_maybe_commit(r);
}

int raft_transfer(struct kcp_raft *r, uint64_t target)
{
    if (r->role != KCP_RAFT_LEADER)
        return KCP_EUNAVAILABLE;
    if (target == 0) {
        /* The most up-to-date voter loses the least time catching up. */
        const struct raft_progress *best = NULL;
        for (size_t i = 0; i < r->n_prs; i++) {
            const struct raft_progress *p = &r->prs[i];
            if (p->id != r->id && raft_is_voter(r, p->id) && (!best || p->match > best->match))
                best = p;
        }
        if (!best)
            return KCP_ENOTFOUND;
        target = best->id;
    }
    if (target == r->id)
        return KCP_EINVAL;
    struct raft_progress *p = raft_progress_find(r, target);
    if (!p || !raft_is_voter(r, target))
        return KCP_ENOTFOUND;
    if (r->transfer_target == target)
        return 0;
    r->transfer_target = target;
    r->transfer_deadline = r->now + r->o.election_timeout_ms;
    r->transfer_sent = false;
    raft_transfer_check(r, p);
    if (!r->transfer_sent)
        raft_send_append(r, p, false);
    return 0;
}

void raft_transfer_check(struct kcp_raft *r, struct raft_progress *p)
{
    if (r->transfer_target != p->id || r->transfer_sent || p->match != raft_log_last_index(&r->log))
        return;
    raft_msg(r, KCP_RAFT_MSG_TIMEOUT_NOW, p->id);
    r->transfer_sent = true;
}
