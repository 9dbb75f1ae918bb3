/*
 * The Raft log on LMDB: records, loading, and group commit on libuv's work queue.
 *
 * Happy path: append copies the entries into an op on the pending queue and arms the kick -> at
 * the next loop turn every pending op (up to BATCH_BYTES of entries) becomes one batch -> a
 * work-pool thread applies the ops in queue order (truncate, append, compact) and the latest
 * unsynced hard state in one LMDB transaction, whose commit syncs once -> back on the loop, each
 * append's callback fires in order, and what was queued meanwhile is the next batch, at once.
 * Failure modes: the commit fails (map full past max_map_size, EIO from the sync) -> KCP_EIO for
 * the batch, KCP_EUNAVAILABLE for the queue and every later call; a synchronous write on the
 * loop thread fails -> the same. The disk keeps the last committed transaction either way, and a
 * crash at any moment leaves exactly that: LMDB's commit is atomic.
 */
#include "logstore.h"

#include <lmdb.h>
#include <uv.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_VERSION 1
#define LOG_HEADER 9   /* u64 term | u8 type */
#define HS_RECORD 32   /* u64 term | vote | commit | seq */
#define SNAP_HEADER 16 /* u64 index | u64 term */
/* Entry bytes that close a batch (which takes one op at least). */
#define BATCH_BYTES ((size_t)64 << 20)
#define DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define DEFAULT_MAX_MAP_SIZE ((size_t)8 << 30)

/* Names the log store writes itself; meta_put refuses them ("id" is shared: a u64 either way). */
static const char *const reserved_names[] = {"format", "hard_state", "snapshot"};

enum op_type { OP_APPEND, OP_COMPACT };

/* One queued call, freed once its batch is done. */
struct ls_op {
    struct ls_op *next;
    enum op_type type;
    /* OP_APPEND */
    uint64_t truncate_from;
    struct kcp_raft_entry *entries; /* the entries, then their data: one allocation */
    size_t n;
    size_t bytes;
    cl_logstore_cb cb;
    void *data;
    /* OP_COMPACT */
    uint64_t snap_index, snap_term, upto;
    struct kcp_buf config;
};

struct ls_batch {
    uv_work_t work;
    struct cl_logstore *ls;
    struct ls_op *head;
    bool has_hs;
    struct kcp_raft_hard_state hs;
    uint64_t hs_seq;
    /* Written by the worker, read after it. */
    int rc;
    bool changed; /* anything put or deleted: the commit syncs */
    uint64_t entries, bytes;
};

struct cl_logstore {
    struct kcp_loop *loop;
    struct cl_logstore_options opts;
    MDB_env *env;
    MDB_dbi dbi_log, dbi_meta;
    /*
     * Held around every transaction, on either thread: whoever holds it may grow the map, since
     * mdb_env_set_mapsize must not run while another thread has a transaction open.
     */
    uv_mutex_t lock;
    size_t map_size; /* under lock */

    uint64_t last; /* last index once every queued op applies; the snapshot's if the log is empty */
    struct kcp_raft_hard_state hs; /* the latest saved */
    uint64_t hs_seq;               /* of the latest save; the one on disk is never higher */
    bool hs_dirty;                 /* the latest was not written synchronously: a batch will */

    struct ls_op *pending, **pending_last;
    size_t pending_appends;
    struct ls_batch *inflight; /* the batch being committed off the loop thread */
    uv_idle_t kick;            /* starts batches and the close at the next loop turn */
    bool kick_active;
    int failed; /* a write failed: everything stops (never diverge) */

    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
    struct cl_logstore_stats st;
};

/* ---- records ---------------------------------------------------------------------------- */

static void le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t rd_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Log keys are big-endian so that LMDB's byte order is index order. */
static void be64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t rd_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static MDB_val name_val(const char *name)
{
    return (MDB_val){strlen(name), (void *)name};
}

static int lmdb_err(const char *what, int rc)
{
    kcp_log(KCP_LOG_ERROR, "cluster", "raft log: lmdb %s: %s", what, mdb_strerror(rc));
    return KCP_EIO;
}

static int corrupt(const char *what)
{
    kcp_log(KCP_LOG_ERROR, "cluster", "raft log: corrupt %s", what);
    return KCP_EIO;
}

static bool entry_type_valid(unsigned t)
{
    return t == KCP_RAFT_ENTRY_NORMAL || t == KCP_RAFT_ENTRY_NOOP || t == KCP_RAFT_ENTRY_CONFIG;
}

static void hs_encode(unsigned char *p, const struct kcp_raft_hard_state *hs, uint64_t seq)
{
    le64(p, hs->term);
    le64(p + 8, hs->vote);
    le64(p + 16, hs->commit);
    le64(p + 24, seq);
}

/* The hard state on disk (zero and seq 0 when never written). */
static int hs_read(struct cl_logstore *ls, MDB_txn *txn, struct kcp_raft_hard_state *out,
                   uint64_t *seq)
{
    MDB_val k = name_val("hard_state"), v;
    int rc = mdb_get(txn, ls->dbi_meta, &k, &v);
    memset(out, 0, sizeof(*out));
    *seq = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return lmdb_err("get hard state", rc);
    if (v.mv_size != HS_RECORD)
        return corrupt("hard state");
    const unsigned char *p = v.mv_data;
    out->term = rd_le64(p);
    out->vote = rd_le64(p + 8);
    out->commit = rd_le64(p + 16);
    *seq = rd_le64(p + 24);
    return 0;
}

/* The snapshot meta on disk; *found false when there is none. */
static int snap_read(struct cl_logstore *ls, MDB_txn *txn, bool *found, uint64_t *index,
                     uint64_t *term, struct kcp_raft_config *cfg)
{
    MDB_val k = name_val("snapshot"), v;
    int rc = mdb_get(txn, ls->dbi_meta, &k, &v);
    *found = false;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return lmdb_err("get snapshot", rc);
    const unsigned char *p = v.mv_data;
    if (v.mv_size < SNAP_HEADER ||
        kcp_raft_config_decode(cfg, p + SNAP_HEADER, v.mv_size - SNAP_HEADER) != 0)
        return corrupt("snapshot meta");
    *found = true;
    *index = rd_le64(p);
    *term = rd_le64(p + 8);
    return 0;
}

/* ---- open ------------------------------------------------------------------------------- */

/* Opens the databases, checks or writes the format, and reads what the queue starts from. */
static int meta_init(struct cl_logstore *ls)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k = name_val("format"), v;
    unsigned char fmt[4] = {FORMAT_VERSION, 0, 0, 0};
    struct kcp_raft_config *cfg = kcp_malloc(sizeof(*cfg));
    bool has_snap;
    uint64_t snap_index = 0, snap_term;
    int rc = mdb_txn_begin(ls->env, NULL, 0, &txn);
    if (rc != 0) {
        rc = lmdb_err("begin", rc);
        goto done;
    }
    if ((rc = mdb_dbi_open(txn, "log", MDB_CREATE, &ls->dbi_log)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ls->dbi_meta)) != 0) {
        rc = lmdb_err("open databases", rc);
        goto done;
    }
    rc = mdb_get(txn, ls->dbi_meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        v.mv_data = fmt;
        v.mv_size = sizeof(fmt);
        if ((rc = mdb_put(txn, ls->dbi_meta, &k, &v, 0)) != 0) {
            rc = lmdb_err("put format", rc);
            goto done;
        }
    } else if (rc != 0) {
        rc = lmdb_err("get format", rc);
        goto done;
    } else if (v.mv_size != 4 || memcmp(v.mv_data, fmt, 4) != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: unknown format");
        rc = KCP_EIO;
        goto done;
    }
    if ((rc = hs_read(ls, txn, &ls->hs, &ls->hs_seq)) != 0 ||
        (rc = snap_read(ls, txn, &has_snap, &snap_index, &snap_term, cfg)) != 0)
        goto done;
    if ((rc = mdb_cursor_open(txn, ls->dbi_log, &cur)) != 0) {
        rc = lmdb_err("cursor", rc);
        goto done;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8) {
        ls->last = rd_be64(k.mv_data);
    } else if (rc == MDB_NOTFOUND) {
        ls->last = snap_index;
    } else {
        rc = rc ? lmdb_err("cursor last", rc) : corrupt("log key");
        goto done;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    rc = mdb_txn_commit(txn); /* writes only on a fresh store (the format) */
    txn = NULL;
    if (rc != 0)
        rc = lmdb_err("commit", rc);
done:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    free(cfg);
    return rc;
}

static int env_open(struct cl_logstore *ls, const char *dir)
{
    MDB_envinfo info;
    mdb_filehandle_t fd;
    int rc = kcp_mkdir_p(dir, 0700);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: cannot create %s", dir);
        return KCP_EIO;
    }
    if ((rc = mdb_env_create(&ls->env)) != 0)
        return lmdb_err("env create", rc);
    if ((rc = mdb_env_set_maxdbs(ls->env, 2)) != 0 ||
        (rc = mdb_env_set_mapsize(ls->env, ls->opts.map_size)) != 0)
        return lmdb_err("env setup", rc);
    /* MDB_NOTLS: transactions are not tied to threads (batches commit on the work pool). */
    if ((rc = mdb_env_open(ls->env, dir, MDB_NOTLS, 0600)) != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: lmdb open %s: %s", dir, mdb_strerror(rc));
        return KCP_EIO;
    }
    /* LMDB 0.9.24 opens data.mdb without O_CLOEXEC: a child process must not inherit it. */
    if (mdb_env_get_fd(ls->env, &fd) == 0)
        fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    /* The map is at least what the file already uses, which may exceed opts.map_size. */
    mdb_env_info(ls->env, &info);
    ls->map_size = info.me_mapsize;
    return 0;
}

int cl_logstore_open_opts(struct cl_logstore **out, struct kcp_loop *loop, const char *dir,
                          const struct cl_logstore_options *opts)
{
    struct cl_logstore *ls = kcp_calloc(1, sizeof(*ls));
    int rc;
    *out = NULL;
    ls->loop = loop;
    ls->opts.map_size = opts && opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
    ls->opts.max_map_size = opts && opts->max_map_size ? opts->max_map_size : DEFAULT_MAX_MAP_SIZE;
    if (ls->opts.max_map_size < ls->opts.map_size)
        ls->opts.max_map_size = ls->opts.map_size;
    ls->pending_last = &ls->pending;
    if (uv_mutex_init(&ls->lock) != 0) {
        free(ls);
        return KCP_EIO;
    }
    if ((rc = env_open(ls, dir)) != 0 || (rc = meta_init(ls)) != 0)
        goto done;
    if (uv_idle_init(&loop->uv, &ls->kick) != 0) {
        rc = KCP_EIO;
        goto done;
    }
    ls->kick.data = ls;
    KCP_LOG_V(1, "cluster", "raft log %s opened: last index %llu, term %llu", dir,
              (unsigned long long)ls->last, (unsigned long long)ls->hs.term);
    *out = ls;
    ls = NULL;
done:
    if (ls) {
        if (ls->env)
            mdb_env_close(ls->env);
        uv_mutex_destroy(&ls->lock);
        free(ls);
    }
    return rc;
}

int cl_logstore_open(struct cl_logstore **out, struct kcp_loop *loop, const char *dir)
{
    return cl_logstore_open_opts(out, loop, dir, NULL);
}

/* ---- load ------------------------------------------------------------------------------- */

void cl_logstore_loaded_free(struct cl_logstore_loaded *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->entries[i].data.base);
    free(l->entries);
    memset(l, 0, sizeof(*l));
}

static int load_entries(struct cl_logstore *ls, MDB_txn *txn, struct cl_logstore_loaded *out)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t cap = 0;
    int rc = mdb_cursor_open(txn, ls->dbi_log, &cur);
    if (rc != 0)
        return lmdb_err("cursor", rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *p = v.mv_data;
        if (k.mv_size != 8 || v.mv_size < LOG_HEADER || !entry_type_valid(p[8])) {
            rc = corrupt("log entry");
            goto done;
        }
        uint64_t index = rd_be64(k.mv_data);
        if (out->n && index != out->entries[out->n - 1].index + 1) {
            kcp_log(KCP_LOG_ERROR, "cluster", "raft log: gap after index %llu",
                    (unsigned long long)out->entries[out->n - 1].index);
            rc = KCP_EIO;
            goto done;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 64;
            out->entries = kcp_realloc(out->entries, cap * sizeof(*out->entries));
        }
        struct kcp_raft_entry *e = &out->entries[out->n++];
        e->index = index;
        e->term = rd_le64(p);
        e->type = (enum kcp_raft_entry_type)p[8];
        e->data.len = v.mv_size - LOG_HEADER;
        e->data.base = NULL;
        if (e->data.len) {
            e->data.base = kcp_malloc(e->data.len);
            memcpy(e->data.base, p + LOG_HEADER, e->data.len);
        }
    }
    rc = rc == MDB_NOTFOUND ? 0 : lmdb_err("cursor get", rc);
done:
    mdb_cursor_close(cur);
    return rc;
}

int cl_logstore_load(struct cl_logstore *ls, struct cl_logstore_loaded *out)
{
    MDB_txn *txn = NULL;
    uint64_t seq;
    memset(out, 0, sizeof(*out));
    uv_mutex_lock(&ls->lock);
    int rc = mdb_txn_begin(ls->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        rc = lmdb_err("begin", rc);
        goto done;
    }
    if ((rc = hs_read(ls, txn, &out->hs, &seq)) != 0 ||
        (rc = snap_read(ls, txn, &out->has_snapshot, &out->snap_index, &out->snap_term,
                        &out->snap_config)) != 0 ||
        (rc = load_entries(ls, txn, out)) != 0)
        goto done;
    uint64_t first_max = out->has_snapshot ? out->snap_index + 1 : 1;
    if (out->n && out->entries[0].index > first_max) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: starts at %llu, after the snapshot at %llu",
                (unsigned long long)out->entries[0].index, (unsigned long long)out->snap_index);
        rc = KCP_EIO;
    }
done:
    if (txn)
        mdb_txn_abort(txn);
    uv_mutex_unlock(&ls->lock);
    if (rc != 0)
        cl_logstore_loaded_free(out);
    return rc;
}

/* ---- batches: the worker's side --------------------------------------------------------- */

/* Deletes every entry with from <= index <= to. */
static int delete_range(MDB_cursor *cur, uint64_t from, uint64_t to, bool *changed)
{
    unsigned char key[8];
    MDB_val k = {8, key}, v;
    be64(key, from);
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || rd_be64(k.mv_data) > to)
            return 0;
        /* The cursor then sits on the following entry, which MDB_NEXT returns. */
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            return rc;
        *changed = true;
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int put_entry(MDB_cursor *cur, const struct kcp_raft_entry *e, uint64_t *bytes)
{
    unsigned char key[8];
    MDB_val k = {8, key}, v = {LOG_HEADER + e->data.len, NULL};
    be64(key, e->index);
    /* Indexes only grow past the last key (append checked it): MDB_APPEND skips the search,
     * MDB_RESERVE the copy. */
    int rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc != 0)
        return rc;
    unsigned char *p = v.mv_data;
    le64(p, e->term);
    p[8] = (unsigned char)e->type;
    if (e->data.len)
        memcpy(p + LOG_HEADER, e->data.base, e->data.len);
    *bytes += 8 + v.mv_size;
    return 0;
}

static int put_snapshot(struct cl_logstore *ls, MDB_txn *txn, const struct ls_op *op,
                        uint64_t *bytes)
{
    MDB_val k = name_val("snapshot"), v = {SNAP_HEADER + op->config.len, NULL};
    int rc = mdb_put(txn, ls->dbi_meta, &k, &v, MDB_RESERVE);
    if (rc != 0)
        return rc;
    unsigned char *p = v.mv_data;
    le64(p, op->snap_index);
    le64(p + 8, op->snap_term);
    memcpy(p + SNAP_HEADER, op->config.data, op->config.len);
    *bytes += k.mv_size + v.mv_size;
    return 0;
}

/*
 * The batch's hard state, unless a synchronous save has written a newer one since the batch
 * was formed (it ran on the loop thread between the batch's start and this transaction).
 */
static int put_batch_hs(struct cl_logstore *ls, MDB_txn *txn, const struct ls_batch *b,
                        uint64_t *bytes)
{
    unsigned char rec[HS_RECORD];
    MDB_val k = name_val("hard_state"), v;
    int rc = mdb_get(txn, ls->dbi_meta, &k, &v);
    if (rc == 0 && v.mv_size == HS_RECORD && rd_le64((unsigned char *)v.mv_data + 24) >= b->hs_seq)
        return 0;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    hs_encode(rec, &b->hs, b->hs_seq);
    v.mv_data = rec;
    v.mv_size = sizeof(rec);
    *bytes += k.mv_size + v.mv_size;
    return mdb_put(txn, ls->dbi_meta, &k, &v, 0);
}

static int write_ops(struct cl_logstore *ls, MDB_txn *txn, struct ls_batch *b)
{
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, ls->dbi_log, &cur);
    if (rc != 0)
        return rc;
    b->entries = b->bytes = 0;
    b->changed = false;
    for (const struct ls_op *op = b->head; op && rc == 0; op = op->next) {
        if (op->type == OP_APPEND) {
            if (op->truncate_from)
                rc = delete_range(cur, op->truncate_from, UINT64_MAX, &b->changed);
            for (size_t i = 0; i < op->n && rc == 0; i++)
                rc = put_entry(cur, &op->entries[i], &b->bytes);
            b->entries += op->n;
        } else {
            rc = put_snapshot(ls, txn, op, &b->bytes);
            if (rc == 0)
                rc = delete_range(cur, 0, op->upto, &b->changed);
        }
    }
    mdb_cursor_close(cur);
    if (rc == 0 && b->has_hs)
        rc = put_batch_hs(ls, txn, b, &b->bytes);
    b->changed |= b->bytes != 0;
    return rc;
}

/* The next map size after MDB_MAP_FULL at size, or 0 when at the limit. */
static size_t grown_size(const struct cl_logstore *ls, size_t size)
{
    if (size >= ls->opts.max_map_size)
        return 0;
    return size <= ls->opts.max_map_size / 2 ? size * 2 : ls->opts.max_map_size;
}

static void batch_on_work(uv_work_t *work)
{
    struct ls_batch *b = work->data;
    struct cl_logstore *ls = b->ls;
    int rc;
    uv_mutex_lock(&ls->lock);
    for (;;) {
        MDB_txn *txn = NULL;
        rc = mdb_txn_begin(ls->env, NULL, 0, &txn);
        if (rc == 0) {
            rc = write_ops(ls, txn, b);
            if (rc == 0)
                rc = mdb_txn_commit(txn); /* durable on return: LMDB syncs unless told not to */
            else
                mdb_txn_abort(txn);
        }
        size_t grown = rc == MDB_MAP_FULL ? grown_size(ls, ls->map_size) : 0;
        if (grown && mdb_env_set_mapsize(ls->env, grown) == 0) {
            ls->map_size = grown;
            continue; /* the whole batch again */
        }
        break;
    }
    uv_mutex_unlock(&ls->lock);
    b->rc = rc;
}

/* ---- batches: the loop's side ----------------------------------------------------------- */

static void op_free(struct ls_op *op)
{
    free(op->entries);
    kcp_buf_free(&op->config);
    free(op);
}

static void ops_finish(struct cl_logstore *ls, struct ls_op *op, int status)
{
    while (op) {
        struct ls_op *next = op->next;
        if (op->type == OP_APPEND)
            op->cb(ls, status, op->data);
        op_free(op);
        op = next;
    }
}

static void kick(struct cl_logstore *ls);

/* A write failed: KCP_EIO for batch_head, KCP_EUNAVAILABLE for the queue and from now on. */
static void store_fail(struct cl_logstore *ls, struct ls_op *batch_head)
{
    struct ls_op *pending = ls->pending;
    ls->failed = KCP_EIO;
    ls->pending = NULL;
    ls->pending_last = &ls->pending;
    ls->pending_appends = 0;
    ls->hs_dirty = false;
    ops_finish(ls, batch_head, KCP_EIO);
    ops_finish(ls, pending, KCP_EUNAVAILABLE);
    kick(ls); /* a close waiting for the queue can finish */
}

static bool batch_wanted(const struct cl_logstore *ls)
{
    if (ls->failed || ls->inflight)
        return false;
    /* Compactions and unsynced hard states ride with appends; a close flushes them. */
    return ls->pending_appends || (ls->closing && (ls->pending || ls->hs_dirty));
}

static void batch_on_done(uv_work_t *work, int status);

static void batch_start(struct cl_logstore *ls)
{
    struct ls_batch *b = kcp_calloc(1, sizeof(*b));
    struct ls_op **tail = &ls->pending;
    size_t bytes = 0;
    b->ls = ls;
    b->head = ls->pending;
    while (*tail && bytes < BATCH_BYTES) {
        bytes += (*tail)->bytes;
        if ((*tail)->type == OP_APPEND)
            ls->pending_appends--;
        tail = &(*tail)->next;
    }
    /* Split the queue after the batch's last op. */
    ls->pending = *tail;
    *tail = NULL;
    if (!ls->pending)
        ls->pending_last = &ls->pending;
    if (ls->hs_dirty) {
        b->has_hs = true;
        b->hs = ls->hs;
        b->hs_seq = ls->hs_seq;
        ls->hs_dirty = false;
    }
    b->work.data = b;
    ls->inflight = b;
    int rc = uv_queue_work(&ls->loop->uv, &b->work, batch_on_work, batch_on_done);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: queue work: %s", uv_strerror(rc));
        ls->inflight = NULL;
        store_fail(ls, b->head);
        free(b);
    }
}

static void batch_on_done(uv_work_t *work, int status)
{
    struct ls_batch *b = work->data;
    struct cl_logstore *ls = b->ls;
    ls->inflight = NULL;
    if (b->rc != 0 || status != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: commit: %s; writes stopped",
                b->rc ? mdb_strerror(b->rc) : "cancelled");
        store_fail(ls, b->head);
        free(b);
        return;
    }
    ls->st.batches++;
    if (b->changed) /* LMDB skips the sync of a transaction that changed nothing */
        ls->st.fsyncs++;
    ls->st.entries_written += b->entries;
    ls->st.bytes_written += b->bytes;
    /* Callbacks may queue more: that waits for the batch started below. */
    ops_finish(ls, b->head, 0);
    free(b);
    if (batch_wanted(ls))
        batch_start(ls); /* what arrived meanwhile is the next batch, at once */
    else
        kick(ls);
}

/* ---- close ------------------------------------------------------------------------------ */

static void kick_on_close(uv_handle_t *h)
{
    struct cl_logstore *ls = h->data;
    void (*cb)(void *) = ls->close_cb;
    void *data = ls->close_data;
    mdb_env_close(ls->env);
    uv_mutex_destroy(&ls->lock);
    free(ls);
    if (cb)
        cb(data);
}

static void kick_on_idle(uv_idle_t *idle)
{
    struct cl_logstore *ls = idle->data;
    uv_idle_stop(idle);
    ls->kick_active = false;
    if (batch_wanted(ls))
        batch_start(ls);
    if (ls->closing && !ls->inflight && !ls->pending && !uv_is_closing((uv_handle_t *)idle))
        uv_close((uv_handle_t *)idle, kick_on_close);
}

static void kick(struct cl_logstore *ls)
{
    if (ls->kick_active || uv_is_closing((uv_handle_t *)&ls->kick))
        return;
    ls->kick_active = true;
    uv_idle_start(&ls->kick, kick_on_idle);
}

void cl_logstore_close(struct cl_logstore *ls, void (*cb)(void *data), void *data)
{
    if (ls->closing)
        return;
    ls->closing = true;
    ls->close_cb = cb;
    ls->close_data = data;
    /* Never synchronously: the caller may be inside one of our callbacks. */
    kick(ls);
}

/* ---- queueing --------------------------------------------------------------------------- */

static int writable(const struct cl_logstore *ls)
{
    if (ls->closing)
        return KCP_ECLOSED;
    return ls->failed ? KCP_EUNAVAILABLE : 0;
}

static void enqueue(struct cl_logstore *ls, struct ls_op *op)
{
    *ls->pending_last = op;
    ls->pending_last = &op->next;
}

int cl_logstore_append(struct cl_logstore *ls, uint64_t truncate_from,
                       const struct kcp_raft_entry *entries, size_t n, cl_logstore_cb cb,
                       void *data)
{
    int rc = writable(ls);
    if (rc != 0)
        return rc;
    if (!cb || (n && !entries))
        return KCP_EINVAL;
    uint64_t last = ls->last;
    if (truncate_from && truncate_from - 1 < last)
        last = truncate_from - 1;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const struct kcp_raft_entry *e = &entries[i];
        if (e->index != last + 1 + i || !entry_type_valid(e->type) ||
            (e->data.len && !e->data.base) || e->data.len > SIZE_MAX / 2 - bytes)
            return KCP_EINVAL;
        bytes += e->data.len;
    }
    struct ls_op *op = kcp_calloc(1, sizeof(*op));
    op->type = OP_APPEND;
    op->truncate_from = truncate_from;
    op->n = n;
    op->bytes = bytes;
    op->cb = cb;
    op->data = data;
    if (n) {
        op->entries = kcp_malloc(n * sizeof(*entries) + bytes);
        unsigned char *p = (unsigned char *)(op->entries + n);
        for (size_t i = 0; i < n; i++) {
            op->entries[i] = entries[i];
            if (entries[i].data.len) {
                memcpy(p, entries[i].data.base, entries[i].data.len);
                op->entries[i].data.base = p;
                p += entries[i].data.len;
            }
        }
    }
    ls->last = n ? entries[n - 1].index : last;
    enqueue(ls, op);
    ls->pending_appends++;
    kick(ls);
    return 0;
}

int cl_logstore_compact(struct cl_logstore *ls, uint64_t snap_index, uint64_t snap_term,
                        const struct kcp_raft_config *cfg, uint64_t upto)
{
    int rc = writable(ls);
    if (rc != 0)
        return rc;
    if (!cfg || (upto > snap_index && upto < ls->last))
        return KCP_EINVAL;
    struct ls_op *op = kcp_calloc(1, sizeof(*op));
    op->type = OP_COMPACT;
    op->snap_index = snap_index;
    op->snap_term = snap_term;
    op->upto = upto;
    kcp_raft_config_encode(cfg, &op->config);
    if (upto >= ls->last)
        ls->last = snap_index; /* the log is empty: the next entry follows the snapshot */
    enqueue(ls, op);
    return 0;
}

/* ---- synchronous writes on the loop thread ---------------------------------------------- */

/* Puts one meta record in its own transaction, durable on return (waits for a batch commit). */
static int put_sync(struct cl_logstore *ls, const char *name, const void *val, size_t len)
{
    MDB_val k = name_val(name), v;
    int rc;
    uv_mutex_lock(&ls->lock);
    for (;;) {
        MDB_txn *txn = NULL;
        v.mv_data = (void *)val;
        v.mv_size = len;
        rc = mdb_txn_begin(ls->env, NULL, 0, &txn);
        if (rc == 0) {
            rc = mdb_put(txn, ls->dbi_meta, &k, &v, 0);
            if (rc == 0)
                rc = mdb_txn_commit(txn);
            else
                mdb_txn_abort(txn);
        }
        size_t grown = rc == MDB_MAP_FULL ? grown_size(ls, ls->map_size) : 0;
        if (grown && mdb_env_set_mapsize(ls->env, grown) == 0) {
            ls->map_size = grown;
            continue;
        }
        break;
    }
    uv_mutex_unlock(&ls->lock);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: write %s: %s; writes stopped", name,
                mdb_strerror(rc));
        store_fail(ls, NULL);
        return KCP_EIO;
    }
    ls->st.fsyncs++;
    ls->st.bytes_written += k.mv_size + len;
    return 0;
}

static int get_copy(struct cl_logstore *ls, const char *name, void **out, size_t *out_len)
{
    MDB_txn *txn = NULL;
    MDB_val k = name_val(name), v;
    *out = NULL;
    *out_len = 0;
    uv_mutex_lock(&ls->lock);
    int rc = mdb_txn_begin(ls->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        rc = lmdb_err("begin", rc);
        goto done;
    }
    rc = mdb_get(txn, ls->dbi_meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rc = KCP_ENOTFOUND;
    } else if (rc != 0) {
        rc = lmdb_err("get", rc);
    } else {
        char *copy = kcp_malloc(v.mv_size + 1);
        memcpy(copy, v.mv_data, v.mv_size);
        copy[v.mv_size] = '\0';
        *out = copy;
        *out_len = v.mv_size;
    }
    mdb_txn_abort(txn);
done:
    uv_mutex_unlock(&ls->lock);
    return rc;
}

int cl_logstore_save_hard_state(struct cl_logstore *ls, const struct kcp_raft_hard_state *hs,
                                bool sync)
{
    unsigned char rec[HS_RECORD];
    int rc = writable(ls);
    if (rc != 0)
        return rc;
    ls->hs = *hs;
    ls->hs_seq++;
    ls->hs_dirty = !sync;
    if (!sync)
        return 0;
    hs_encode(rec, hs, ls->hs_seq);
    return put_sync(ls, "hard_state", rec, sizeof(rec));
}

static bool name_valid(const char *name)
{
    size_t len = name ? strnlen(name, CL_LOGSTORE_META_NAME_MAX + 1) : 0;
    if (len == 0 || len > CL_LOGSTORE_META_NAME_MAX)
        return false;
    for (size_t i = 0; i < sizeof(reserved_names) / sizeof(reserved_names[0]); i++)
        if (strcmp(name, reserved_names[i]) == 0)
            return false;
    return true;
}

int cl_logstore_meta_put(struct cl_logstore *ls, const char *name, const void *val, size_t len)
{
    int rc = writable(ls);
    if (rc != 0)
        return rc;
    if (!name_valid(name) || (len && !val))
        return KCP_EINVAL;
    if (len > CL_LOGSTORE_META_VALUE_MAX)
        return KCP_ETOOLARGE;
    return put_sync(ls, name, len ? val : "", len);
}

int cl_logstore_meta_get(struct cl_logstore *ls, const char *name, void **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!name_valid(name))
        return KCP_EINVAL;
    return get_copy(ls, name, out, out_len);
}

int cl_logstore_id_set(struct cl_logstore *ls, uint64_t id)
{
    unsigned char rec[8];
    int rc = writable(ls);
    if (rc != 0)
        return rc;
    le64(rec, id);
    return put_sync(ls, "id", rec, sizeof(rec));
}

int cl_logstore_id_get(struct cl_logstore *ls, uint64_t *out)
{
    void *val = NULL;
    size_t len = 0;
    *out = 0;
    int rc = get_copy(ls, "id", &val, &len);
    if (rc == 0 && len != 8)
        rc = corrupt("node id");
    if (rc == 0)
        *out = rd_le64(val);
    free(val);
    return rc;
}

void cl_logstore_stats(const struct cl_logstore *ls, struct cl_logstore_stats *out)
{
    *out = ls->st;
}
