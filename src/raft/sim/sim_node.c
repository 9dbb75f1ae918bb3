/* A simulated server: carries out its core's updates on a fake disk, network and state machine. */
#include "sim_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t sim_value(enum kcp_raft_entry_type type, const void *data, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)type;
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return mix(h) | 1; /* never 0, which means "nothing applied here" */
}

/* The hash of a log prefix: equal hashes at an index mean equal logs up to it (Log Matching). */
uint64_t sim_chain(uint64_t prev, uint64_t term, uint64_t value)
{
    return mix(prev ^ mix(term * 0x9e3779b97f4a7c15ULL ^ value));
}

uint64_t sim_mirror_hash(const struct sim_node *n, uint64_t index, bool *known)
{
    *known = true;
    if (index == 0)
        return 0;
    if (n->m_n && index >= n->m_first && index < n->m_first + n->m_n)
        return n->m[index - n->m_first].hash;
    if (index == n->m_snap_index)
        return n->m_snap_hash;
    *known = false;
    return 0;
}

static uint64_t mirror_last(const struct sim_node *n)
{
    uint64_t last = n->m_n ? n->m_first + n->m_n - 1 : 0;
    return last > n->m_snap_index ? last : n->m_snap_index;
}

static void mirror_append(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_entry *e,
                          uint64_t *out_hash)
{
    bool known;
    uint64_t prev = sim_mirror_hash(n, e->index - 1, &known);
    if (e->index != mirror_last(n) + 1 || !known) {
        raft_sim_fail(s, "%llu: update appends %llu after %llu", (unsigned long long)n->id,
                      (unsigned long long)e->index, (unsigned long long)mirror_last(n));
        return;
    }
    uint64_t h = sim_chain(prev, e->term, sim_value(e->type, e->data.base, e->data.len));
    if (!n->m_n)
        n->m_first = e->index;
    SIM_GROW(n->m, n->m_n, n->m_cap);
    n->m[n->m_n++] = (struct sim_mentry){e->term, h};
    *out_hash = h;
    sim_check_append(s, n, e->index, e->term, h);
}

static void entry_free(struct sim_entry *e)
{
    free(e->data);
    e->data = NULL;
}

/* Applies a write to the durable log: what survives a crash once this returns. */
static void durable_apply(struct raft_sim *s, struct sim_node *n, struct sim_write *w)
{
    if (w->truncate_from && n->log_n && w->truncate_from < n->log_first + n->log_n) {
        size_t keep = w->truncate_from > n->log_first ? w->truncate_from - n->log_first : 0;
        for (size_t i = keep; i < n->log_n; i++)
            entry_free(&n->log[i]);
        n->log_n = keep;
    }
    for (size_t i = 0; i < w->n; i++) {
        uint64_t index = w->first_index + i;
        if (!n->log_n) {
            if (index > n->snap_index + 1 || (!n->has_snap && index != 1)) {
                raft_sim_fail(s, "%llu: disk: entry %llu leaves a gap after the snapshot",
                              (unsigned long long)n->id, (unsigned long long)index);
                return;
            }
            n->log_first = index;
        } else if (index != n->log_first + n->log_n) {
            raft_sim_fail(s, "%llu: disk: entry %llu not contiguous with %llu",
                          (unsigned long long)n->id, (unsigned long long)index,
                          (unsigned long long)(n->log_first + n->log_n - 1));
            return;
        }
        SIM_GROW(n->log, n->log_n, n->log_cap);
        n->log[n->log_n++] = w->e[i];
        w->e[i].data = NULL; /* moved */
    }
    w->on_disk = true;
}

static void write_free(struct sim_write *w)
{
    for (size_t i = 0; i < w->n; i++)
        entry_free(&w->e[i]);
    free(w->e);
}

void sim_node_disk_done(struct raft_sim *s, struct sim_node *n, uint64_t write_id)
{
    if (!n->n_writes || n->writes[0].id != write_id) {
        raft_sim_fail(s, "%llu: disk completed out of order", (unsigned long long)n->id);
        return;
    }
    struct sim_write w = n->writes[0];
    memmove(n->writes, n->writes + 1, (n->n_writes - 1) * sizeof(*n->writes));
    n->n_writes--;
    if (!w.on_disk)
        durable_apply(s, n, &w);
    uint64_t last = w.first_index + w.n - 1, term = w.n ? w.e[w.n - 1].term : 0;
    size_t count = w.n;
    write_free(&w);
    if (!count || s->failed)
        return;
    struct kcp_raft_event e = {.type = KCP_RAFT_EV_PERSISTED};
    e.persisted.index = last;
    e.persisted.term = term;
    sim_node_step(s, n, &e);
}

void sim_node_crash_disk(struct raft_sim *s, struct sim_node *n)
{
    /* Some writes not yet reported may have reached the disk, in order: keep a random prefix. */
    size_t keep = (size_t)raft_sim_rand(s, n->n_writes + 1);
    for (size_t i = 0; i < n->n_writes; i++) {
        if (i < keep && !n->writes[i].on_disk)
            durable_apply(s, n, &n->writes[i]);
        write_free(&n->writes[i]);
    }
    n->n_writes = 0;
    n->stage_len = 0;
    n->stage_index = n->stage_term = 0;
}

void sim_node_start(struct raft_sim *s, struct sim_node *n)
{
    struct kcp_raft_options o = s->o.raft;
    o.id = n->id;
    o.seed = s->o.seed * 1000003 + n->id * 7919 + n->incarnation;
    if (kcp_raft_new(&n->r, &o) < 0) {
        raft_sim_fail(s, "%llu: options refused", (unsigned long long)n->id);
        return;
    }
    struct kcp_raft_entry *es = kcp_calloc(n->log_n ? n->log_n : 1, sizeof(*es));
    for (size_t i = 0; i < n->log_n; i++)
        es[i] = (struct kcp_raft_entry){
            n->log[i].term, n->log_first + i, n->log[i].type, {n->log[i].data, n->log[i].len}};
    struct kcp_raft_snapshot_meta meta = {n->snap_index, n->snap_term, &n->snap_config};
    /* The mirror restarts from the disk too. */
    n->m_n = 0;
    n->m_first = n->log_first;
    for (size_t i = 0; i < n->log_n; i++) {
        SIM_GROW(n->m, n->m_n, n->m_cap);
        n->m[n->m_n++] = (struct sim_mentry){n->log[i].term, n->log[i].hash};
    }
    n->m_snap_index = n->has_snap ? n->snap_index : 0;
    n->m_snap_term = n->has_snap ? n->snap_term : 0;
    n->m_snap_hash = n->has_snap ? n->snap_hash : 0;
    n->alive = true;
    n->deadline = UINT64_MAX;
    n->role = KCP_RAFT_FOLLOWER;
    n->term = n->hs.term;
    n->disk_free_at = s->now;
    struct kcp_raft_event e = {.type = KCP_RAFT_EV_START};
    e.start.hard_state = n->hs;
    e.start.snapshot = n->has_snap ? &meta : NULL;
    e.start.entries = es;
    e.start.n_entries = n->log_n;
    e.start.applied = n->sm_applied;
    int rc = sim_node_step(s, n, &e);
    if (rc < 0)
        raft_sim_fail(s, "%llu: start refused: %s", (unsigned long long)n->id,
                      kcp_error_message(rc));
    free(es);
}

void sim_node_free(struct sim_node *n)
{
    kcp_raft_free(n->r);
    for (size_t i = 0; i < n->log_n; i++)
        entry_free(&n->log[i]);
    free(n->log);
    for (size_t i = 0; i < n->n_writes; i++)
        write_free(&n->writes[i]);
    free(n->writes);
    free(n->snap_data);
    free(n->sm);
    free(n->stage);
    free(n->m);
    memset(n, 0, sizeof(*n));
}

/* ---- the update, in the order raft.h prescribes ---- */

static void install(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_snapshot_meta *m)
{
    uint64_t hdr[2] = {0, 0};
    if (n->stage_index != m->index || n->stage_term != m->term || n->stage_len < 16 ||
        (memcpy(hdr, n->stage, 16), hdr[0] != m->index) || n->stage_len != 16 + 8 * m->index) {
        raft_sim_fail(s, "%llu: install of %llu without its staged snapshot",
                      (unsigned long long)n->id, (unsigned long long)m->index);
        return;
    }
    /* Earlier log writes land first: the install is ordered after them on the disk. */
    for (size_t i = 0; i < n->n_writes; i++)
        if (!n->writes[i].on_disk)
            durable_apply(s, n, &n->writes[i]);
    uint64_t *values = kcp_malloc((m->index + 1) * sizeof(uint64_t));
    values[0] = 0;
    memcpy(values + 1, n->stage + 16, 8 * m->index);
    sim_check_snapshot(s, n, values, m->index, hdr[1]);
    SIM_GROW(n->sm, m->index + 1, n->sm_cap);
    memcpy(n->sm, values, (m->index + 1) * sizeof(uint64_t));
    n->sm_applied = m->index;
    free(values);
    for (size_t i = 0; i < n->log_n; i++)
        entry_free(&n->log[i]);
    n->log_n = 0;
    n->log_first = m->index + 1;
    n->has_snap = true;
    n->snap_index = m->index;
    n->snap_term = m->term;
    n->snap_hash = hdr[1];
    n->snap_config = *m->config;
    free(n->snap_data);
    n->snap_data = kcp_malloc(n->stage_len);
    memcpy(n->snap_data, n->stage, n->stage_len);
    n->snap_len = n->stage_len;
    n->m_n = 0;
    n->m_first = m->index + 1;
    n->m_snap_index = m->index;
    n->m_snap_term = m->term;
    n->m_snap_hash = hdr[1];
    s->stats.installs++;
    /* Proposals covered by the snapshot have an unknown fate for their client. */
    size_t j = 0;
    for (size_t i = 0; i < s->n_props; i++)
        if (s->props[i].node != n->id || s->props[i].index > m->index)
            s->props[j++] = s->props[i];
    s->n_props = j;
}

static void entries(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_update *u)
{
    if (u->truncate_from && n->m_n && u->truncate_from < n->m_first + n->m_n)
        n->m_n = u->truncate_from > n->m_first ? u->truncate_from - n->m_first : 0;
    if (!u->n_entries || s->failed)
        return;
    struct sim_write w = {n->next_write++, u->truncate_from,    NULL,
                          u->n_entries,    u->entries[0].index, false};
    w.e = kcp_calloc(u->n_entries, sizeof(*w.e));
    for (size_t i = 0; i < u->n_entries; i++) {
        const struct kcp_raft_entry *e = &u->entries[i];
        w.e[i].term = e->term;
        w.e[i].type = e->type;
        w.e[i].len = e->data.len;
        if (e->data.len) {
            w.e[i].data = kcp_malloc(e->data.len);
            memcpy(w.e[i].data, e->data.base, e->data.len);
        }
        mirror_append(s, n, e, &w.e[i].hash);
    }
    SIM_GROW(n->writes, n->n_writes, n->cap_writes);
    n->writes[n->n_writes++] = w;
    uint64_t at = s->now + sim_delay(s, s->o.disk_min_ms, s->o.disk_max_ms);
    if (at < n->disk_free_at)
        at = n->disk_free_at; /* one disk: writes finish in the order they were issued */
    n->disk_free_at = at;
    sim_push(s, &(struct sim_ev){
                    .time = at, .kind = SIM_DISK, .node = n->id, .gen = n->incarnation, .a = w.id});
}

static void send(struct raft_sim *s, const struct kcp_raft_msg *m)
{
    s->stats.messages++;
    bool drop = !m->to || m->to > RAFT_SIM_MAX_NODES || !s->nodes[m->to].exists ||
                (s->filter && s->filter(m, s->filter_arg)) || !s->link[m->from][m->to] ||
                raft_sim_rand(s, 1000) < s->o.drop_permille;
    if (drop) {
        s->stats.dropped++;
        return;
    }
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_raft_msg_encode(m, &b);
    int copies = raft_sim_rand(s, 1000) < s->o.dup_permille ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        struct sim_ev ev = {.kind = SIM_DELIVER, .node = m->to, .len = b.len};
        ev.time = s->now + sim_delay(s, s->o.delay_min_ms, s->o.delay_max_ms);
        ev.bytes = kcp_malloc(b.len);
        memcpy(ev.bytes, b.data, b.len);
        sim_push(s, &ev);
    }
    kcp_buf_free(&b);
}

static void apply(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_entry *e)
{
    if (e->index != n->sm_applied + 1) {
        raft_sim_fail(s, "%llu: applies %llu after %llu", (unsigned long long)n->id,
                      (unsigned long long)e->index, (unsigned long long)n->sm_applied);
        return;
    }
    SIM_GROW(n->sm, e->index, n->sm_cap);
    n->sm[e->index] = sim_value(e->type, e->data.base, e->data.len);
    n->sm_applied = e->index;
    sim_check_apply(s, n, e);
}

static void stage(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_snapshot_chunk *c)
{
    if (c->offset == 0) {
        n->stage_len = 0;
        n->stage_index = c->index;
        n->stage_term = c->term;
    }
    if (c->index != n->stage_index || c->offset != n->stage_len) {
        raft_sim_fail(s, "%llu: snapshot chunk at %llu out of order", (unsigned long long)n->id,
                      (unsigned long long)c->offset);
        return;
    }
    SIM_GROW(n->stage, n->stage_len + c->data.len, n->stage_cap);
    if (c->data.len)
        memcpy(n->stage + n->stage_len, c->data.base, c->data.len);
    n->stage_len += c->data.len;
    if (c->last)
        sim_push(s,
                 &(struct sim_ev){.time = s->now + sim_delay(s, s->o.disk_min_ms, s->o.disk_max_ms),
                                  .kind = SIM_SNAP_STAGED,
                                  .node = n->id,
                                  .gen = n->incarnation,
                                  .a = c->index,
                                  .b = c->term});
}

void sim_node_snap_read(struct raft_sim *s, struct sim_node *n, const struct sim_ev *ev)
{
    struct kcp_raft_event e = {.type = KCP_RAFT_EV_SNAPSHOT_CHUNK};
    e.snapshot_chunk.to = ev->a;
    e.snapshot_chunk.index = ev->b;
    e.snapshot_chunk.offset = ev->c;
    if (!n->has_snap || n->snap_index != ev->b || ev->c > n->snap_len) {
        e.snapshot_chunk.status = KCP_ENOTFOUND; /* compacted again since: start over */
    } else {
        size_t len = n->snap_len - ev->c;
        if (len > ev->d)
            len = ev->d;
        e.snapshot_chunk.data = (struct kcp_raft_buf){n->snap_data + ev->c, len};
        e.snapshot_chunk.last = ev->c + len == n->snap_len;
    }
    if (sim_node_step(s, n, &e) < 0)
        raft_sim_fail(s, "%llu: snapshot chunk refused", (unsigned long long)n->id);
}

static void compacted(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_update *u)
{
    uint64_t index = u->snapshot.index;
    bool known;
    uint64_t hash = sim_mirror_hash(n, index, &known);
    if (!known || index > n->sm_applied) {
        raft_sim_fail(s, "%llu: compaction at %llu beyond what is held", (unsigned long long)n->id,
                      (unsigned long long)index);
        return;
    }
    /* The snapshot is the state machine at index: header (index, hash), then every value. */
    free(n->snap_data);
    n->snap_len = 16 + 8 * index;
    n->snap_data = kcp_malloc(n->snap_len);
    memcpy(n->snap_data, &index, 8);
    memcpy(n->snap_data + 8, &hash, 8);
    memcpy(n->snap_data + 16, n->sm + 1, 8 * index);
    n->has_snap = true;
    n->snap_index = index;
    n->snap_term = u->snapshot.term;
    n->snap_hash = hash;
    n->snap_config = *u->snapshot.config;
    size_t drop = 0;
    while (drop < n->log_n && n->log_first + drop < u->log_first)
        entry_free(&n->log[drop++]);
    memmove(n->log, n->log + drop, (n->log_n - drop) * sizeof(*n->log));
    n->log_n -= drop;
    n->log_first = n->log_n ? n->log_first + drop : index + 1;
    drop = 0;
    while (drop < n->m_n && n->m_first + drop < u->log_first)
        drop++;
    memmove(n->m, n->m + drop, (n->m_n - drop) * sizeof(*n->m));
    n->m_n -= drop;
    n->m_first = n->m_n ? n->m_first + drop : index + 1;
    n->m_snap_index = index;
    n->m_snap_term = u->snapshot.term;
    n->m_snap_hash = hash;
    s->stats.compactions++;
}

void sim_node_update(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_update *u)
{
    if (u->install)
        install(s, n, &u->install_meta);
    entries(s, n, u);
    if (s->o.trace && (u->role_changed || u->hard_state_changed || u->n_entries || u->install))
        fprintf(stderr,
                "t=%llu   %llu: %s term %llu leader %llu commit %llu%s, +%zu entries from %llu"
                "%s\n",
                (unsigned long long)s->now, (unsigned long long)n->id, kcp_raft_role_name(u->role),
                (unsigned long long)u->term, (unsigned long long)u->leader_id,
                (unsigned long long)u->hard_state.commit, u->hard_state_changed ? "" : " (same)",
                u->n_entries, (unsigned long long)(u->n_entries ? u->entries[0].index : 0),
                u->install ? ", install" : "");
    sim_check_role(s, n, u);
    if (u->hard_state_changed) {
        sim_check_hard_state(s, n, &u->hard_state);
        n->hs = u->hard_state; /* synchronous: durable before the messages below leave */
    }
    sim_check_commit(s, n);
    for (size_t i = 0; i < u->n_msgs && !s->failed; i++)
        send(s, &u->msgs[i]);
    for (size_t i = 0; i < u->n_committed && !s->failed; i++)
        apply(s, n, &u->committed[i]);
    for (size_t i = 0; i < u->n_chunks && !s->failed; i++)
        stage(s, n, &u->chunks[i]);
    for (size_t i = 0; i < u->n_snapshot_reads; i++) {
        const struct kcp_raft_snapshot_read *rd = &u->snapshot_reads[i];
        sim_push(s, &(struct sim_ev){.time = s->now + sim_delay(s, 0, s->o.disk_max_ms),
                                     .kind = SIM_SNAP_READ,
                                     .node = n->id,
                                     .gen = n->incarnation,
                                     .a = rd->to,
                                     .b = rd->index,
                                     .c = rd->offset,
                                     .d = rd->max_len});
    }
    if (u->compacted && !s->failed)
        compacted(s, n, u);
    sim_check_reads(s, n, u);
    if (s->o.compact_every && !n->compact_queued &&
        n->sm_applied >= n->snap_index + s->o.compact_every) {
        n->compact_queued = true;
        sim_push(s, &(struct sim_ev){
                        .time = s->now, .kind = SIM_COMPACT, .node = n->id, .gen = n->incarnation});
    }
    if (u->next_deadline_ms != n->deadline) {
        n->deadline = u->next_deadline_ms;
        n->timer_gen++;
        if (n->deadline != UINT64_MAX)
            sim_push(s, &(struct sim_ev){.time = n->deadline > s->now ? n->deadline : s->now,
                                         .kind = SIM_TIMER,
                                         .node = n->id,
                                         .gen = n->timer_gen});
    }
}
