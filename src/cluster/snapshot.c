/*
 * Snapshots: the state machine is the store, so a snapshot is the store's objects written to a
 * file (kcp_store_snapshot_write) as of the last store entry at or below a Raft index. Taking one
 * lets the core compact its log; a follower too far behind (or new) is sent the file in chunks,
 * stages it, and installs it into its store (kcp_store_install).
 *
 * Files under DIR/raft: snap-<index> (the latest local snapshot, older ones deleted once a newer
 * one is recorded) and incoming (a snapshot being received). Events that answer an update
 * (SNAPSHOT_CHUNK for the leader's reads, SNAPSHOT_PERSISTED for a staged file) are stepped
 * after the update is carried out: the core is never re-entered.
 */
#include "cluster_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *snap_path(const struct kcp_cluster *c, uint64_t index)
{
    return kcp_sprintf("%s/raft/snap-%llu", c->data_dir, (unsigned long long)index);
}

static char *incoming_path(const struct kcp_cluster *c)
{
    return kcp_sprintf("%s/raft/incoming", c->data_dir);
}

/* ---- taking a snapshot (every snap_every applied entries) -------------------------------- */

void cluster_snapshot_tick(struct kcp_cluster *c)
{
    if (c->installing || c->failed)
        return;
    if (!c->snap_want_index) {
        if (c->applied < c->snap_index + c->snap_every || c->last_normal <= c->snap_index)
            return;
        /*
         * At the last store entry, not at applied: the log is compacted only up to what LMDB
         * holds durably, and a restart that finds LMDB below the snapshot's index takes it for
         * an install cut short (cluster.c). Raft's own entries after it stay in the log.
         */
        c->snap_want_index = c->last_normal;
        c->snap_want_rev = c->last_normal;
    }
    /* The store publishes before LMDB has an entry (kcp_store_set_deferred): the log must keep
     * everything LMDB may lack, so compaction waits until the store's commit is durable. */
    if (kcp_store_synced(c->store) < c->snap_want_rev) {
        kcp_store_flush(c->store);
        return; /* try on a later tick */
    }
    uint64_t index = c->snap_want_index, rev = c->snap_want_rev, bytes = 0;
    c->snap_want_index = c->snap_want_rev = 0;
    char *path = snap_path(c, index);
    int rc = kcp_store_snapshot_write(c->store, rev, path, &bytes);
    free(path);
    if (rc != 0) {
        /* KCP_EGONE: the store moved past rev's window meanwhile; the next tick tries anew. */
        KCP_LOG_V(1, "cluster", "snapshot at %llu: %s", (unsigned long long)index,
                  kcp_error_message(rc));
        return;
    }
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_COMPACT};
    ev.compact.index = index;
    rc = cluster_step(c, &ev);
    KCP_LOG_V(1, "cluster", "snapshot at %llu (%llu bytes): %s", (unsigned long long)index,
              (unsigned long long)bytes, rc ? kcp_error_message(rc) : "log compacted");
}

/* The core recorded a snapshot: record it in the log store and drop older files. */
static void compacted(struct kcp_cluster *c, const struct kcp_raft_update *u)
{
    uint64_t old = c->snap_index;
    int rc = cl_logstore_compact(c->log, u->snapshot.index, u->snapshot.term, u->snapshot.config,
                                 u->log_first ? u->log_first - 1 : 0);
    if (rc != 0)
        kcp_log(KCP_LOG_ERROR, "cluster", "recording the snapshot at %llu: %s",
                (unsigned long long)u->snapshot.index, kcp_error_message(rc));
    c->snap_index = u->snapshot.index;
    if (old && old != c->snap_index) {
        char *p = snap_path(c, old);
        unlink(p);
        free(p);
    }
}

/* ---- sending (leader) ------------------------------------------------------------------- */

static void read_chunk(struct kcp_cluster *c, const struct kcp_raft_snapshot_read *rd)
{
    char *path = snap_path(c, rd->index);
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_SNAPSHOT_CHUNK};
    ev.snapshot_chunk.to = rd->to;
    ev.snapshot_chunk.index = rd->index;
    ev.snapshot_chunk.offset = rd->offset;
    void *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < rd->offset) {
        ev.snapshot_chunk.status = KCP_ENOTFOUND; /* replaced by a newer one: the core restarts */
    } else {
        size_t want = rd->max_len;
        if ((uint64_t)st.st_size - rd->offset < want)
            want = (size_t)((uint64_t)st.st_size - rd->offset);
        buf = kcp_malloc(want ? want : 1);
        ssize_t n = pread(fd, buf, want, (off_t)rd->offset);
        if (n < 0 || (size_t)n != want) {
            ev.snapshot_chunk.status = KCP_EIO;
        } else {
            ev.snapshot_chunk.data.base = buf;
            ev.snapshot_chunk.data.len = want;
            ev.snapshot_chunk.last = rd->offset + want == (uint64_t)st.st_size;
        }
    }
    if (fd >= 0)
        close(fd);
    free(path);
    cluster_step(c, &ev);
    free(buf);
}

/* ---- receiving (follower) --------------------------------------------------------------- */

static void stage_chunk(struct kcp_cluster *c, const struct kcp_raft_snapshot_chunk *ch)
{
    char *path = incoming_path(c);
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (ch->offset == 0 ? O_TRUNC : 0);
    int fd = open(path, flags, 0600);
    bool ok = fd >= 0;
    if (ok && ch->offset != 0) {
        struct stat st;
        /* Chunks come in order; anything else is a stale resend the core will redo. */
        ok = fstat(fd, &st) == 0 && (uint64_t)st.st_size == ch->offset;
    }
    if (ok && ch->data.len)
        ok = pwrite(fd, ch->data.base, ch->data.len, (off_t)ch->offset) == (ssize_t)ch->data.len;
    if (ok && ch->last)
        ok = fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    free(path);
    if (!ok) {
        KCP_LOG_V(1, "cluster", "staging snapshot %llu at %llu failed",
                  (unsigned long long)ch->index, (unsigned long long)ch->offset);
        return;
    }
    if (ch->last) {
        c->staged = true;
        c->staged_index = ch->index;
        c->staged_term = ch->term;
    }
}

/*
 * Install: the store must have nothing in flight, so this may wait a few loop turns; meanwhile
 * the server takes no messages (cluster_receive_allowed) and sends none (the flush waits), so the
 * leader hears "installed" only once it is durable.
 */
static void install_on_durable(struct cl_logstore *ls, int status, void *data);

static void install_begin(struct kcp_cluster *c, const struct kcp_raft_snapshot_meta *m)
{
    c->installing = true;
    c->install_index = m->index;
    c->install_term = m->term;
    c->install_config = *m->config;
    kcp_log(KCP_LOG_INFO, "cluster", "installing the leader's snapshot at %llu",
            (unsigned long long)m->index);
    /*
     * The log store records the snapshot now, in queue order before any entry that follows it
     * (the store may take a few loop turns to drain). Should the process die before the store
     * holds it, open installs raft/incoming first (cluster.c).
     */
    int rc = cl_logstore_compact(c->log, m->index, m->term, m->config, UINT64_MAX);
    if (rc == 0)
        rc = cl_logstore_append(c->log, 0, NULL, 0, install_on_durable, c);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "recording the snapshot at %llu: %s; stopping",
                (unsigned long long)m->index, kcp_error_message(rc));
        c->failed = true;
        kcp_loop_stop(c->loop);
        return;
    }
    c->install_recording = true;
    c->install_pending_store = true;
    cluster_install_try(c);
}

static void install_finish(struct kcp_cluster *c)
{
    if (c->install_recording || c->install_pending_store)
        return;
    c->installing = false;
    cluster_roster_sync(c); /* the snapshot's configuration */
    cluster_peers_flush(c);
    cluster_reads_check(c);
}

static void install_on_durable(struct cl_logstore *ls, int status, void *data)
{
    struct kcp_cluster *c = data;
    if (status != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "recording the installed snapshot: %s; writes stop",
                kcp_error_message(status));
        c->failed = true;
        return;
    }
    c->install_recording = false;
    install_finish(c);
}

/* Replaces the store's contents with the staged file at index; 0 or the store's error. */
int cluster_install_file(struct kcp_cluster *c, uint64_t index)
{
    char *path = incoming_path(c);
    int rc = kcp_store_install(c->store, index, path);
    if (rc == 0) {
        /* The staged file becomes the local snapshot (this server may have to send it on). */
        char *dst = snap_path(c, index);
        rename(path, dst);
        free(dst);
        if (c->snap_index && c->snap_index != index) {
            char *old = snap_path(c, c->snap_index);
            unlink(old);
            free(old);
        }
        c->snap_index = index;
        c->applied = index;
        c->last_normal = index;
    }
    free(path);
    return rc;
}

void cluster_install_try(struct kcp_cluster *c)
{
    if (!c->installing || !c->install_pending_store)
        return;
    if (!kcp_store_idle(c->store)) {
        kcp_store_flush(c->store); /* published entries must reach LMDB first */
        return;
    }
    int rc = cluster_install_file(c, c->install_index);
    if (rc == KCP_ECONFLICT)
        return; /* entries still in flight: the next tick */
    if (rc != 0) {
        /* The core believes the snapshot installed and the log store records it: stopping is
         * the safe way on; open installs raft/incoming again. */
        kcp_log(KCP_LOG_ERROR, "cluster", "installing the snapshot at %llu: %s; stopping",
                (unsigned long long)c->install_index, kcp_error_message(rc));
        c->failed = true;
        kcp_loop_stop(c->loop);
        return;
    }
    c->install_pending_store = false;
    install_finish(c);
}

/* ---- from the update, and afterwards ---------------------------------------------------- */

void cluster_snapshot_update(struct kcp_cluster *c, const struct kcp_raft_update *u)
{
    if (u->install)
        install_begin(c, &u->install_meta);
    for (size_t i = 0; i < u->n_chunks; i++)
        stage_chunk(c, &u->chunks[i]);
    for (size_t i = 0; i < u->n_snapshot_reads; i++) {
        struct cl_snap_read *r = kcp_calloc(1, sizeof(*r));
        r->rd = u->snapshot_reads[i];
        *c->snap_reads_tail = r;
        c->snap_reads_tail = &r->next;
    }
    if (u->compacted)
        compacted(c, u);
}

void cluster_snapshot_deferred(struct kcp_cluster *c)
{
    while (c->snap_reads && !c->closing) {
        struct cl_snap_read *r = c->snap_reads;
        c->snap_reads = r->next;
        if (!c->snap_reads)
            c->snap_reads_tail = &c->snap_reads;
        read_chunk(c, &r->rd);
        free(r);
    }
    if (c->staged && !c->closing) {
        c->staged = false;
        struct kcp_raft_event ev = {.type = KCP_RAFT_EV_SNAPSHOT_PERSISTED};
        ev.persisted.index = c->staged_index;
        ev.persisted.term = c->staged_term;
        cluster_step(c, &ev);
    }
}

void cluster_snapshot_free(struct kcp_cluster *c)
{
    while (c->snap_reads) {
        struct cl_snap_read *r = c->snap_reads;
        c->snap_reads = r->next;
        free(r);
    }
    c->snap_reads_tail = &c->snap_reads;
}
