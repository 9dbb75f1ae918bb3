/*
 * The cluster's life: founding or joining, starting the core from what the disk holds, the
 * housekeeping tick (deadlines, retries, promotions), and a shutdown that hands leadership on.
 */
#include "cluster_int.h"

#include <kcp/pki.h>

#include <stdlib.h>
#include <string.h>

/* How long a leader waits on shutdown for its successor to take over. */
#define TRANSFER_WAIT_MS 300

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int meta_u64(struct kcp_cluster *c, const char *name, uint64_t *out)
{
    void *v = NULL;
    size_t len = 0;
    int rc = cl_logstore_meta_get(c->log, name, &v, &len);
    if (rc == 0 && len == 8)
        *out = get_le64(v);
    else if (rc == 0)
        rc = KCP_EIO;
    free(v);
    return rc;
}

static int meta_put_u64(struct kcp_cluster *c, const char *name, uint64_t v)
{
    unsigned char b[8];
    put_le64(b, v);
    return cl_logstore_meta_put(c->log, name, b, sizeof(b));
}

static void bootstrap_on_persisted(struct cl_logstore *ls, int status, void *data)
{
    struct kcp_cluster *c = data;
    if (status == 0)
        meta_put_u64(c, "bootstrap", 0);
}

/*
 * A founder's first start: its own one-voter configuration as entry 1 (raft.h, "Bootstrap"),
 * or, for a data dir that holds objects written before it had Raft, as the configuration of a
 * snapshot at the store's revision. The id and a "bootstrap" marker are durable first, so a
 * crash part-way founds the same server again on the next start.
 */
static int found(struct kcp_cluster *c, struct cl_logstore_loaded *l)
{
    struct kcp_raft_config cfg = {.n = 1};
    cfg.servers[0].id = c->id;
    cfg.servers[0].role = KCP_RAFT_VOTER;
    snprintf(cfg.servers[0].address, sizeof(cfg.servers[0].address), "%s@%s", c->name, c->address);
    uint64_t rev = kcp_store_revision(c->store);
    struct kcp_raft_hard_state hs = {.term = 1, .vote = 0, .commit = rev ? rev : 1};
    int rc = cl_logstore_save_hard_state(c->log, &hs, true);
    if (rc != 0)
        return rc;
    if (rev) {
        char *snap = kcp_sprintf("%s/raft/snap-%llu", c->data_dir, (unsigned long long)rev);
        rc = kcp_store_snapshot_write(c->store, 0, snap, NULL);
        free(snap);
        if (rc == 0)
            rc = cl_logstore_compact(c->log, rev, 1, &cfg, rev);
        if (rc == 0)
            rc = cl_logstore_append(c->log, 0, NULL, 0, bootstrap_on_persisted, c);
    } else {
        struct kcp_buf b = KCP_BUF_INIT;
        kcp_raft_config_encode(&cfg, &b);
        struct kcp_raft_entry e = {.term = 1, .index = 1, .type = KCP_RAFT_ENTRY_CONFIG};
        e.data.base = b.data;
        e.data.len = b.len;
        rc = cl_logstore_append(c->log, 0, &e, 1, bootstrap_on_persisted, c);
        /* START gets it as if loaded (cl_logstore_loaded_free releases it). */
        l->entries = kcp_calloc(1, sizeof(*l->entries));
        l->entries[0] = e;
        l->entries[0].data.base = kcp_buf_detach(&b);
        l->n = 1;
    }
    if (rc != 0)
        return rc;
    /* What START is given is what the disk will hold once the queued write lands; the core
     * counts its own entries as durable only through PERSISTED, so nothing commits early. */
    l->hs = hs;
    if (rev) {
        l->has_snapshot = true;
        l->snap_index = rev;
        l->snap_term = 1;
        l->snap_config = cfg;
    }
    kcp_log(KCP_LOG_INFO, "cluster", "founded a new cluster: %s is its first member", c->name);
    return 0;
}

static void force_on_persisted(struct cl_logstore *ls, int status, void *data)
{
    if (status == 0)
        kcp_log(KCP_LOG_INFO, "cluster", "the one-member configuration is durable");
}

/*
 * --force-new-cluster (docs/RAFT.md, "Losing the quorum"): appends, in a term above any seen, a
 * configuration with this server as the only voter. Configurations take effect when appended,
 * so the server elects itself and commits its whole log, including entries the old cluster
 * never committed (as etcd's flag does). The data kept is this server's.
 */
static int force_new_cluster(struct kcp_cluster *c, struct cl_logstore_loaded *l)
{
    uint64_t last_index = l->n ? l->entries[l->n - 1].index : l->snap_index;
    uint64_t last_term = l->n ? l->entries[l->n - 1].term : l->snap_term;
    uint64_t term = (l->hs.term > last_term ? l->hs.term : last_term) + 1;
    struct kcp_raft_config cfg = {.n = 1};
    cfg.servers[0].id = c->id;
    cfg.servers[0].role = KCP_RAFT_VOTER;
    snprintf(cfg.servers[0].address, sizeof(cfg.servers[0].address), "%s@%s", c->name, c->address);
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_raft_config_encode(&cfg, &b);
    struct kcp_raft_entry e = {.term = term, .index = last_index + 1, .type = KCP_RAFT_ENTRY_CONFIG};
    e.data.base = b.data;
    e.data.len = b.len;
    struct kcp_raft_hard_state hs = {.term = term, .vote = 0, .commit = l->hs.commit};
    int rc = cl_logstore_save_hard_state(c->log, &hs, true);
    if (rc == 0)
        rc = cl_logstore_append(c->log, 0, &e, 1, force_on_persisted, c);
    if (rc != 0) {
        kcp_buf_free(&b);
        return rc;
    }
    l->entries = kcp_realloc(l->entries, (l->n + 1) * sizeof(*l->entries));
    l->entries[l->n] = e;
    l->entries[l->n].data.base = kcp_buf_detach(&b);
    l->n++;
    l->hs = hs;
    kcp_log(KCP_LOG_WARN, "cluster",
            "--force-new-cluster: %s is now the only member (term %llu, configuration at %llu)",
            c->name, (unsigned long long)term, (unsigned long long)e.index);
    return 0;
}

static void tick_promote(struct kcp_cluster *c)
{
    if (c->role != KCP_RAFT_LEADER)
        return;
    struct kcp_raft_status st;
    kcp_raft_status(c->raft, &st);
    for (uint32_t i = 0; st.config && i < st.config->n; i++) {
        const struct kcp_raft_server *s = &st.config->servers[i];
        struct kcp_raft_progress pr;
        /* Caught up, and heard from: promoting a silent learner would cost the quorum. */
        if (s->role != KCP_RAFT_LEARNER || kcp_raft_progress_get(c->raft, s->id, &pr) != 0 ||
            !pr.caught_up || !pr.active || pr.match == 0 || pr.match + 64 < st.commit)
            continue;
        struct kcp_raft_event ev = {.type = KCP_RAFT_EV_CHANGE};
        ev.change.type = KCP_RAFT_PROMOTE;
        ev.change.id = s->id;
        if (cluster_step(c, &ev) == 0)
            kcp_log(KCP_LOG_INFO, "cluster", "promoting %s to voter", s->address);
        return; /* one change at a time */
    }
}

static void tick_on_fire(uv_timer_t *t)
{
    struct kcp_cluster *c = t->data;
    if (c->closing)
        return;
    cluster_props_expire(c, cluster_now(c));
    cluster_props_retry(c);
    cluster_reads_retry(c);
    cluster_reads_check(c);
    cluster_joins_retry(c);
    cluster_peers_dial(c);
    tick_promote(c);
    cluster_install_try(c);
    cluster_snapshot_tick(c);
}

int kcp_cluster_open(struct kcp_cluster **out, const struct kcp_cluster_config *cfg)
{
    struct cl_logstore_loaded l;
    bool loaded = false;
    memset(&l, 0, sizeof(l));
    struct kcp_cluster *c = kcp_calloc(1, sizeof(*c));
    c->loop = cfg->loop;
    c->store = cfg->store;
    c->http = cfg->http;
    c->data_dir = kcp_strdup(cfg->data_dir);
    c->name = kcp_strdup(cfg->node_name);
    c->address = kcp_strdup(cfg->address);
    c->snap_every = cfg->snapshot_entries ? cfg->snapshot_entries : CLUSTER_SNAPSHOT_EVERY;
    char *dir = kcp_sprintf("%s/raft", cfg->data_dir);
    char *ca = kcp_pki_cert_path(cfg->data_dir, "ca");
    char *crt = kcp_pki_cert_path(cfg->data_dir, "peer");
    char *key = kcp_pki_key_path(cfg->data_dir, "peer");
    int rc = cl_logstore_open(&c->log, c->loop, dir);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "opening the Raft log in %s: %s", dir,
                kcp_error_message(rc));
        goto done;
    }
    if ((rc = kcp_tls_client_config_new(&c->tls, ca, crt, key)) != 0)
        goto done;

    uint64_t bootstrap = 0;
    rc = meta_u64(c, "id", &c->id);
    if (rc == KCP_ENOTFOUND) {
        c->id = cfg->join_id;
        while (c->id == 0)
            c->id = kcp_rng_next(&c->loop->rng);
        bootstrap = cfg->join_id ? 0 : 1;
        if ((rc = meta_put_u64(c, "bootstrap", bootstrap)) != 0 ||
            (rc = meta_put_u64(c, "id", c->id)) != 0)
            goto done;
    } else if (rc != 0 || (rc = meta_u64(c, "bootstrap", &bootstrap)) != 0) {
        goto done;
    }
    if ((rc = cl_logstore_load(c->log, &l)) != 0)
        goto done;
    loaded = true;
    if (bootstrap && l.n == 0 && !l.has_snapshot && (rc = found(c, &l)) != 0)
        goto done;
    if (cfg->force_new_cluster && (rc = force_new_cluster(c, &l)) != 0)
        goto done;

    /* A snapshot the log store recorded but the store never received (a crash while it
     * drained): install the staged file now, before anything reads the store. */
    if (l.has_snapshot && kcp_store_revision(c->store) < l.snap_index) {
        c->snap_index = 0;
        rc = cluster_install_file(c, l.snap_index);
        if (rc != 0) {
            kcp_log(KCP_LOG_ERROR, "cluster",
                    "the store is behind the Raft snapshot at %llu and the staged file cannot be "
                    "installed: %s",
                    (unsigned long long)l.snap_index, kcp_error_message(rc));
            goto done;
        }
    }

    struct kcp_raft_options ro;
    kcp_raft_options_default(&ro, c->id);
    ro.seed = kcp_rng_next(&c->loop->rng);
    if (cfg->election_ms)
        ro.election_timeout_ms = cfg->election_ms;
    if (cfg->heartbeat_ms)
        ro.heartbeat_ms = cfg->heartbeat_ms;
    /* Entries kept behind a snapshot for slow followers: a quarter of the interval, at most
     * the core's default. */
    if (ro.compact_trailing > c->snap_every / 4)
        ro.compact_trailing = c->snap_every / 4;
    if ((rc = kcp_raft_new(&c->raft, &ro)) != 0)
        goto done;

    uv_timer_init(&c->loop->uv, &c->deadline);
    uv_timer_init(&c->loop->uv, &c->tick);
    uv_idle_init(&c->loop->uv, &c->kick);
    c->deadline.data = c->tick.data = c->kick.data = c;
    c->handles_open = 3;
    c->snap_reads_tail = &c->snap_reads;
    c->props_tail = &c->props;
    /*
     * Proposal tags must not repeat across restarts: an entry proposed by the previous process
     * may commit after this one started, and must not be taken for one of this process's
     * writes. Sequence numbers start at a random point of the 64-bit space.
     */
    c->next_seq = kcp_rng_next(&c->loop->rng) >> 1;
    cluster_proposer_init(c);
    cluster_routes(c);

    struct kcp_raft_snapshot_meta snap = {.index = l.snap_index, .term = l.snap_term,
                                          .config = &l.snap_config};
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_START};
    ev.start.hard_state = l.hs;
    ev.start.snapshot = l.has_snapshot ? &snap : NULL;
    ev.start.entries = l.entries;
    ev.start.n_entries = l.n;
    uint64_t applied = kcp_store_revision(c->store);
    if (l.has_snapshot && applied < l.snap_index)
        applied = l.snap_index;
    ev.start.applied = applied;
    c->applied = applied;
    c->last_normal = kcp_store_revision(c->store);
    c->snap_index = l.has_snapshot ? l.snap_index : 0;
    if ((rc = cluster_step(c, &ev)) != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "starting Raft: %s", kcp_error_message(rc));
        goto done;
    }
    struct kcp_raft_status st;
    kcp_raft_status(c->raft, &st);
    if (st.config)
        cluster_peers_sync(c, st.config);
    uv_timer_start(&c->tick, tick_on_fire, CLUSTER_TICK_MS, CLUSTER_TICK_MS);
    kcp_log(KCP_LOG_INFO, "cluster", "%s (id %016llx) starts with log %llu..%llu, applied %llu%s",
            c->name, (unsigned long long)c->id, (unsigned long long)st.first_index,
            (unsigned long long)st.last_index, (unsigned long long)applied,
            st.config ? "" : "; waiting for the leader to send the log");
    *out = c;
    c = NULL;
done:
    if (loaded)
        cl_logstore_loaded_free(&l);
    free(dir);
    free(ca);
    free(crt);
    free(key);
    if (c) {
        /* Only reached before the handles exist or after START failed (then they do). */
        kcp_store_set_proposer(cfg->store, NULL);
        if (c->raft)
            kcp_raft_free(c->raft);
        if (c->log)
            cl_logstore_close(c->log, NULL, NULL);
        if (c->tls)
            kcp_tls_client_config_free(c->tls);
        free(c->data_dir);
        free(c->name);
        free(c->address);
        if (!c->handles_open)
            free(c);
        rc = rc ? rc : KCP_EIO;
    }
    return rc;
}

bool kcp_cluster_ready(const struct kcp_cluster *c)
{
    return c && !c->failed && !c->closing && c->leader_id != 0;
}

bool kcp_cluster_is_leader(const struct kcp_cluster *c)
{
    return c && c->role == KCP_RAFT_LEADER;
}

void kcp_cluster_stats(const struct kcp_cluster *c, struct kcp_cluster_stats *out)
{
    struct kcp_raft_status st;
    struct cl_logstore_stats ls;
    memset(out, 0, sizeof(*out));
    kcp_raft_status(c->raft, &st);
    cl_logstore_stats(c->log, &ls);
    out->id = c->id;
    out->term = st.term;
    out->leader_id = st.leader_id;
    out->leader = c->role == KCP_RAFT_LEADER;
    out->commit = st.commit;
    out->applied = c->applied;
    out->last_index = st.last_index;
    out->first_index = st.first_index;
    out->snapshot_index = st.snapshot_index;
    for (uint32_t i = 0; st.config && i < st.config->n; i++) {
        out->members++;
        out->voters += st.config->servers[i].role == KCP_RAFT_VOTER;
    }
    out->proposals_waiting = c->nprops;
    out->log_fsyncs = ls.fsyncs;
    out->log_bytes_written = ls.bytes_written;
    out->log_batches = ls.batches;
    out->failed = c->failed;
}

void kcp_cluster_on_leadership(struct kcp_cluster *c, kcp_cluster_leader_cb cb, void *data)
{
    c->leader_cb = cb;
    c->leader_data = data;
}

/* ---- close ------------------------------------------------------------------------------ */

static void log_on_closed(void *data)
{
    struct kcp_cluster *c = data;
    void (*cb)(void *) = c->close_cb;
    void *cb_data = c->close_data;
    kcp_raft_free(c->raft);
    kcp_tls_client_config_free(c->tls);
    free(c->data_dir);
    free(c->name);
    free(c->address);
    free(c);
    if (cb)
        cb(cb_data);
}

static void handle_on_close(uv_handle_t *h)
{
    struct kcp_cluster *c = h->data;
    if (--c->handles_open == 0)
        cl_logstore_close(c->log, log_on_closed, c);
}

static void finish_close(struct kcp_cluster *c)
{
    c->closing = true;
    kcp_store_set_proposer(c->store, NULL);
    /* Without the log in front, what the store publishes must be in LMDB first again. */
    kcp_store_set_deferred(c->store, 0);
    cluster_props_fail_all(c, KCP_ECLOSED);
    while (c->reads) {
        struct cl_read *r = c->reads;
        c->reads = r->next;
        r->cb(r->data, KCP_ECLOSED);
        free(r);
    }
    cluster_joins_free(c);
    cluster_peers_free(c);
    cluster_snapshot_free(c);
    uv_close((uv_handle_t *)&c->deadline, handle_on_close);
    uv_close((uv_handle_t *)&c->tick, handle_on_close);
    uv_close((uv_handle_t *)&c->kick, handle_on_close);
}

static void transfer_on_wait(uv_timer_t *t)
{
    finish_close(t->data);
}

void kcp_cluster_step_down(struct kcp_cluster *c)
{
    if (!c || c->role != KCP_RAFT_LEADER || !c->peers || c->transferring)
        return;
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_TRANSFER};
    if (cluster_step(c, &ev) == 0) {
        c->transferring = true;
        kcp_log(KCP_LOG_INFO, "cluster", "handing leadership over before stopping");
    }
}

void kcp_cluster_close(struct kcp_cluster *c, void (*cb)(void *data), void *data)
{
    c->close_cb = cb;
    c->close_data = data;
    kcp_cluster_step_down(c);
    if (c->role == KCP_RAFT_LEADER && c->transferring) {
        /* Not handed over yet: give the successor a moment to take the lead. */
        uv_timer_stop(&c->tick);
        uv_timer_start(&c->tick, transfer_on_wait, TRANSFER_WAIT_MS, 0);
        return;
    }
    finish_close(c);
}
