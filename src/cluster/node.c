/*
 * The Raft driver: feeds the core its events and carries out each update in the order raft.h
 * prescribes — hard state, log writes, messages, apply — on the daemon's loop.
 */
#include "cluster_int.h"

#include <stdlib.h>
#include <string.h>

uint64_t cluster_now(const struct kcp_cluster *c)
{
    return kcp_clock_now_ms(c->loop->clock);
}

static void deadline_on_fire(uv_timer_t *t);

/* A log write's completion, carried to the PERSISTED event. */
struct persist_ctx {
    struct kcp_cluster *c;
    uint64_t index, term;
};

static void log_on_persisted(struct cl_logstore *ls, int status, void *data)
{
    struct persist_ctx *p = data;
    struct kcp_cluster *c = p->c;
    if (status != 0) {
        if (!c->failed)
            kcp_log(KCP_LOG_ERROR, "cluster",
                    "writing the Raft log failed (%s): this server stops taking writes",
                    kcp_error_message(status));
        c->failed = true;
    } else if (!c->closing) {
        /*
         * The appends of one batch complete together, one callback each: the core hears only
         * of the last, once, from the kick (a later report implies the earlier ones, and one
         * that a truncation made stale is ignored). One step then sends one acknowledgement
         * (follower) or commits once (leader) for the whole batch.
         */
        c->persist_due = true;
        c->persist_index = p->index;
        c->persist_term = p->term;
        cluster_kick(c);
    }
    free(p);
}

/* A truncation alone: nothing to report to the core. */
static void log_on_truncated(struct cl_logstore *ls, int status, void *data)
{
}

/* ---- apply --------------------------------------------------------------------------- */

struct apply_req {
    struct kcp_store_req sreq;
    struct kcp_cluster *c;
    struct kcp_store_req *user;
};

static void apply_on_done(struct kcp_store_req *req, int status,
                          const struct kcp_store_result *result)
{
    struct apply_req *ar = req->data;
    struct kcp_cluster *c = ar->c;
    if (ar->user)
        ar->user->cb(ar->user, status, result);
    free(ar);
    cluster_reads_check(c);
}

/* Unlinks *pp (proposals are kept oldest first, so entries applied in order are found at once). */
static struct cl_prop *prop_unlink(struct kcp_cluster *c, struct cl_prop **pp)
{
    struct cl_prop *p = *pp;
    *pp = p->next;
    if (c->props_tail == &p->next)
        c->props_tail = pp;
    c->nprops--;
    return p;
}

static struct cl_prop *prop_take(struct kcp_cluster *c, uint64_t seq)
{
    for (struct cl_prop **pp = &c->props; *pp; pp = &(*pp)->next)
        if ((*pp)->seq == seq)
            return prop_unlink(c, pp);
    return NULL;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void apply_normal(struct kcp_cluster *c, const struct kcp_raft_entry *e)
{
    const unsigned char *d = e->data.base;
    size_t len = e->data.len;
    struct kcp_store_req *user = NULL;
    if (len >= CLUSTER_TAG_LEN && d[0] == 1) {
        if (le64(d + 1) == c->id) {
            struct cl_prop *p = prop_take(c, le64(d + 9));
            if (p) {
                user = p->req;
                free(p->payload);
                free(p);
            }
        }
        d += CLUSTER_TAG_LEN;
        len -= CLUSTER_TAG_LEN;
    }
    /* An untagged payload still consumes its index: the store fails it the same everywhere. */
    struct apply_req *ar = kcp_calloc(1, sizeof(*ar));
    ar->c = c;
    ar->user = user;
    ar->sreq.data = ar;
    ar->sreq.cb = apply_on_done;
    c->last_normal = e->index;
    int rc = kcp_store_apply_term(c->store, e->index, e->term, d, len, &ar->sreq);
    if (rc == 0)
        return;
    free(ar);
    if (rc == KCP_EEXIST) /* applied before a restart */
        return;
    kcp_log(KCP_LOG_ERROR, "cluster", "applying entry %llu: %s", (unsigned long long)e->index,
            kcp_error_message(rc));
    if (user)
        kcp_store_req_fail(user, rc);
}

static void apply(struct kcp_cluster *c, const struct kcp_raft_entry *e)
{
    if (e->index <= c->applied)
        return;
    if (e->type == KCP_RAFT_ENTRY_NORMAL)
        apply_normal(c, e);
    c->applied = e->index;
}

/* ---- the update ---------------------------------------------------------------------- */

static void role_changed(struct kcp_cluster *c, const struct kcp_raft_update *u)
{
    bool was_leader = c->role == KCP_RAFT_LEADER;
    bool leader_changed = c->leader_id != u->leader_id;
    c->role = u->role;
    c->leader_id = u->leader_id;
    c->term = u->term;
    if (leader_changed || was_leader != (u->role == KCP_RAFT_LEADER))
        kcp_log(KCP_LOG_INFO, "cluster", "%s in term %llu; leader %s", kcp_raft_role_name(u->role),
                (unsigned long long)u->term,
                u->leader_id == 0 ? "unknown"
                : u->leader_id == c->id
                    ? "this server"
                    : (cluster_peer_find(c, u->leader_id) ? cluster_peer_find(c, u->leader_id)->name
                                                          : "another server"));
    if (was_leader != (u->role == KCP_RAFT_LEADER)) {
        c->npromote = 0;
        if (c->leader_cb)
            c->leader_cb(c->leader_data, u->role == KCP_RAFT_LEADER);
    }
}

void cluster_roster_sync(struct kcp_cluster *c)
{
    struct kcp_raft_status st;
    kcp_raft_status(c->raft, &st);
    if (st.config)
        cluster_peers_sync(c, st.config);
}

static void carry_out(struct kcp_cluster *c, const struct kcp_raft_update *u)
{
    if (u->hard_state_changed) {
        int rc = cl_logstore_save_hard_state(c->log, &u->hard_state, u->hard_state_sync);
        if (rc != 0 && u->hard_state_sync) {
            /* A vote that is not durable must not leave: stop rather than risk two votes. */
            kcp_log(KCP_LOG_ERROR, "cluster", "saving the Raft term and vote: %s; stopping",
                    kcp_error_message(rc));
            c->failed = true;
            kcp_loop_stop(c->loop);
            return;
        }
    }
    /* Installation (step 2) must be durable before the messages: while it waits for the
     * store, nothing is flushed (see snapshot.c). */
    cluster_snapshot_update(c, u);
    if (u->n_entries || u->truncate_from) {
        struct persist_ctx *p = NULL;
        if (u->n_entries) {
            p = kcp_calloc(1, sizeof(*p));
            p->c = c;
            p->index = u->entries[u->n_entries - 1].index;
            p->term = u->entries[u->n_entries - 1].term;
        }
        int rc = cl_logstore_append(c->log, u->truncate_from, u->entries, u->n_entries,
                                    p ? log_on_persisted : log_on_truncated, p);
        if (rc != 0) {
            kcp_log(KCP_LOG_ERROR, "cluster", "queueing log entries: %s; writes stop",
                    kcp_error_message(rc));
            free(p);
            c->failed = true;
        }
    }
    for (size_t i = 0; i < u->n_msgs; i++)
        cluster_peer_send(c, &u->msgs[i]);
    cluster_peers_flush(c);
    bool config = false;
    for (size_t i = 0; i < u->n_committed; i++) {
        apply(c, &u->committed[i]);
        config |= u->committed[i].type == KCP_RAFT_ENTRY_CONFIG;
    }
    for (size_t i = 0; i < u->n_reads; i++)
        for (struct cl_read *r = c->reads; r; r = r->next)
            if (r->token == u->reads[i].token && !r->done) {
                if (u->reads[i].status != 0) {
                    r->asked = false; /* ask again (new leader) until the deadline */
                } else {
                    r->has_index = true;
                    r->index = u->reads[i].index;
                }
            }
    if (u->role_changed || c->leader_id != u->leader_id)
        role_changed(c, u);
    c->term = u->term; /* write barriers compare it (kick_on_idle) */
    if (u->role_changed || u->n_entries || config)
        cluster_roster_sync(c);
    for (size_t i = 0; i < u->n_caught_up && c->npromote < KCP_RAFT_MAX_SERVERS; i++)
        c->promote[c->npromote++] = u->caught_up[i];
    if (u->next_deadline_ms != UINT64_MAX) {
        uint64_t now = cluster_now(c);
        uint64_t wait = u->next_deadline_ms > now ? u->next_deadline_ms - now : 0;
        uv_timer_start(&c->deadline, deadline_on_fire, wait, 0);
    }
    cluster_reads_check(c);
}

int cluster_step(struct kcp_cluster *c, struct kcp_raft_event *ev)
{
    struct kcp_raft_update u;
    if (c->stepping || c->closing) /* a callback of the update reached back: never re-enter */
        return KCP_EUNAVAILABLE;
    ev->now_ms = cluster_now(c);
    c->stepping = true;
    memset(&u, 0, sizeof(u));
    int rc = kcp_raft_step(c->raft, ev, &u);
    if (rc != 0) {
        /* Refused: only the leader hint and the deadline are meaningful. */
        if (u.next_deadline_ms && u.next_deadline_ms != UINT64_MAX) {
            uint64_t now = cluster_now(c);
            uv_timer_start(&c->deadline, deadline_on_fire,
                           u.next_deadline_ms > now ? u.next_deadline_ms - now : 0, 0);
        }
        c->stepping = false;
        return rc;
    }
    carry_out(c, &u);
    c->stepping = false;
    /* Answers to this update that are events themselves (snapshot chunks read, a snapshot
     * staged) are stepped now, outside it. */
    if (!c->deferring) {
        c->deferring = true;
        cluster_snapshot_deferred(c);
        c->deferring = false;
    }
    return 0;
}

static void deadline_on_fire(uv_timer_t *t)
{
    struct kcp_cluster *c = t->data;
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_TICK};
    cluster_step(c, &ev);
}

/* ---- proposals ----------------------------------------------------------------------- */

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

int cluster_propose_payload(struct kcp_cluster *c, const void *payload, size_t len)
{
    if (c->failed)
        return KCP_EUNAVAILABLE;
    struct kcp_raft_buf b = {kcp_malloc(len ? len : 1), len};
    memcpy(b.base, payload, len);
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_PROPOSE};
    ev.propose.payloads = &b;
    ev.propose.n = 1;
    int rc = cluster_step(c, &ev);
    if (rc != 0)
        free(b.base); /* on an error the payload stays with us */
    return rc;
}

/* Hands a queued proposal to the leader: ourselves or by forwarding. 0 when handed. */
static int prop_send(struct kcp_cluster *c, struct cl_prop *p)
{
    int rc;
    if (c->leader_id == 0)
        return KCP_EUNAVAILABLE;
    if (c->leader_id == c->id) {
        rc = cluster_propose_payload(c, p->payload, p->len);
    } else {
        rc = cluster_peer_forward(c, c->leader_id, p->seq, p->payload, p->len);
        if (rc == 0) {
            p->forwarded = true;
            p->via = c->leader_id;
        }
    }
    if (rc == 0) {
        free(p->payload);
        p->payload = NULL;
    }
    return rc;
}

static int cluster_propose(struct kcp_store_proposer *sp, struct kcp_store *s, const void *entry,
                           size_t len, struct kcp_store_req *req)
{
    struct kcp_cluster *c = sp->data;
    if (c->failed)
        return KCP_EUNAVAILABLE;
    if (c->closing)
        return KCP_ECLOSED;
    /* Memory is bounded: writes waiting for Raft are held in full (429 past it). */
    if (c->nprops >= CLUSTER_MAX_PROPOSALS)
        return KCP_ETOOMANY;
    struct cl_prop *p = kcp_calloc(1, sizeof(*p));
    p->seq = ++c->next_seq;
    p->req = req;
    p->deadline_ms = cluster_now(c) + CLUSTER_PROPOSE_TIMEOUT_MS;
    p->len = CLUSTER_TAG_LEN + len;
    p->payload = kcp_malloc(p->len);
    unsigned char *d = p->payload;
    d[0] = 1;
    put_le64(d + 1, c->id);
    put_le64(d + 9, p->seq);
    memcpy(d + CLUSTER_TAG_LEN, entry, len);
    /* Queued first: if the entry commits within this very step, apply finds its client. */
    *c->props_tail = p;
    c->props_tail = &p->next;
    c->nprops++;
    int rc = prop_send(c, p);
    /*
     * Refused by this server while it leads (a leadership transfer, a failed log): the client
     * hears 503 now rather than the write waiting for the next leader. A write built on state
     * its leader read without confirming its leadership (kcp_cluster_write_barrier) must be
     * appended by that leader in that term or not at all: only then does its committing prove
     * that no write acknowledged elsewhere was missing from what it read.
     */
    if (rc != 0 && (rc != KCP_EUNAVAILABLE || c->leader_id == c->id)) {
        prop_take(c, p->seq);
        free(p->payload);
        free(p);
        return rc;
    }
    /* No leader just now: it waits (an election takes about a second) until its deadline. */
    return 0;
}

void cluster_proposer_init(struct kcp_cluster *c)
{
    c->proposer.propose = cluster_propose;
    c->proposer.data = c;
    kcp_store_set_proposer(c->store, &c->proposer);
    /* Entries reach the store only once durable in this log (apply stops at min(commit,
     * persisted)): the store need not sync each one again. Snapshots and compaction wait for
     * kcp_store_synced (snapshot.c), so the log always holds what LMDB may lack. */
    kcp_store_set_deferred(c->store, CLUSTER_STORE_SYNC_MS);
}

void cluster_props_retry(struct kcp_cluster *c)
{
    for (struct cl_prop *p = c->props; p && c->leader_id; p = p->next)
        if (p->payload)
            prop_send(c, p);
}

static void props_fail_if(struct kcp_cluster *c, int status, bool (*match)(struct cl_prop *, uint64_t),
                          uint64_t arg)
{
    for (struct cl_prop **pp = &c->props; *pp;) {
        struct cl_prop *p = *pp;
        if (!match(p, arg)) {
            pp = &p->next;
            continue;
        }
        prop_unlink(c, pp);
        struct kcp_store_req *req = p->req;
        free(p->payload);
        free(p);
        kcp_store_req_fail(req, status);
    }
}

static bool match_via(struct cl_prop *p, uint64_t peer)
{
    return p->forwarded && p->via == peer && !p->payload;
}
static bool match_seq(struct cl_prop *p, uint64_t seq)
{
    return p->seq == seq;
}
static bool match_expired(struct cl_prop *p, uint64_t now)
{
    return p->deadline_ms <= now;
}
static bool match_all(struct cl_prop *p, uint64_t unused)
{
    return true;
}

/*
 * The forwarded write was never accepted by the leader (connection lost before the answer, or
 * it was not the leader any more): the client hears 503 and may retry.
 */
void cluster_props_fail_via(struct kcp_cluster *c, uint64_t peer, int status)
{
    props_fail_if(c, status, match_via, peer);
}

void cluster_props_fail_seq(struct kcp_cluster *c, uint64_t seq, int status)
{
    props_fail_if(c, status, match_seq, seq);
}

void cluster_props_expire(struct kcp_cluster *c, uint64_t now)
{
    props_fail_if(c, KCP_ETIMEOUT, match_expired, now);
}

void cluster_props_fail_all(struct kcp_cluster *c, int status)
{
    props_fail_if(c, status, match_all, 0);
}

/* ---- reads --------------------------------------------------------------------------- */

static struct cl_read *read_new(struct kcp_cluster *c, kcp_cluster_barrier_cb cb, void *data)
{
    struct cl_read *r = kcp_calloc(1, sizeof(*r));
    r->token = ++c->next_token;
    r->cb = cb;
    r->data = data;
    r->deadline_ms = cluster_now(c) + CLUSTER_READ_TIMEOUT_MS;
    r->next = c->reads;
    c->reads = r;
    return r;
}

/*
 * A leader's commit index covers every entry committed anywhere once the first entry of its
 * own term is committed (before that, entries of earlier terms may be committed without its
 * knowing: ReadIndex waits for the same thing, §6.4). The entry at the commit index being of
 * the current term says exactly that.
 */
static bool leader_commit(struct kcp_cluster *c, uint64_t *out)
{
    struct kcp_raft_status st;
    uint64_t term;
    if (c->role != KCP_RAFT_LEADER || c->transferring || c->closing)
        return false;
    kcp_raft_status(c->raft, &st);
    if (st.role != KCP_RAFT_LEADER || kcp_raft_term_at(c->raft, st.commit, &term) != 0 ||
        term != st.term)
        return false;
    *out = st.commit;
    return true;
}

void kcp_cluster_write_barrier(struct kcp_cluster *c, kcp_cluster_barrier_cb cb, void *data)
{
    uint64_t commit;
    if (!leader_commit(c, &commit)) {
        kcp_cluster_barrier(c, cb, data);
        return;
    }
    struct cl_read *r = read_new(c, cb, data);
    r->local = true;
    r->term = c->term;
    r->has_index = true;
    r->index = commit;
    cluster_reads_check(c); /* usually done at once: the store has published up to commit */
    cluster_kick(c);
}

void kcp_cluster_barrier(struct kcp_cluster *c, kcp_cluster_barrier_cb cb, void *data)
{
    struct cl_read *r = read_new(c, cb, data);
    if (c->closing) {
        r->done = true;
        r->status = KCP_ECLOSED;
        cluster_kick(c);
        return;
    }
    cluster_reads_retry(c);
    cluster_kick(c);
}

void cluster_reads_retry(struct kcp_cluster *c)
{
    for (struct cl_read *r = c->reads; r; r = r->next) {
        if (r->done || r->asked || r->has_index || c->leader_id == 0)
            continue;
        struct kcp_raft_event ev = {.type = KCP_RAFT_EV_READ};
        ev.read.token = r->token;
        r->asked = true; /* before the step: its result may come within it */
        if (cluster_step(c, &ev) != 0)
            r->asked = false;
    }
}

/* Marks reads done whose index the store has reached, and those past their deadline. */
void cluster_reads_check(struct kcp_cluster *c)
{
    uint64_t now = 0;
    bool any = false;
    for (struct cl_read *r = c->reads; r; r = r->next) {
        if (r->done)
            continue;
        if (r->has_index && c->applied >= r->index) {
            /* Everything up to index was handed to the store; the last NORMAL entry among
             * them must be durable there too. */
            if (!r->need_rev)
                r->need_rev = c->last_normal ? c->last_normal : 1;
            if (kcp_store_revision(c->store) >= r->need_rev || c->last_normal == 0) {
                r->done = true;
                r->status = r->local ? KCP_CLUSTER_BARRIER_LOCAL : 0;
                any = true;
                continue;
            }
        }
        if (!now)
            now = cluster_now(c);
        if (r->deadline_ms <= now) {
            r->done = true;
            r->status = c->leader_id ? KCP_ETIMEOUT : KCP_EUNAVAILABLE;
            any = true;
        }
    }
    if (any)
        cluster_kick(c);
}

static void kick_on_idle(uv_idle_t *idle)
{
    struct kcp_cluster *c = idle->data;
    uv_idle_stop(idle);
    c->kick_active = false;
    if (c->persist_due && !c->closing) {
        struct kcp_raft_event ev = {.type = KCP_RAFT_EV_PERSISTED};
        c->persist_due = false;
        ev.persisted.index = c->persist_index;
        ev.persisted.term = c->persist_term;
        cluster_step(c, &ev);
    }
    /*
     * A write barrier answered from this leader's commit index holds only while it still leads
     * in the same term: the write it lets through proposes at once, in that term, and if the
     * term is gone it must not go ahead on what was read (it could commit under a later
     * leader without proving anything). It becomes a full ReadIndex barrier instead.
     */
    bool reask = false;
    for (struct cl_read *r = c->reads; r; r = r->next)
        if (r->done && r->local && r->status == KCP_CLUSTER_BARRIER_LOCAL &&
            (c->role != KCP_RAFT_LEADER || c->term != r->term)) {
            r->done = r->local = r->has_index = r->asked = false;
            r->need_rev = 0;
            reask = true;
        }
    if (reask && !c->closing)
        cluster_reads_retry(c);
    /* Unlink first: a callback may start another barrier. */
    struct cl_read *done = NULL;
    for (struct cl_read **pp = &c->reads; *pp;) {
        struct cl_read *r = *pp;
        if (r->done) {
            *pp = r->next;
            r->next = done;
            done = r;
        } else {
            pp = &r->next;
        }
    }
    while (done) {
        struct cl_read *r = done;
        done = r->next;
        r->cb(r->data, r->status);
        free(r);
    }
}

void cluster_kick(struct kcp_cluster *c)
{
    if (c->kick_active || uv_is_closing((uv_handle_t *)&c->kick))
        return;
    c->kick_active = true;
    uv_idle_start(&c->kick, kick_on_idle);
}
