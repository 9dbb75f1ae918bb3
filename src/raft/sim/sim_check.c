/* Raft simulator checks: the safety properties of §3.6 (Figure 3.2) plus client-visible ones. */
#include "sim_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Every check is incremental, so that each step costs what the step changed:
 *  Election Safety     leader_of[term] is set once.
 *  Log Matching        (index, term) -> chain hash is global; a second, different hash fails.
 *  Leader Completeness a leader of term T holds the highest commit reported by any leader of
 *                      an earlier term (by chain hash), and a commit reported in term T is held
 *                      by every live leader of a later term.
 *  State Machine Safety values[index] is set by the first apply anywhere; every other apply
 *                      and every installed snapshot must agree.
 *  Acknowledged writes  acknowledged at apply by the proposer; State Machine Safety keeps them,
 *                      raft_sim_check_final finds them on every member after healing.
 *  ReadIndex           a read's index >= every write acknowledged before it started, and it is
 *                      an index some server reported committed.
 * Plus durable hard state never moving back (term) or voting twice (vote), and the mirror of
 * each core's log matching what kcp_raft_status reports.
 */

static void grow_terms(struct raft_sim *s, uint64_t term)
{
    if (term < s->cap_terms)
        return;
    size_t cap = s->cap_terms, n = cap;
    SIM_GROW(s->leader_of, term, n);
    n = cap;
    SIM_GROW(s->commit_of, term, n);
    n = cap;
    SIM_GROW(s->commit_hash_of, term, n);
    s->cap_terms = n;
}

static void grow_values(struct raft_sim *s, uint64_t index)
{
    if (index < s->cap_values)
        return;
    size_t cap = s->cap_values, n = cap;
    SIM_GROW(s->values, index, n);
    n = cap;
    SIM_GROW(s->vhash, index, n);
    s->cap_values = n;
}

/* ---- Log Matching witness ---- */

static size_t lm_slot(const struct sim_lm *m, uint64_t index, uint64_t term)
{
    uint64_t h = (index * 0x9e3779b97f4a7c15ULL) ^ (term * 0xc2b2ae3d27d4eb4fULL);
    h ^= h >> 29;
    return (size_t)(h & (m->cap - 1));
}

static void lm_put(struct sim_lm *m, uint64_t index, uint64_t term, uint64_t v);

static void lm_grow(struct sim_lm *m)
{
    struct sim_lm old = *m;
    m->cap = old.cap ? 2 * old.cap : 1024;
    m->n = 0;
    m->k_index = kcp_calloc(m->cap, sizeof(uint64_t));
    m->k_term = kcp_calloc(m->cap, sizeof(uint64_t));
    m->v = kcp_calloc(m->cap, sizeof(uint64_t));
    for (size_t i = 0; i < old.cap; i++)
        if (old.k_index[i])
            lm_put(m, old.k_index[i], old.k_term[i], old.v[i]);
    free(old.k_index);
    free(old.k_term);
    free(old.v);
}

static void lm_put(struct sim_lm *m, uint64_t index, uint64_t term, uint64_t v)
{
    if (2 * (m->n + 1) > m->cap)
        lm_grow(m);
    size_t i = lm_slot(m, index, term);
    while (m->k_index[i])
        i = (i + 1) & (m->cap - 1);
    m->k_index[i] = index;
    m->k_term[i] = term;
    m->v[i] = v;
    m->n++;
}

static bool lm_get(const struct sim_lm *m, uint64_t index, uint64_t term, uint64_t *v)
{
    if (!m->cap)
        return false;
    for (size_t i = lm_slot(m, index, term); m->k_index[i]; i = (i + 1) & (m->cap - 1))
        if (m->k_index[i] == index && m->k_term[i] == term) {
            *v = m->v[i];
            return true;
        }
    return false;
}

void sim_check_append(struct raft_sim *s, struct sim_node *n, uint64_t index, uint64_t term,
                      uint64_t hash)
{
    uint64_t v;
    if (!lm_get(&s->lm, index, term, &v))
        lm_put(&s->lm, index, term, hash);
    else if (v != hash)
        raft_sim_fail(s,
                      "log matching: %llu holds (%llu, term %llu) after a history another "
                      "server's entry with the same index and term does not share",
                      (unsigned long long)n->id, (unsigned long long)index,
                      (unsigned long long)term);
}

/* ---- Leader Completeness ---- */

static void leader_holds(struct raft_sim *s, const struct sim_node *l, uint64_t index,
                         uint64_t hash, uint64_t committed_in)
{
    bool known;
    uint64_t h = sim_mirror_hash(l, index, &known);
    if (known && h == hash)
        return;
    /* Covered by the leader's own snapshot: installed snapshots are checked on arrival. */
    if (!known && index < l->m_snap_index)
        return;
    raft_sim_fail(s,
                  "leader completeness: leader %llu of term %llu lacks entry %llu committed "
                  "in term %llu",
                  (unsigned long long)l->id, (unsigned long long)l->term, (unsigned long long)index,
                  (unsigned long long)committed_in);
}

void sim_check_role(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_update *u)
{
    n->role = u->role;
    n->term = u->term;
    if (u->role != KCP_RAFT_LEADER)
        return;
    grow_terms(s, u->term);
    if (s->leader_of[u->term] == n->id)
        return;
    if (s->leader_of[u->term]) {
        raft_sim_fail(s, "election safety: %llu and %llu both lead term %llu",
                      (unsigned long long)s->leader_of[u->term], (unsigned long long)n->id,
                      (unsigned long long)u->term);
        return;
    }
    s->leader_of[u->term] = n->id;
    s->stats.elections++;
    uint64_t best = 0, best_term = 0;
    for (uint64_t t = 1; t < u->term && t < s->cap_terms; t++)
        if (s->commit_of[t] > best) {
            best = s->commit_of[t];
            best_term = t;
        }
    if (best)
        leader_holds(s, n, best, s->commit_hash_of[best_term], best_term);
}

void sim_check_hard_state(struct raft_sim *s, struct sim_node *n,
                          const struct kcp_raft_hard_state *hs)
{
    if (hs->term < n->hs.term) {
        raft_sim_fail(s, "%llu: durable term moved back from %llu to %llu",
                      (unsigned long long)n->id, (unsigned long long)n->hs.term,
                      (unsigned long long)hs->term);
        return;
    }
    if (hs->term == n->hs.term && n->hs.vote && hs->vote != n->hs.vote) {
        raft_sim_fail(s, "%llu: voted for %llu and then %llu in term %llu",
                      (unsigned long long)n->id, (unsigned long long)n->hs.vote,
                      (unsigned long long)hs->vote, (unsigned long long)hs->term);
        return;
    }
}

/* The core's commit index (the stored one may lag it): what a leader of that term committed. */
void sim_check_commit(struct raft_sim *s, struct sim_node *n)
{
    struct kcp_raft_status st;
    kcp_raft_status(n->r, &st);
    if (st.commit > s->max_commit)
        s->max_commit = st.commit;
    if (st.role != KCP_RAFT_LEADER)
        return;
    grow_terms(s, st.term);
    if (st.commit <= s->commit_of[st.term])
        return;
    bool known;
    uint64_t hash = sim_mirror_hash(n, st.commit, &known);
    if (!known) {
        raft_sim_fail(s, "%llu: leader commits %llu beyond its log", (unsigned long long)n->id,
                      (unsigned long long)st.commit);
        return;
    }
    s->commit_of[st.term] = st.commit;
    s->commit_hash_of[st.term] = hash;
    for (uint64_t id = 1; id <= RAFT_SIM_MAX_NODES; id++) {
        const struct sim_node *l = &s->nodes[id];
        if (l->alive && l->role == KCP_RAFT_LEADER && l->term > st.term)
            leader_holds(s, l, st.commit, hash, st.term);
    }
}

/* ---- State Machine Safety and acknowledgements ---- */

static void acknowledge(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_entry *e)
{
    uint64_t value;
    if (e->type != KCP_RAFT_ENTRY_NORMAL || e->data.len < 8)
        return;
    memcpy(&value, e->data.base, 8);
    /* Every proposal this server made at that index is settled now, in order of proposing. */
    size_t j = 0;
    for (size_t i = 0; i < s->n_props; i++) {
        struct sim_prop *p = &s->props[i];
        if (p->node != n->id || p->incarnation != n->incarnation || p->index != e->index) {
            s->props[j++] = *p;
            continue;
        }
        /* The client hears "ok" only if its entry, with its term, is what was applied. */
        if (p->term == e->term && p->value == value) {
            SIM_GROW(s->acked, s->n_acked, s->cap_acked);
            s->acked[s->n_acked++] = (struct sim_acked){value, e->index};
            if (e->index > s->acked_max)
                s->acked_max = e->index;
            s->stats.acked++;
        }
    }
    s->n_props = j;
}

void sim_check_apply(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_entry *e)
{
    uint64_t i = e->index, value = n->sm[i];
    bool known;
    uint64_t hash = sim_mirror_hash(n, i, &known);
    grow_values(s, i);
    if (!s->values[i]) {
        s->values[i] = value;
        s->vhash[i] = known ? hash : 0;
    } else if (s->values[i] != value || (known && s->vhash[i] && s->vhash[i] != hash)) {
        raft_sim_fail(s, "state machine safety: %llu applied a different entry at %llu",
                      (unsigned long long)n->id, (unsigned long long)i);
        return;
    }
    if (known && !s->vhash[i])
        s->vhash[i] = hash;
    acknowledge(s, n, e);
}

void sim_check_snapshot(struct raft_sim *s, struct sim_node *n, const uint64_t *values,
                        uint64_t index, uint64_t hash)
{
    grow_values(s, index);
    for (uint64_t i = 1; i <= index; i++) {
        if (!s->values[i])
            s->values[i] = values[i];
        else if (s->values[i] != values[i]) {
            raft_sim_fail(s, "state machine safety: snapshot installed on %llu differs at %llu",
                          (unsigned long long)n->id, (unsigned long long)i);
            return;
        }
    }
    if (s->vhash[index] && s->vhash[index] != hash)
        raft_sim_fail(s, "state machine safety: snapshot on %llu has another history at %llu",
                      (unsigned long long)n->id, (unsigned long long)index);
    else
        s->vhash[index] = hash;
}

/* ---- reads ---- */

void sim_check_reads(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_update *u)
{
    for (size_t k = 0; k < u->n_reads && !s->failed; k++) {
        const struct kcp_raft_read_result *res = &u->reads[k];
        struct sim_read *rd = NULL;
        for (size_t i = 0; i < s->n_reads; i++)
            if (s->reads[i].token == res->token && s->reads[i].node == n->id)
                rd = &s->reads[i];
        if (!rd || rd->done) {
            raft_sim_fail(s, "%llu: read %llu answered %s", (unsigned long long)n->id,
                          (unsigned long long)res->token, rd ? "twice" : "but never asked");
            return;
        }
        rd->done = true;
        rd->index = res->index;
        rd->status = res->status;
        if (res->status)
            continue;
        s->stats.reads_ok++;
        if (res->index < rd->required)
            raft_sim_fail(s,
                          "linearizability: read %llu on %llu returned index %llu, below "
                          "write %llu acknowledged before it started",
                          (unsigned long long)res->token, (unsigned long long)n->id,
                          (unsigned long long)res->index, (unsigned long long)rd->required);
        else if (res->index > s->max_commit)
            raft_sim_fail(s, "read %llu on %llu returned index %llu, never committed",
                          (unsigned long long)res->token, (unsigned long long)n->id,
                          (unsigned long long)res->index);
    }
}

/* ---- the core against its mirror ---- */

void sim_check_core(struct raft_sim *s, struct sim_node *n)
{
    if (s->failed || !n->r)
        return;
    struct kcp_raft_status st;
    kcp_raft_status(n->r, &st);
    uint64_t mlast = n->m_n ? n->m_first + n->m_n - 1 : 0;
    if (mlast < n->m_snap_index)
        mlast = n->m_snap_index;
    uint64_t mterm = n->m_n && n->m_first + n->m_n - 1 >= n->m_snap_index ? n->m[n->m_n - 1].term
                                                                          : n->m_snap_term;
    if (st.last_index != mlast || st.last_term != mterm || st.applied != n->sm_applied ||
        st.commit < st.applied || st.snapshot_index != n->m_snap_index)
        raft_sim_fail(s,
                      "%llu: core (last %llu/%llu applied %llu snap %llu) and its updates "
                      "(last %llu/%llu applied %llu snap %llu) disagree",
                      (unsigned long long)n->id, (unsigned long long)st.last_index,
                      (unsigned long long)st.last_term, (unsigned long long)st.applied,
                      (unsigned long long)st.snapshot_index, (unsigned long long)mlast,
                      (unsigned long long)mterm, (unsigned long long)n->sm_applied,
                      (unsigned long long)n->m_snap_index);
}

void sim_check_free(struct raft_sim *s)
{
    free(s->leader_of);
    free(s->commit_of);
    free(s->commit_hash_of);
    free(s->values);
    free(s->vhash);
    free(s->lm.k_index);
    free(s->lm.k_term);
    free(s->lm.v);
}
