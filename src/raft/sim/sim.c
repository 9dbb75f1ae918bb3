/* Raft simulator: the event queue, the network, server lifecycle and the client-facing calls. */
#include "sim_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void raft_sim_options_default(struct raft_sim_options *out, unsigned voters, uint64_t seed)
{
    memset(out, 0, sizeof(*out));
    out->seed = seed;
    out->voters = voters;
    kcp_raft_options_default(&out->raft, 1);
    out->raft.election_timeout_ms = 150;
    out->raft.heartbeat_ms = 30;
    out->raft.max_inflight = 4;
    out->raft.max_batch_entries = 8;
    out->raft.max_batch_bytes = 512;
    out->raft.snapshot_chunk_bytes = 96; /* several chunks per snapshot, to exercise streaming */
    out->raft.compact_trailing = 4;
    out->raft.catchup_margin = 2;
    out->raft.read_timeout_ms = 600;
    out->delay_min_ms = 1;
    out->delay_max_ms = 15;
    out->disk_min_ms = 1;
    out->disk_max_ms = 8;
}

static uint64_t rnd(struct raft_sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t raft_sim_rand(struct raft_sim *s, uint64_t n)
{
    return n ? rnd(s) % n : 0;
}

uint64_t sim_delay(struct raft_sim *s, uint32_t lo, uint32_t hi)
{
    return hi > lo ? lo + raft_sim_rand(s, hi - lo + 1) : lo;
}

/* ---- the event queue: a binary heap on (time, seq), so ties break by queueing order ---- */

static bool ev_before(const struct sim_ev *a, const struct sim_ev *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

void sim_push(struct raft_sim *s, const struct sim_ev *ev)
{
    SIM_GROW(s->heap, s->n_ev, s->cap_ev);
    size_t i = s->n_ev++;
    s->heap[i] = *ev;
    s->heap[i].seq = s->seq++;
    while (i && ev_before(&s->heap[i], &s->heap[(i - 1) / 2])) {
        struct sim_ev t = s->heap[i];
        s->heap[i] = s->heap[(i - 1) / 2];
        s->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct sim_ev pop(struct raft_sim *s)
{
    struct sim_ev top = s->heap[0];
    s->heap[0] = s->heap[--s->n_ev];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->n_ev && ev_before(&s->heap[l], &s->heap[m]))
            m = l;
        if (r < s->n_ev && ev_before(&s->heap[r], &s->heap[m]))
            m = r;
        if (m == i)
            break;
        struct sim_ev t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
    return top;
}

/* ---- lifecycle ---- */

struct raft_sim *raft_sim_new(const struct raft_sim_options *o)
{
    struct raft_sim *s = kcp_calloc(1, sizeof(*s));
    s->o = *o;
    s->rng = o->seed * 0x9e3779b97f4a7c15ULL + 1;
    raft_sim_heal(s);
    struct kcp_raft_config c = {0};
    for (unsigned i = 1; i <= o->voters && i <= RAFT_SIM_MAX_NODES; i++) {
        c.servers[c.n].id = i;
        c.servers[c.n].role = KCP_RAFT_VOTER;
        snprintf(c.servers[c.n].address, sizeof(c.servers[c.n].address), "sim-%u", i);
        c.n++;
    }
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_raft_config_encode(&c, &b);
    for (unsigned i = 1; i <= c.n; i++) {
        /* Bootstrap: every founder holds the same configuration entry at index 1, term 1. */
        struct sim_node *n = &s->nodes[i];
        n->id = i;
        n->exists = true;
        n->hs = (struct kcp_raft_hard_state){1, 0, 1};
        n->log = kcp_calloc(1, sizeof(*n->log));
        n->log_cap = 1;
        n->log_n = 1;
        n->log_first = 1;
        n->log[0].term = 1;
        n->log[0].type = KCP_RAFT_ENTRY_CONFIG;
        n->log[0].len = b.len;
        n->log[0].data = kcp_malloc(b.len);
        memcpy(n->log[0].data, b.data, b.len);
        n->log[0].hash = sim_chain(0, 1, sim_value(KCP_RAFT_ENTRY_CONFIG, b.data, b.len));
        sim_node_start(s, n);
    }
    kcp_buf_free(&b);
    return s;
}

void raft_sim_free(struct raft_sim *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_ev; i++)
        free(s->heap[i].bytes);
    free(s->heap);
    for (unsigned i = 1; i <= RAFT_SIM_MAX_NODES; i++)
        sim_node_free(&s->nodes[i]);
    sim_check_free(s);
    free(s->props);
    free(s->reads);
    free(s->acked);
    free(s);
}

void raft_sim_fail(struct raft_sim *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    int off =
        snprintf(s->failure, sizeof(s->failure), "t=%llu step=%llu: ", (unsigned long long)s->now,
                 (unsigned long long)s->steps);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->failure + off, sizeof(s->failure) - (size_t)off, fmt, ap);
    va_end(ap);
}

const char *raft_sim_failure(const struct raft_sim *s)
{
    return s->failed ? s->failure : NULL;
}

uint64_t raft_sim_now(const struct raft_sim *s)
{
    return s->now;
}

uint64_t raft_sim_steps(const struct raft_sim *s)
{
    return s->steps;
}

int sim_node_step(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_event *ev)
{
    struct kcp_raft_update u;
    struct kcp_raft_event e = *ev;
    e.now_ms = s->now;
    int rc = kcp_raft_step(n->r, &e, &u);
    if (rc == 0) {
        sim_node_update(s, n, &u);
        sim_check_core(s, n);
    }
    return rc;
}

static void trace_msg(struct raft_sim *s, const struct kcp_raft_msg *m)
{
    if (!s->o.trace)
        return;
    fprintf(stderr, "t=%llu %llu->%llu %s term=%llu", (unsigned long long)s->now,
            (unsigned long long)m->from, (unsigned long long)m->to, kcp_raft_msg_type_name(m->type),
            (unsigned long long)m->term);
    if (m->type == KCP_RAFT_MSG_APPEND)
        fprintf(stderr, " prev=%llu/%llu n=%zu commit=%llu",
                (unsigned long long)m->append.prev_index, (unsigned long long)m->append.prev_term,
                m->append.n_entries, (unsigned long long)m->append.commit);
    else if (m->type == KCP_RAFT_MSG_APPEND_RESP)
        fprintf(stderr, " %s index=%llu hint=%llu", m->append_resp.reject ? "reject" : "ok",
                (unsigned long long)m->append_resp.index, (unsigned long long)m->append_resp.hint);
    else if (m->type == KCP_RAFT_MSG_VOTE_RESP || m->type == KCP_RAFT_MSG_PREVOTE_RESP)
        fprintf(stderr, " granted=%d", m->vote_resp.granted);
    fprintf(stderr, "\n");
}

static void deliver(struct raft_sim *s, struct sim_ev *ev)
{
    struct sim_node *n = &s->nodes[ev->node];
    struct kcp_raft_msg m;
    if (!n->alive)
        return;
    if (kcp_raft_msg_decode(&m, ev->bytes, ev->len) < 0) {
        raft_sim_fail(s, "wire: a message the core sent does not decode");
        return;
    }
    /* A partition formed while the message was in flight drops it too. */
    if (m.from <= RAFT_SIM_MAX_NODES && s->link[m.from][m.to]) {
        trace_msg(s, &m);
        struct kcp_raft_event e = {.type = KCP_RAFT_EV_RECEIVE};
        e.receive.msg = &m;
        sim_node_step(s, n, &e);
    }
    kcp_raft_msg_free(&m);
}

bool raft_sim_step(struct raft_sim *s)
{
    while (!s->failed && s->n_ev) {
        struct sim_ev ev = pop(s);
        struct sim_node *n = &s->nodes[ev.node];
        bool stale = !n->alive;
        if (!stale && ev.kind == SIM_TIMER)
            stale = ev.gen != n->timer_gen;
        else if (!stale && ev.kind != SIM_DELIVER)
            stale = ev.gen != n->incarnation;
        if (stale) {
            free(ev.bytes);
            continue; /* not a step: nothing happens */
        }
        if (ev.time > s->now)
            s->now = ev.time;
        s->steps++;
        struct kcp_raft_event e = {0};
        switch (ev.kind) {
        case SIM_DELIVER:
            deliver(s, &ev);
            break;
        case SIM_TIMER:
            n->deadline = UINT64_MAX;
            e.type = KCP_RAFT_EV_TICK;
            sim_node_step(s, n, &e);
            break;
        case SIM_DISK:
            sim_node_disk_done(s, n, ev.a);
            break;
        case SIM_SNAP_READ:
            sim_node_snap_read(s, n, &ev);
            break;
        case SIM_SNAP_STAGED:
            e.type = KCP_RAFT_EV_SNAPSHOT_PERSISTED;
            e.persisted.index = ev.a;
            e.persisted.term = ev.b;
            sim_node_step(s, n, &e);
            break;
        case SIM_COMPACT:
            n->compact_queued = false;
            raft_sim_compact(s, n->id);
            break;
        }
        free(ev.bytes);
        return !s->failed;
    }
    return false;
}

void raft_sim_run(struct raft_sim *s, uint64_t ms)
{
    uint64_t end = s->now + ms;
    while (!s->failed && s->n_ev && s->heap[0].time <= end)
        raft_sim_step(s);
    if (!s->failed && s->now < end)
        s->now = end;
}

bool raft_sim_run_until(struct raft_sim *s, bool (*pred)(struct raft_sim *s, void *arg), void *arg,
                        uint64_t ms)
{
    uint64_t end = s->now + ms;
    while (!s->failed) {
        if (pred(s, arg))
            return true;
        if (!s->n_ev || s->heap[0].time > end)
            break;
        raft_sim_step(s);
    }
    return false;
}

/* ---- servers ---- */

bool raft_sim_exists(const struct raft_sim *s, uint64_t id)
{
    return id && id <= RAFT_SIM_MAX_NODES && s->nodes[id].exists;
}

bool raft_sim_alive(const struct raft_sim *s, uint64_t id)
{
    return raft_sim_exists(s, id) && s->nodes[id].alive;
}

struct kcp_raft *raft_sim_core(struct raft_sim *s, uint64_t id)
{
    return raft_sim_alive(s, id) ? s->nodes[id].r : NULL;
}

void raft_sim_kill(struct raft_sim *s, uint64_t id)
{
    if (!raft_sim_alive(s, id))
        return;
    struct sim_node *n = &s->nodes[id];
    if (s->o.trace)
        fprintf(stderr, "t=%llu   %llu: crash\n", (unsigned long long)s->now,
                (unsigned long long)id);
    sim_node_crash_disk(s, n);
    kcp_raft_free(n->r);
    n->r = NULL;
    n->alive = false;
    n->incarnation++;
    n->timer_gen++;
    n->compact_queued = false;
    n->role = KCP_RAFT_FOLLOWER;
    s->stats.crashes++;
    /* Clients of the dead server time out: their outcome is unknown, never acknowledged. */
    size_t j = 0;
    for (size_t i = 0; i < s->n_props; i++)
        if (s->props[i].node != id)
            s->props[j++] = s->props[i];
    s->n_props = j;
    for (size_t i = 0; i < s->n_reads; i++)
        if (s->reads[i].node == id && !s->reads[i].done) {
            s->reads[i].done = true;
            s->reads[i].status = KCP_ECLOSED;
        }
}

void raft_sim_revive(struct raft_sim *s, uint64_t id)
{
    if (!raft_sim_exists(s, id) || s->nodes[id].alive)
        return;
    if (s->o.trace)
        fprintf(stderr, "t=%llu   %llu: restart\n", (unsigned long long)s->now,
                (unsigned long long)id);
    sim_node_start(s, &s->nodes[id]);
}

uint64_t raft_sim_add_server(struct raft_sim *s)
{
    for (uint64_t id = 1; id <= RAFT_SIM_MAX_NODES; id++) {
        struct sim_node *n = &s->nodes[id];
        if (n->exists)
            continue;
        memset(n, 0, sizeof(*n));
        n->id = id;
        n->exists = true;
        n->log_first = 1;
        sim_node_start(s, n);
        return id;
    }
    return 0;
}

uint64_t raft_sim_leader(const struct raft_sim *s)
{
    uint64_t best = 0, term = 0;
    for (uint64_t id = 1; id <= RAFT_SIM_MAX_NODES; id++) {
        const struct sim_node *n = &s->nodes[id];
        if (n->alive && n->role == KCP_RAFT_LEADER && n->term >= term) {
            best = id;
            term = n->term;
        }
    }
    return best;
}

const struct kcp_raft_config *raft_sim_config(const struct raft_sim *s)
{
    uint64_t l = raft_sim_leader(s);
    struct kcp_raft_status st;
    for (uint64_t id = l ? l : 1; id <= RAFT_SIM_MAX_NODES; id++) {
        if (!s->nodes[id].alive)
            continue;
        kcp_raft_status(s->nodes[id].r, &st);
        return st.config;
    }
    return NULL;
}

/* ---- network ---- */

void raft_sim_link(struct raft_sim *s, uint64_t from, uint64_t to, bool up)
{
    if (from <= RAFT_SIM_MAX_NODES && to <= RAFT_SIM_MAX_NODES)
        s->link[from][to] = up;
}

void raft_sim_isolate(struct raft_sim *s, uint64_t id)
{
    for (uint64_t i = 1; i <= RAFT_SIM_MAX_NODES; i++) {
        raft_sim_link(s, id, i, false);
        raft_sim_link(s, i, id, false);
    }
}

void raft_sim_partition(struct raft_sim *s, uint32_t mask)
{
    for (uint64_t a = 1; a <= RAFT_SIM_MAX_NODES; a++)
        for (uint64_t b = 1; b <= RAFT_SIM_MAX_NODES; b++)
            s->link[a][b] = ((mask >> (a - 1)) & 1) == ((mask >> (b - 1)) & 1);
}

void raft_sim_heal(struct raft_sim *s)
{
    for (uint64_t a = 0; a <= RAFT_SIM_MAX_NODES; a++)
        for (uint64_t b = 0; b <= RAFT_SIM_MAX_NODES; b++)
            s->link[a][b] = true;
}

void raft_sim_set_faults(struct raft_sim *s, uint32_t drop_permille, uint32_t dup_permille,
                         uint32_t delay_min_ms, uint32_t delay_max_ms)
{
    s->o.drop_permille = drop_permille;
    s->o.dup_permille = dup_permille;
    s->o.delay_min_ms = delay_min_ms;
    s->o.delay_max_ms = delay_max_ms < delay_min_ms ? delay_min_ms : delay_max_ms;
}

void raft_sim_set_filter(struct raft_sim *s, raft_sim_filter_cb cb, void *arg)
{
    s->filter = cb;
    s->filter_arg = arg;
}

/* ---- clients ---- */

int raft_sim_propose(struct raft_sim *s, uint64_t id, uint64_t *out_value, uint64_t *out_index)
{
    if (!raft_sim_alive(s, id))
        return KCP_EUNAVAILABLE;
    struct sim_node *n = &s->nodes[id];
    uint64_t value = ++s->next_value;
    /* A value and some padding, so that batches hit the byte limit now and then. */
    size_t len = 8 + (size_t)raft_sim_rand(s, 48);
    uint8_t *p = kcp_calloc(1, len);
    memcpy(p, &value, 8);
    struct kcp_raft_buf buf = {p, len};
    struct kcp_raft_event e = {.type = KCP_RAFT_EV_PROPOSE};
    e.propose.payloads = &buf;
    e.propose.n = 1;
    struct kcp_raft_update u;
    e.now_ms = s->now;
    int rc = kcp_raft_step(n->r, &e, &u);
    if (rc < 0) {
        free(p);
        return rc;
    }
    s->stats.proposals++;
    SIM_GROW(s->props, s->n_props, s->cap_props);
    s->props[s->n_props++] =
        (struct sim_prop){id, n->incarnation, u.proposed_index, u.proposed_term, value};
    if (out_value)
        *out_value = value;
    if (out_index)
        *out_index = u.proposed_index;
    sim_node_update(s, n, &u);
    sim_check_core(s, n);
    return 0;
}

int raft_sim_read(struct raft_sim *s, uint64_t id, uint64_t *out_token)
{
    if (!raft_sim_alive(s, id))
        return KCP_EUNAVAILABLE;
    struct sim_node *n = &s->nodes[id];
    uint64_t token = ++s->next_token;
    /* Registered before the step: a leader may answer within it. */
    SIM_GROW(s->reads, s->n_reads, s->cap_reads);
    s->reads[s->n_reads++] =
        (struct sim_read){id, n->incarnation, token, s->acked_max, false, 0, 0};
    struct kcp_raft_event e = {.type = KCP_RAFT_EV_READ};
    e.read.token = token;
    int rc = sim_node_step(s, n, &e);
    if (rc < 0) {
        s->n_reads--;
        return rc;
    }
    s->stats.reads++;
    if (out_token)
        *out_token = token;
    return 0;
}

bool raft_sim_read_result(const struct raft_sim *s, uint64_t token, uint64_t *index, int *status)
{
    for (size_t i = 0; i < s->n_reads; i++) {
        if (s->reads[i].token != token || !s->reads[i].done)
            continue;
        *index = s->reads[i].index;
        *status = s->reads[i].status;
        return true;
    }
    return false;
}

int raft_sim_change(struct raft_sim *s, uint64_t at, enum kcp_raft_change_type type, uint64_t id)
{
    if (!raft_sim_alive(s, at))
        return KCP_EUNAVAILABLE;
    char addr[32];
    snprintf(addr, sizeof(addr), "sim-%llu", (unsigned long long)id);
    struct kcp_raft_event e = {.type = KCP_RAFT_EV_CHANGE};
    e.change.type = type;
    e.change.id = id;
    e.change.address = addr;
    int rc = sim_node_step(s, &s->nodes[at], &e);
    if (rc == 0)
        s->stats.changes++;
    return rc;
}

int raft_sim_transfer(struct raft_sim *s, uint64_t at, uint64_t target)
{
    if (!raft_sim_alive(s, at))
        return KCP_EUNAVAILABLE;
    struct kcp_raft_event e = {.type = KCP_RAFT_EV_TRANSFER};
    e.transfer.target = target;
    int rc = sim_node_step(s, &s->nodes[at], &e);
    if (rc == 0)
        s->stats.transfers++;
    return rc;
}

int raft_sim_compact(struct raft_sim *s, uint64_t id)
{
    if (!raft_sim_alive(s, id))
        return KCP_EUNAVAILABLE;
    struct sim_node *n = &s->nodes[id];
    if (n->sm_applied <= n->snap_index)
        return 0;
    struct kcp_raft_event e = {.type = KCP_RAFT_EV_COMPACT};
    e.compact.index = n->sm_applied;
    return sim_node_step(s, n, &e);
}

bool raft_sim_acked(const struct raft_sim *s, uint64_t value)
{
    for (size_t i = 0; i < s->n_acked; i++)
        if (s->acked[i].value == value)
            return true;
    return false;
}

void raft_sim_stats(const struct raft_sim *s, struct raft_sim_stats *out)
{
    *out = s->stats;
}

uint64_t raft_sim_applied(const struct raft_sim *s, uint64_t id)
{
    return raft_sim_exists(s, id) ? s->nodes[id].sm_applied : 0;
}

uint64_t raft_sim_value_at(const struct raft_sim *s, uint64_t id, uint64_t index)
{
    if (!raft_sim_exists(s, id) || index > s->nodes[id].sm_applied || !index)
        return 0;
    return s->nodes[id].sm[index];
}

void raft_sim_dump(const struct raft_sim *s)
{
    for (uint64_t id = 1; id <= RAFT_SIM_MAX_NODES; id++) {
        const struct sim_node *n = &s->nodes[id];
        if (!n->exists)
            continue;
        if (!n->alive) {
            fprintf(stderr, "  %llu: dead\n", (unsigned long long)id);
            continue;
        }
        struct kcp_raft_status st;
        kcp_raft_status(n->r, &st);
        fprintf(stderr,
                "  %llu: %s term %llu vote %llu leader %llu log %llu..%llu/%llu snap %llu commit "
                "%llu applied %llu persisted %llu config@%llu:",
                (unsigned long long)id, kcp_raft_role_name(st.role), (unsigned long long)st.term,
                (unsigned long long)st.vote, (unsigned long long)st.leader_id,
                (unsigned long long)st.first_index, (unsigned long long)st.last_index,
                (unsigned long long)st.last_term, (unsigned long long)st.snapshot_index,
                (unsigned long long)st.commit, (unsigned long long)st.applied,
                (unsigned long long)st.persisted, (unsigned long long)st.config_index);
        for (uint32_t i = 0; i < st.config->n; i++)
            fprintf(stderr, " %llu%s", (unsigned long long)st.config->servers[i].id,
                    st.config->servers[i].role == KCP_RAFT_LEARNER ? "L" : "");
        if (st.role == KCP_RAFT_LEADER) {
            fprintf(stderr, " |");
            for (uint32_t i = 0; i < st.config->n; i++) {
                struct kcp_raft_progress p;
                if (kcp_raft_progress_get(n->r, st.config->servers[i].id, &p) == 0)
                    fprintf(stderr, " %llu:m%llu/n%llu%s",
                            (unsigned long long)st.config->servers[i].id,
                            (unsigned long long)p.match, (unsigned long long)p.next,
                            p.active ? "" : "(idle)");
            }
        }
        fprintf(stderr, "\n");
    }
}

/* ---- liveness ---- */

bool raft_sim_converged(struct raft_sim *s, void *arg)
{
    (void)arg;
    uint64_t l = raft_sim_leader(s);
    if (!l)
        return false;
    struct sim_node *ln = &s->nodes[l];
    if (s->probe_leader != l || s->probe_term != ln->term) {
        uint64_t value, index;
        if (raft_sim_propose(s, l, &value, &index) != 0)
            return false; /* a transfer in progress, say: try again after the next event */
        s->probe_value = value;
        s->probe_index = index;
        s->probe_term = ln->term;
        s->probe_leader = l;
    }
    if (!raft_sim_acked(s, s->probe_value))
        return false;
    struct kcp_raft_status st;
    kcp_raft_status(ln->r, &st);
    for (uint32_t i = 0; i < st.config->n; i++) {
        const struct sim_node *n = &s->nodes[st.config->servers[i].id];
        if (!n->alive || n->sm_applied < s->probe_index)
            return false;
    }
    return true;
}

void raft_sim_check_final(struct raft_sim *s)
{
    const struct kcp_raft_config *c = raft_sim_config(s);
    if (!c || s->failed)
        return;
    for (uint32_t i = 0; i < c->n; i++) {
        const struct sim_node *n = &s->nodes[c->servers[i].id];
        if (!n->alive)
            continue;
        for (size_t k = 0; k < s->n_acked; k++) {
            uint64_t idx = s->acked[k].index;
            if (idx > n->sm_applied) {
                raft_sim_fail(s, "final: %llu applied %llu, below acknowledged index %llu",
                              (unsigned long long)n->id, (unsigned long long)n->sm_applied,
                              (unsigned long long)idx);
                return;
            }
            if (n->sm[idx] != s->values[idx]) {
                raft_sim_fail(s, "final: acknowledged write at %llu lost on %llu",
                              (unsigned long long)idx, (unsigned long long)n->id);
                return;
            }
        }
    }
}
