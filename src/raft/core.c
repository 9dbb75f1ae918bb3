/* Raft core: lifecycle, the role state machine, event dispatch and assembly of the update. */
#include "raft_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Allowed role transitions, checked on every move (STYLE.md, dqlite's sm). Rows are "from".
 * A leader only ever becomes a follower; only a candidate becomes leader. Follower to
 * follower covers a new term or a new leader; a candidate may start over as a pre-candidate
 * when its election times out (§9.6).
 */
/* clang-format off */
static const bool role_allowed[4][4] = {
    /* from \ to              FOLLOWER  PRECANDIDATE  CANDIDATE  LEADER */
    [KCP_RAFT_FOLLOWER]     = {true,     true,         true,      false},
    [KCP_RAFT_PRECANDIDATE] = {true,     true,         true,      false},
    [KCP_RAFT_CANDIDATE]    = {true,     true,         true,      true},
    [KCP_RAFT_LEADER]       = {true,     false,        false,     false},
};
/* clang-format on */

const char *kcp_raft_role_name(enum kcp_raft_role role)
{
    switch (role) {
    case KCP_RAFT_FOLLOWER:
        return "follower";
    case KCP_RAFT_PRECANDIDATE:
        return "precandidate";
    case KCP_RAFT_CANDIDATE:
        return "candidate";
    case KCP_RAFT_LEADER:
        return "leader";
    }
    return "unknown";
}

void raft_become(struct kcp_raft *r, int role)
{
    /* Checked in release builds too: a core in an impossible role must not go on. */
    bool ok = r->role == RAFT_ROLE_NONE ? role == KCP_RAFT_FOLLOWER : role_allowed[r->role][role];
    if (!ok) {
        kcp_log(KCP_LOG_ERROR, "raft", "%llu: illegal transition %d -> %d",
                (unsigned long long)r->id, r->role, role);
        abort();
    }
    if (r->role != role)
        KCP_LOG_V(3, "raft", "%llu: %s -> %s in term %llu", (unsigned long long)r->id,
                  r->role == RAFT_ROLE_NONE ? "none" : kcp_raft_role_name(r->role),
                  kcp_raft_role_name(role), (unsigned long long)r->term);
    r->role = role;
}

void raft_become_follower(struct kcp_raft *r, uint64_t term, uint64_t leader)
{
    bool new_term = term > r->term;
    bool changed = new_term || leader != r->leader_id || r->role != KCP_RAFT_FOLLOWER;
    if (new_term) {
        r->term = term;
        r->vote = 0;
    }
    if (changed)
        raft_reads_fail_all(r, KCP_EUNAVAILABLE);
    if (r->role == KCP_RAFT_LEADER) {
        raft_progress_free(r);
        r->transfer_target = 0;
    }
    raft_become(r, KCP_RAFT_FOLLOWER);
    if (new_term || leader != r->leader_id) {
        /* Acknowledgements are only meaningful to the leader whose messages showed a match. */
        r->ack_index = 0;
        r->ack_sent = 0;
    }
    r->leader_id = leader;
    if (leader)
        r->leader_seen = r->now;
    raft_election_reset_timer(r);
}

/* splitmix64: small, fast and good enough for jitter; seeded once, never from the clock. */
uint64_t raft_random(struct kcp_raft *r, uint64_t lo, uint64_t hi)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return hi > lo ? lo + z % (hi - lo) : lo;
}

void raft_defer_free(struct kcp_raft *r, void *p)
{
    if (!p)
        return;
    if (r->n_deferred == r->cap_deferred) {
        r->cap_deferred = r->cap_deferred ? 2 * r->cap_deferred : 64;
        r->deferred = kcp_realloc(r->deferred, r->cap_deferred * sizeof(*r->deferred));
    }
    r->deferred[r->n_deferred++] = p;
}

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? 2 * (cap) : 16;                                                        \
            (arr) = kcp_realloc((arr), (cap) * sizeof(*(arr)));                                    \
        }                                                                                          \
    } while (0)

struct kcp_raft_msg *raft_msg(struct kcp_raft *r, enum kcp_raft_msg_type type, uint64_t to)
{
    struct raft_out *o = &r->out;
    if (o->n_msgs == o->cap_msgs) {
        GROW(o->msgs, o->n_msgs, o->cap_msgs);
        o->msg_entry_off = kcp_realloc(o->msg_entry_off, o->cap_msgs * sizeof(size_t));
    }
    struct kcp_raft_msg *m = &o->msgs[o->n_msgs];
    memset(m, 0, sizeof(*m));
    o->msg_entry_off[o->n_msgs] = o->n_msg_entries;
    o->n_msgs++;
    m->type = type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

void raft_out_entry(struct kcp_raft *r, const struct kcp_raft_entry *e)
{
    struct raft_out *o = &r->out;
    /* A truncation after earlier appends of the same step replaces them. */
    while (o->n_entries && o->entries[o->n_entries - 1].index >= e->index)
        o->n_entries--;
    GROW(o->entries, o->n_entries, o->cap_entries);
    o->entries[o->n_entries++] = *e;
}

void raft_out_truncate(struct kcp_raft *r, uint64_t from)
{
    struct raft_out *o = &r->out;
    while (o->n_entries && o->entries[o->n_entries - 1].index >= from)
        o->n_entries--;
    /* Entries written earlier in this step were never reported, so this only moves down. */
    if (!o->truncate_from || from < o->truncate_from)
        o->truncate_from = from;
}

void raft_out_read(struct kcp_raft *r, uint64_t token, uint64_t index, int status)
{
    struct raft_out *o = &r->out;
    GROW(o->reads, o->n_reads, o->cap_reads);
    o->reads[o->n_reads++] = (struct kcp_raft_read_result){token, index, status};
}

void raft_out_caught_up(struct kcp_raft *r, uint64_t id)
{
    struct raft_out *o = &r->out;
    GROW(o->caught_up, o->n_caught_up, o->cap_caught_up);
    o->caught_up[o->n_caught_up++] = id;
}

/*
 * §4.2.3: a leader was heard from within an election timeout. A leader is in its own lease:
 * with CheckQuorum it resigns by itself once it stops hearing from a majority.
 */
bool raft_in_lease(const struct kcp_raft *r)
{
    if (r->role == KCP_RAFT_LEADER)
        return true;
    return r->leader_id != 0 && r->now < r->leader_seen + r->o.election_timeout_ms;
}

size_t raft_voters(const struct kcp_raft *r)
{
    size_t n = 0;
    for (uint32_t i = 0; i < r->config.n; i++)
        n += r->config.servers[i].role == KCP_RAFT_VOTER;
    return n;
}

bool raft_is_voter(const struct kcp_raft *r, uint64_t id)
{
    const struct kcp_raft_server *s = kcp_raft_config_find(&r->config, id);
    return s && s->role == KCP_RAFT_VOTER;
}

void kcp_raft_options_default(struct kcp_raft_options *out, uint64_t id)
{
    memset(out, 0, sizeof(*out));
    out->id = id;
    out->seed = id;
    out->election_timeout_ms = 1000;
    out->heartbeat_ms = 100;
    out->pre_vote = true;
    out->check_quorum = true;
    out->max_inflight = 64;
    out->max_batch_entries = 256;
    out->max_batch_bytes = 1 << 20;
    out->snapshot_chunk_bytes = 1 << 20;
    out->compact_trailing = 1024;
    out->catchup_margin = 256;
    out->read_timeout_ms = 2000;
    out->max_pending_reads = 4096;
}

int kcp_raft_new(struct kcp_raft **out, const struct kcp_raft_options *opts)
{
    if (!opts->id || !opts->election_timeout_ms || !opts->heartbeat_ms ||
        opts->heartbeat_ms >= opts->election_timeout_ms || !opts->max_inflight ||
        !opts->max_batch_entries || !opts->max_batch_bytes || !opts->snapshot_chunk_bytes ||
        !opts->read_timeout_ms || !opts->max_pending_reads)
        return KCP_EINVAL;
    struct kcp_raft *r = kcp_calloc(1, sizeof(*r));
    r->o = *opts;
    r->id = opts->id;
    r->rng = opts->seed ^ (opts->id * 0x2545f4914f6cdd1dULL);
    r->role = RAFT_ROLE_NONE;
    r->role_reported = RAFT_ROLE_NONE;
    raft_log_init(&r->log);
    *out = r;
    return 0;
}

static void release_deferred(struct kcp_raft *r)
{
    for (size_t i = 0; i < r->n_deferred; i++)
        free(r->deferred[i]);
    r->n_deferred = 0;
}

void kcp_raft_free(struct kcp_raft *r)
{
    if (!r)
        return;
    raft_progress_free(r);
    raft_log_close(r);
    release_deferred(r);
    free(r->deferred);
    free(r->reads);
    struct raft_out *o = &r->out;
    free(o->entries);
    free(o->msgs);
    free(o->msg_entry_off);
    free(o->msg_entries);
    free(o->committed);
    free(o->chunks);
    free(o->sreads);
    free(o->reads);
    free(o->caught_up);
    free(r);
}

/* START: adopt what the disk holds. Validation comes first so that a refusal changes nothing. */
static int start(struct kcp_raft *r, const struct kcp_raft_event *ev)
{
    const struct kcp_raft_snapshot_meta *snap = ev->start.snapshot;
    const struct kcp_raft_entry *e = ev->start.entries;
    size_t n = ev->start.n_entries;
    uint64_t snap_index = snap ? snap->index : 0;
    if (r->role != RAFT_ROLE_NONE)
        return KCP_EINVAL;
    if (snap && (!snap->index || !snap->term || !snap->config || snap->index >= RAFT_LIMIT))
        return KCP_EINVAL;
    if (ev->start.hard_state.term >= RAFT_LIMIT || (n && e[0].index >= RAFT_LIMIT - n))
        return KCP_EINVAL;
    if (n && (e[0].index == 0 || e[0].index > snap_index + 1))
        return KCP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if ((i && (e[i].index != e[i - 1].index + 1 || e[i].term < e[i - 1].term)) || !e[i].term ||
            e[i].type < KCP_RAFT_ENTRY_NORMAL || e[i].type > KCP_RAFT_ENTRY_CONFIG)
            return KCP_EINVAL;
        if (e[i].type == KCP_RAFT_ENTRY_CONFIG) {
            struct kcp_raft_config c;
            if (kcp_raft_config_decode(&c, e[i].data.base, e[i].data.len) < 0)
                return KCP_EINVAL;
        }
        if (snap && e[i].index == snap->index && e[i].term != snap->term)
            return KCP_EINVAL;
    }
    uint64_t last = n ? e[n - 1].index : snap_index;
    if (n && last < snap_index)
        return KCP_EINVAL;
    if (ev->start.applied < snap_index || ev->start.applied > last)
        return KCP_EINVAL;

    if (snap) {
        r->log.snap_index = snap->index;
        r->log.snap_term = snap->term;
        r->snap_config = *snap->config;
        r->log.first = snap->index + 1;
    }
    if (n)
        r->log.first = e[0].index;
    for (size_t i = 0; i < n; i++) {
        struct kcp_raft_entry c = e[i];
        c.data.base = NULL;
        if (e[i].data.len) {
            c.data.base = kcp_malloc(e[i].data.len);
            memcpy(c.data.base, e[i].data.base, e[i].data.len);
        }
        raft_log_append(&r->log, &c);
    }
    raft_config_refresh(r);
    r->term = ev->start.hard_state.term;
    if (r->term < raft_log_last_term(&r->log))
        r->term = raft_log_last_term(&r->log);
    r->vote = ev->start.hard_state.vote;
    r->applied = ev->start.applied;
    r->persisted = last;
    /* The stored commit is a hint written lazily; it can run ahead of what reached the disk. */
    r->commit = ev->start.hard_state.commit;
    if (r->commit < r->applied)
        r->commit = r->applied;
    if (r->commit > last)
        r->commit = last;
    r->hs_reported = (struct kcp_raft_hard_state){r->term, r->vote, r->commit};
    /* (commit <= last == persisted here, so this matches what finish() computes.) */
    raft_become(r, KCP_RAFT_FOLLOWER);
    r->role_reported = KCP_RAFT_FOLLOWER;
    raft_election_reset_timer(r);
    /* A lone voter need not wait out a timeout to lead itself. */
    if (raft_voters(r) == 1 && raft_is_voter(r, r->id))
        raft_election_start(r, false, false);
    return 0;
}

static void tick(struct kcp_raft *r)
{
    if (r->role == KCP_RAFT_LEADER)
        raft_replicate_tick(r);
    else
        raft_election_tick(r);
    raft_reads_tick(r);
}

static bool is_leader_msg(enum kcp_raft_msg_type t)
{
    return t == KCP_RAFT_MSG_APPEND || t == KCP_RAFT_MSG_HEARTBEAT || t == KCP_RAFT_MSG_SNAPSHOT;
}

/* Term rules common to every message (§3.3), then dispatch by type. */
static void receive(struct kcp_raft *r, const struct kcp_raft_msg *m)
{
    if (m->to != r->id || !m->from || m->from == r->id || !m->term || m->term >= RAFT_LIMIT ||
        m->type < 1 || m->type > KCP_RAFT_MSG_TYPE_MAX)
        return;
    if ((m->type == KCP_RAFT_MSG_APPEND &&
         (m->append.prev_index >= RAFT_LIMIT || m->append.n_entries >= RAFT_LIMIT ||
          m->append.prev_index + m->append.n_entries >= RAFT_LIMIT)) ||
        (m->type == KCP_RAFT_MSG_SNAPSHOT &&
         (m->snapshot.index >= RAFT_LIMIT || m->snapshot.offset >= RAFT_LIMIT)))
        return;
    if (m->term > r->term) {
        bool vote_req = m->type == KCP_RAFT_MSG_VOTE || m->type == KCP_RAFT_MSG_PREVOTE;
        /* §4.2.3: while a leader is heard from, vote requests do not disturb us. */
        if (vote_req && !m->vote.transfer &&
            (m->type == KCP_RAFT_MSG_PREVOTE ? true : r->o.check_quorum) && raft_in_lease(r))
            return;
        if (m->type == KCP_RAFT_MSG_PREVOTE ||
            (m->type == KCP_RAFT_MSG_PREVOTE_RESP && m->vote_resp.granted)) {
            /* A PreVote round runs at a future term without anyone adopting it (§9.6). */
        } else {
            raft_become_follower(r, m->term, is_leader_msg(m->type) ? m->from : 0);
        }
    } else if (m->term < r->term) {
        /* Tell a stale leader or candidate about the new term so that it steps down. */
        if (is_leader_msg(m->type)) {
            struct kcp_raft_msg *resp = raft_msg(r, KCP_RAFT_MSG_APPEND_RESP, m->from);
            resp->append_resp.reject = true;
        } else if (m->type == KCP_RAFT_MSG_PREVOTE || m->type == KCP_RAFT_MSG_VOTE) {
            raft_msg(r,
                     m->type == KCP_RAFT_MSG_VOTE ? KCP_RAFT_MSG_VOTE_RESP
                                                  : KCP_RAFT_MSG_PREVOTE_RESP,
                     m->from);
        }
        return;
    }

    if (is_leader_msg(m->type)) {
        if (r->role == KCP_RAFT_LEADER) {
            kcp_log(KCP_LOG_ERROR, "raft", "%llu: two leaders in term %llu (%llu)",
                    (unsigned long long)r->id, (unsigned long long)r->term,
                    (unsigned long long)m->from);
            return;
        }
        if (r->role != KCP_RAFT_FOLLOWER || r->leader_id != m->from)
            raft_become_follower(r, m->term, m->from);
        r->leader_seen = r->now;
        raft_election_reset_timer(r);
    }
    switch (m->type) {
    case KCP_RAFT_MSG_APPEND:
        raft_recv_append(r, m);
        break;
    case KCP_RAFT_MSG_HEARTBEAT:
        raft_recv_heartbeat(r, m);
        break;
    case KCP_RAFT_MSG_SNAPSHOT:
        raft_recv_snapshot(r, m);
        break;
    case KCP_RAFT_MSG_APPEND_RESP:
        raft_recv_append_resp(r, m);
        break;
    case KCP_RAFT_MSG_HEARTBEAT_RESP:
        raft_recv_heartbeat_resp(r, m);
        break;
    case KCP_RAFT_MSG_SNAPSHOT_RESP:
        raft_recv_snapshot_resp(r, m);
        break;
    case KCP_RAFT_MSG_VOTE:
    case KCP_RAFT_MSG_PREVOTE:
        raft_election_recv_vote(r, m);
        break;
    case KCP_RAFT_MSG_VOTE_RESP:
    case KCP_RAFT_MSG_PREVOTE_RESP:
        raft_election_recv_vote_resp(r, m);
        break;
    case KCP_RAFT_MSG_TIMEOUT_NOW:
        raft_election_recv_timeout_now(r, m);
        break;
    case KCP_RAFT_MSG_READ_INDEX:
        raft_recv_read_index(r, m);
        break;
    case KCP_RAFT_MSG_READ_INDEX_RESP:
        raft_recv_read_index_resp(r, m);
        break;
    }
}

static uint64_t next_deadline(const struct kcp_raft *r)
{
    uint64_t d = UINT64_MAX;
    if (r->role == RAFT_ROLE_NONE)
        return d;
    if (r->role == KCP_RAFT_LEADER) {
        d = r->heartbeat_deadline;
        if (r->o.check_quorum && r->quorum_deadline < d)
            d = r->quorum_deadline;
        if (r->transfer_target && r->transfer_deadline < d)
            d = r->transfer_deadline;
    } else {
        d = r->election_deadline;
    }
    uint64_t rd = raft_reads_deadline(r);
    return rd < d ? rd : d;
}

static void reset_out(struct kcp_raft *r, struct kcp_raft_update *out)
{
    struct raft_out *o = &r->out;
    o->n_entries = o->n_msgs = o->n_msg_entries = 0;
    o->n_chunks = o->n_sreads = o->n_reads = o->n_caught_up = 0;
    o->truncate_from = 0;
    o->proposed_index = 0;
    o->install = o->compacted = o->read_broadcast = false;
    memset(out, 0, sizeof(*out));
}

static void finish(struct kcp_raft *r, struct kcp_raft_update *out)
{
    struct raft_out *o = &r->out;
    raft_notify_commit(r);
    if (r->role == KCP_RAFT_LEADER && o->read_broadcast)
        raft_broadcast_heartbeat(r, r->read_seq);
    raft_reads_advance(r);
    raft_collect_committed(r, out);

    /*
     * The stored commit never runs past what is durable in *this* log: a truncation still on
     * its way to the disk would otherwise leave a restart trusting stale entries below it.
     */
    struct kcp_raft_hard_state hs = {r->term, r->vote,
                                     r->commit < r->persisted ? r->commit : r->persisted};
    if (memcmp(&hs, &r->hs_reported, sizeof(hs)) != 0) {
        out->hard_state_changed = true;
        out->hard_state_sync = hs.term != r->hs_reported.term || hs.vote != r->hs_reported.vote;
        out->hard_state = hs;
        r->hs_reported = hs;
    }
    if (r->role != r->role_reported || r->leader_id != r->leader_reported) {
        out->role_changed = true;
        r->role_reported = r->role;
        r->leader_reported = r->leader_id;
    }
    out->role = r->role;
    out->leader_id = r->leader_id;
    out->term = r->term;

    out->install = o->install;
    out->install_meta = o->install_meta;
    out->truncate_from = o->truncate_from;
    out->entries = o->entries;
    out->n_entries = o->n_entries;
    for (size_t i = 0; i < o->n_msgs; i++)
        if (o->msgs[i].type == KCP_RAFT_MSG_APPEND)
            o->msgs[i].append.entries =
                o->msgs[i].append.n_entries ? o->msg_entries + o->msg_entry_off[i] : NULL;
    out->msgs = o->msgs;
    out->n_msgs = o->n_msgs;
    out->chunks = o->chunks;
    out->n_chunks = o->n_chunks;
    out->snapshot_reads = o->sreads;
    out->n_snapshot_reads = o->n_sreads;
    out->compacted = o->compacted;
    if (o->compacted) {
        out->snapshot =
            (struct kcp_raft_snapshot_meta){r->log.snap_index, r->log.snap_term, &r->snap_config};
        out->log_first = r->log.first;
    }
    out->reads = o->reads;
    out->n_reads = o->n_reads;
    if (o->proposed_index) {
        out->proposed_index = o->proposed_index;
        out->proposed_term = r->term;
    }
    out->caught_up = o->caught_up;
    out->n_caught_up = o->n_caught_up;
    out->next_deadline_ms = next_deadline(r);
}

int kcp_raft_step(struct kcp_raft *r, const struct kcp_raft_event *ev, struct kcp_raft_update *out)
{
    int rc = 0;
    release_deferred(r);
    reset_out(r, out);
    if (ev->now_ms > r->now)
        r->now = ev->now_ms;
    if (r->role == RAFT_ROLE_NONE && ev->type != KCP_RAFT_EV_START) {
        rc = KCP_EINVAL;
        goto done;
    }
    switch (ev->type) {
    case KCP_RAFT_EV_START:
        rc = start(r, ev);
        break;
    case KCP_RAFT_EV_TICK:
        tick(r);
        break;
    case KCP_RAFT_EV_RECEIVE:
        if (!ev->receive.msg) {
            rc = KCP_EINVAL;
            break;
        }
        receive(r, ev->receive.msg);
        break;
    case KCP_RAFT_EV_PERSISTED:
        raft_persisted(r, ev->persisted.index, ev->persisted.term);
        break;
    case KCP_RAFT_EV_SNAPSHOT_PERSISTED:
        raft_snapshot_persisted(r, ev->persisted.index, ev->persisted.term);
        break;
    case KCP_RAFT_EV_PROPOSE:
        rc = raft_propose(r, ev);
        break;
    case KCP_RAFT_EV_CHANGE:
        rc = raft_change(r, ev);
        break;
    case KCP_RAFT_EV_TRANSFER:
        rc = raft_transfer(r, ev->transfer.target);
        break;
    case KCP_RAFT_EV_READ:
        rc = raft_read(r, ev->read.token);
        break;
    case KCP_RAFT_EV_COMPACT:
        rc = raft_compact(r, ev->compact.index);
        break;
    case KCP_RAFT_EV_SNAPSHOT_CHUNK:
        rc = raft_snapshot_chunk(r, ev);
        break;
    default:
        rc = KCP_EINVAL;
    }
done:
    if (rc < 0) {
        /* Refusals are decided before anything changes, so there is nothing to report. */
        out->role = r->role == RAFT_ROLE_NONE ? KCP_RAFT_FOLLOWER : r->role;
        out->leader_id = r->leader_id;
        out->term = r->term;
        out->next_deadline_ms = next_deadline(r);
        return rc;
    }
    finish(r, out);
    return 0;
}

void kcp_raft_status(const struct kcp_raft *r, struct kcp_raft_status *out)
{
    memset(out, 0, sizeof(*out));
    out->id = r->id;
    out->role = r->role == RAFT_ROLE_NONE ? KCP_RAFT_FOLLOWER : r->role;
    out->term = r->term;
    out->vote = r->vote;
    out->leader_id = r->leader_id;
    out->commit = r->commit;
    out->applied = r->applied;
    out->persisted = r->persisted;
    out->first_index = r->log.first;
    out->last_index = raft_log_last_index(&r->log);
    out->last_term = raft_log_last_term(&r->log);
    out->snapshot_index = r->log.snap_index;
    out->snapshot_term = r->log.snap_term;
    out->config = &r->config;
    out->config_index = r->config_index;
}

int kcp_raft_term_at(const struct kcp_raft *r, uint64_t index, uint64_t *out)
{
    return raft_log_term(&r->log, index, out);
}
