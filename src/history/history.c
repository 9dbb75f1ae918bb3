/*
 * The loop side of history: the store's applied hook queues entries, batches go to the
 * recorder's own low-priority thread (thread.c), and what the queue could not hold is read back
 * from the store's retained entries.
 *
 * Happy path: hook -> job (a copy of the encoded entry and each op's outcome) on a bounded
 * queue -> one batch at a time on the recorder's thread (decode, history_rec_entry per job,
 * then one pack and refs/heads/main moved once), at least BATCH_GAP_MS apart under a steady
 * stream -> back on the loop: counters, trim, next batch.
 * Failure modes: the queue is full -> history is "behind": the hook stops queueing and, between
 * batches, entries after the last queued index are read back from the store's retained table
 * (the hook dedupes by index). The retained table lacks them (history was off, or its
 * repository is new) -> one snapshot commit of the store's current objects. A libgit2 failure
 * -> recording stops (logged, stats.failed); the store keeps retaining, so a restart resumes.
 * A crash -> at open, entries after the repository's last index are read back: no gap, and the
 * recorder skips indexes it already has: no duplicate.
 * Retention (when a keep_* option is set): a timer marks a squash due; it runs as the next job
 * instead of a batch, once the API's reads in flight are done (reads wait for it), with the
 * recorder closed around it and reopened on the rewritten repository (retain.c).
 */
#include "history_int.h"

#include <stdlib.h>
#include <string.h>

/* Back to back, batches start at least this far apart unless a full one waits (see kick). */
#define BATCH_GAP_MS 100

struct history_job {
    struct history_job *next;
    uint64_t index;
    uint64_t term; /* the Raft term the entry was appended in */
    char *bytes; /* the encoded entry; NULL for a snapshot */
    size_t len;
    size_t nops;
    struct kcp_store_op_result *ops; /* err and applied only */
    /* A snapshot: the store's objects at index. */
    struct history_snap_obj *objs;
    size_t nobjs;
    int64_t wall_s;
};

struct history_batch {
    struct kcp_history *h;
    struct history_job *jobs;
    int rc;
};

struct history_squash {
    struct kcp_history *h;
    struct kcp_history_squash_result res;
    int rc;      /* the squash's: logged, retried at the next interval */
    int open_rc; /* reopening the recorder's: stops recording */
};

struct kcp_history {
    struct kcp_loop *loop;
    struct kcp_store *store;
    struct kcp_history_options opts;
    char *path, *exclude;   /* copies */
    struct history_rec rec; /* the recorder thread's while a job runs; the loop's otherwise */
    struct history_thread *thread; /* batches and squashes (thread.c) */
    struct history_job *q, **q_last;
    size_t nq, qbytes;
    uint64_t queued; /* last index queued or passed over */
    bool behind;     /* the hook drops entries; read them back from the store */
    struct history_batch *inflight;
    uv_timer_t batch_timer; /* starts the next batch BATCH_GAP_MS after the last one ended */
    uint64_t batch_done;    /* loop time (ms) the last batch ended; 0: none yet */
    uv_timer_t trim_timer;
    uint64_t trim_next; /* recorded one interval ago: safe to release from the store */
    uv_timer_t retain_timer;
    bool squash_due;
    struct history_squash *squashing;
    size_t nreaders;                              /* API reads on the work pool */
    struct history_read *waiting, **waiting_last; /* API reads held back for a squash */
    bool closing;
    kcp_history_close_cb close_cb;
    void *close_data;
    struct kcp_history_stats st;
};

void kcp_history_options_default(struct kcp_history_options *out)
{
    memset(out, 0, sizeof(*out));
    out->max_queue = 10000;
    out->max_queue_bytes = (size_t)16 << 20;
    out->max_batch = 1000;
    out->trim_interval_ms = 30000;
    out->retain_interval_ms = 3600 * 1000;
}

char *kcp_history_repo_path(const char *data_dir)
{
    return kcp_sprintf("%s/history.git", data_dir);
}

static void job_free(struct history_job *j)
{
    if (j->objs) {
        for (size_t i = 0; i < j->nobjs; i++) {
            free((char *)j->objs[i].key);
            free((char *)j->objs[i].json);
        }
        free(j->objs);
    }
    free(j->bytes);
    free(j->ops);
    free(j);
}

static void enqueue(struct kcp_history *h, struct history_job *j)
{
    *h->q_last = j;
    h->q_last = &j->next;
    h->nq++;
    h->qbytes += j->len;
    h->queued = j->index;
}

static struct history_job *job_new(uint64_t index, const struct kcp_store_result *res)
{
    struct history_job *j = kcp_calloc(1, sizeof(*j));
    j->index = index;
    j->term = res->term;
    j->nops = res->nops;
    j->ops = kcp_calloc(res->nops ? res->nops : 1, sizeof(*j->ops));
    for (size_t i = 0; i < res->nops; i++) {
        j->ops[i].err = res->ops[i].err;
        j->ops[i].applied = res->ops[i].applied;
    }
    return j;
}

/* ---- the worker ------------------------------------------------------------------------- */

static void batch_on_work(void *arg)
{
    struct history_batch *b = arg;
    struct history_rec *r = &b->h->rec;
    b->rc = 0;
    for (struct history_job *j = b->jobs; j && b->rc == 0; j = j->next) {
        if (!j->bytes) {
            b->rc = history_rec_snapshot(r, j->index, j->wall_s, j->objs, j->nobjs);
            continue;
        }
        struct kcp_store_entry e;
        if (kcp_store_entry_decode(&e, j->bytes, j->len) != 0) {
            if (j->index > r->last)
                r->last = j->index; /* failed everywhere alike; nothing to record */
            continue;
        }
        r->term = j->term;
        b->rc = history_rec_entry(r, j->index, &e, j->ops, j->nops);
        kcp_store_entry_free(&e);
    }
    if (b->rc == 0)
        b->rc = history_rec_flush(r);
}

static void kick(struct kcp_history *h);
static void maybe_finish_close(struct kcp_history *h);
static void squash_start(struct kcp_history *h);

static void batch_on_done(void *arg)
{
    struct history_batch *b = arg;
    struct kcp_history *h = b->h;
    h->inflight = NULL;
    h->batch_done = uv_now(&h->loop->uv);
    for (struct history_job *j = b->jobs; j;) {
        struct history_job *next = j->next;
        job_free(j);
        j = next;
    }
    h->st.batches++;
    h->st.recorded = h->rec.last;
    h->st.commits = h->rec.commits;
    h->st.conflicts = h->rec.conflicts;
    if (b->rc != 0) {
        h->st.failed = b->rc;
        kcp_log(KCP_LOG_ERROR, "history", "recording stopped after index %llu: %s",
                (unsigned long long)h->rec.last, kcp_error_message(h->st.failed));
    }
    free(b);
    if (h->closing)
        maybe_finish_close(h);
    else
        kick(h);
}

/* ---- catching up from the store --------------------------------------------------------- */

static int retained_on_entry(void *ctx, uint64_t index, const void *entry, size_t len,
                             const struct kcp_store_result *result)
{
    struct kcp_history *h = ctx;
    struct history_job *j = job_new(index, result);
    j->bytes = kcp_malloc(len ? len : 1);
    memcpy(j->bytes, entry, len);
    j->len = len;
    enqueue(h, j);
    return 0;
}

static int snapshot_on_obj(void *ctx, const struct kcp_obj *obj)
{
    struct history_job *j = ctx;
    if (j->nobjs % 256 == 0)
        j->objs = kcp_realloc(j->objs, (j->nobjs + 256) * sizeof(*j->objs));
    j->objs[j->nobjs++] =
        (struct history_snap_obj){kcp_strndup(obj->key, obj->key_len), obj->key_len,
                                  kcp_strndup(obj->json, obj->json_len), obj->json_len};
    return 0;
}

/* Refills the queue from the store's retained entries; a snapshot if they are gone. */
static void catch_up(struct kcp_history *h)
{
    size_t room = h->opts.max_queue > h->nq ? h->opts.max_queue - h->nq : 0;
    /* A batch at a time: reading the store runs on the loop, between its other work. */
    if (room > h->opts.max_batch)
        room = h->opts.max_batch;
    uint64_t last = h->queued;
    if (!room)
        return;
    int rc = kcp_store_retained(h->store, h->queued, room, retained_on_entry, h, &last);
    if (rc == KCP_EGONE || rc == KCP_EINVAL) {
        struct history_job *j = kcp_calloc(1, sizeof(*j));
        struct kcp_store_list_result lr;
        j->index = kcp_store_revision(h->store);
        j->wall_s = kcp_clock_wall_s(h->loop->clock);
        if (kcp_store_list(h->store, "", 0, 0, NULL, 0, 0, snapshot_on_obj, j, &lr) != 0) {
            job_free(j);
            h->st.failed = KCP_EIO;
            return;
        }
        kcp_log(KCP_LOG_WARN, "history",
                "entries %llu..%llu are not retained by the store: recording a snapshot",
                (unsigned long long)h->queued + 1, (unsigned long long)j->index);
        enqueue(h, j);
        h->behind = false;
        return;
    }
    if (rc != 0) {
        h->st.failed = rc;
        kcp_log(KCP_LOG_ERROR, "history", "reading retained entries: %s", kcp_error_message(rc));
        return;
    }
    h->queued = last;
    if (last >= kcp_store_revision(h->store))
        h->behind = false;
}

/* ---- retention --------------------------------------------------------------------------- */

static void squash_on_work(void *arg)
{
    struct history_squash *sq = arg;
    struct kcp_history *h = sq->h;
    struct history_rec *r = &h->rec;
    struct kcp_history_retention keep = {h->opts.keep_commits, h->opts.keep_days};
    uint64_t commits = r->commits, conflicts = r->conflicts;
    /* The recorder's state (head, index map, packs since the last fold) is about the history
     * being rewritten: close it, and reopen it on the result, as a restart would. */
    history_rec_close(r);
    sq->rc = kcp_history_squash(&sq->res, h->path, &keep);
    sq->open_rc = history_rec_open(r, h->path, h->opts.exclude);
    r->commits = commits;
    r->conflicts = conflicts;
}

static void start_reads(struct kcp_history *h);

static void squash_on_done(void *arg)
{
    struct history_squash *sq = arg;
    struct kcp_history *h = sq->h;
    h->squashing = NULL;
    h->squash_due = false;
    if (sq->rc == 0 && sq->res.squashed)
        h->st.squashes++;
    if (sq->rc != 0)
        kcp_log(KCP_LOG_WARN, "history", "squashing failed (%s); will retry",
                kcp_error_message(sq->rc));
    if (sq->open_rc != 0) {
        h->st.failed = sq->open_rc;
        kcp_log(KCP_LOG_ERROR, "history", "recording stopped: reopening after a squash: %s",
                kcp_error_message(h->st.failed));
    }
    free(sq);
    if (h->closing) {
        maybe_finish_close(h);
        return;
    }
    start_reads(h);
    kick(h);
}

static void squash_start(struct kcp_history *h)
{
    struct history_squash *sq = kcp_calloc(1, sizeof(*sq));
    sq->h = h;
    h->squashing = sq;
    history_thread_submit(h->thread, squash_on_work, squash_on_done, sq);
}

static void retain_on_tick(uv_timer_t *t)
{
    struct kcp_history *h = t->data;
    h->squash_due = true;
    kick(h);
}

/* ---- the API's reads -------------------------------------------------------------------- */

static void start_reads(struct kcp_history *h)
{
    while (h->waiting && !h->squash_due) {
        struct history_read *rd = h->waiting;
        h->waiting = rd->next;
        if (!h->waiting)
            h->waiting_last = &h->waiting;
        h->nreaders++;
        rd->start(rd);
    }
}

void history_read_begin(struct kcp_history *h, struct history_read *rd)
{
    rd->next = NULL;
    *h->waiting_last = rd;
    h->waiting_last = &rd->next;
    start_reads(h);
}

void history_read_end(struct kcp_history *h)
{
    h->nreaders--;
    if (h->closing)
        maybe_finish_close(h);
    else if (!h->nreaders && h->squash_due)
        kick(h);
}

const char *history_repo_dir(const struct kcp_history *h)
{
    return h->path;
}

uv_loop_t *history_uv(const struct kcp_history *h)
{
    return &h->loop->uv;
}

static void batch_timer_on_tick(uv_timer_t *t)
{
    kick(t->data);
}

static void kick(struct kcp_history *h)
{
    if (h->inflight || h->squashing || h->closing)
        return;
    if (h->st.failed) {
        if (h->squash_due) { /* no squash on a repository the recorder gave up on */
            h->squash_due = false;
            start_reads(h);
        }
        return;
    }
    if (h->squash_due) {
        if (!h->nreaders)
            squash_start(h);
        return; /* batches wait: the hook keeps queueing, or falls behind and reads back */
    }
    if (h->behind && !h->q)
        catch_up(h);
    if (!h->q || h->st.failed)
        return;
    /* A batch costs a pack and four renames however small: under a steady stream of writes,
     * wait for more entries, unless a full batch waits or the queue is full. */
    uint64_t now = uv_now(&h->loop->uv);
    if (h->batch_done && now < h->batch_done + BATCH_GAP_MS && !h->behind &&
        h->nq < h->opts.max_batch && h->nq < h->opts.max_queue) {
        if (!uv_is_active((uv_handle_t *)&h->batch_timer))
            uv_timer_start(&h->batch_timer, batch_timer_on_tick, h->batch_done + BATCH_GAP_MS - now,
                           0);
        return;
    }
    struct history_batch *b = kcp_calloc(1, sizeof(*b));
    struct history_job **tail = &h->q;
    size_t n = 0;
    b->h = h;
    b->jobs = h->q;
    while (*tail && n < h->opts.max_batch) {
        h->qbytes -= (*tail)->len;
        tail = &(*tail)->next;
        n++;
    }
    h->q = *tail;
    *tail = NULL;
    if (!h->q)
        h->q_last = &h->q;
    h->nq -= n;
    h->inflight = b;
    history_thread_submit(h->thread, batch_on_work, batch_on_done, b);
}

/* ---- the hook --------------------------------------------------------------------------- */

static void store_on_applied(void *data, const struct kcp_store_entry *entry,
                             const struct kcp_store_result *result)
{
    struct kcp_history *h = data;
    struct kcp_buf enc = KCP_BUF_INIT;
    if (result->index > h->st.seen)
        h->st.seen = result->index;
    if (result->index <= h->queued || h->behind || h->st.failed)
        return; /* already read back, or to be read back from the store */
    if (h->nq >= h->opts.max_queue || h->qbytes >= h->opts.max_queue_bytes) {
        h->behind = true;
        h->st.behind++;
        return;
    }
    /* Undecodable entries (nops 0) fail identically everywhere and change nothing. */
    if (result->nops == 0 || kcp_store_entry_encode(&enc, entry) != 0) {
        h->queued = result->index;
        kcp_buf_free(&enc);
        return;
    }
    struct history_job *j = job_new(result->index, result);
    j->len = enc.len;
    j->bytes = kcp_buf_detach(&enc);
    enqueue(h, j);
    kick(h);
}

/* Releases from the store what was recorded at least one interval ago (docs/HISTORY.md). */
static void trim_on_tick(uv_timer_t *t)
{
    struct kcp_history *h = t->data;
    if (h->trim_next)
        kcp_store_trim_retained(h->store, h->trim_next);
    h->trim_next = h->st.recorded; /* rec belongs to the worker while a batch runs */
}

/* ---- lifetime --------------------------------------------------------------------------- */

int kcp_history_open(struct kcp_history **out, struct kcp_loop *loop, struct kcp_store *store,
                     const char *repo_path, const struct kcp_history_options *opts)
{
    struct kcp_history *h = kcp_calloc(1, sizeof(*h));
    struct kcp_history_options d;
    kcp_history_options_default(&d);
    h->opts = opts ? *opts : d;
    if (!h->opts.max_queue)
        h->opts.max_queue = d.max_queue;
    if (!h->opts.max_queue_bytes)
        h->opts.max_queue_bytes = d.max_queue_bytes;
    if (!h->opts.max_batch)
        h->opts.max_batch = d.max_batch;
    if (!h->opts.trim_interval_ms)
        h->opts.trim_interval_ms = d.trim_interval_ms;
    if (!h->opts.retain_interval_ms)
        h->opts.retain_interval_ms = d.retain_interval_ms;
    h->loop = loop;
    h->store = store;
    h->q_last = &h->q;
    h->waiting_last = &h->waiting;
    *out = NULL;
    int rc = history_rec_open(&h->rec, repo_path, h->opts.exclude);
    if (rc == 0 && (rc = history_thread_start(&h->thread, &loop->uv)) != 0)
        kcp_log(KCP_LOG_ERROR, "history", "cannot start the recorder's thread");
    if (rc != 0) {
        history_rec_close(&h->rec);
        free(h);
        return rc;
    }
    h->path = kcp_strdup(repo_path);
    /* Kept for reopening the recorder after a squash; the caller's string may not live on. */
    if (h->opts.exclude)
        h->opts.exclude = h->exclude = kcp_strdup(h->opts.exclude);
    h->queued = h->st.recorded = h->st.seen = h->rec.last;
    uv_timer_init(&loop->uv, &h->batch_timer);
    h->batch_timer.data = h;
    uv_timer_init(&loop->uv, &h->trim_timer);
    h->trim_timer.data = h;
    uv_timer_start(&h->trim_timer, trim_on_tick, h->opts.trim_interval_ms,
                   h->opts.trim_interval_ms);
    uv_unref((uv_handle_t *)&h->trim_timer);
    uv_timer_init(&loop->uv, &h->retain_timer);
    h->retain_timer.data = h;
    if (h->opts.keep_commits || h->opts.keep_days) {
        uint64_t first = h->opts.retain_interval_ms < 60000 ? h->opts.retain_interval_ms : 60000;
        uv_timer_start(&h->retain_timer, retain_on_tick, first, h->opts.retain_interval_ms);
    }
    uv_unref((uv_handle_t *)&h->retain_timer);
    kcp_store_set_applied_hook(store, store_on_applied, h);
    if (h->rec.last < kcp_store_revision(store)) {
        KCP_LOG_V(1, "history", "catching up from index %llu to %llu",
                  (unsigned long long)h->rec.last, (unsigned long long)kcp_store_revision(store));
        h->behind = true;
        kick(h);
    }
    *out = h;
    return 0;
}

static void timer_on_close(uv_handle_t *handle)
{
    struct kcp_history *h = handle->data;
    handle->data = NULL; /* marks the timer closed */
    maybe_finish_close(h);
}

static void thread_on_closed(void *data)
{
    struct kcp_history *h = data;
    kcp_history_close_cb cb = h->close_cb;
    void *cb_data = h->close_data;
    free(h);
    if (cb)
        cb(cb_data);
}

static void maybe_finish_close(struct kcp_history *h)
{
    if (h->inflight || h->squashing || h->nreaders || h->trim_timer.data || h->retain_timer.data ||
        h->batch_timer.data || !h->thread)
        return;
    while (h->q) {
        struct history_job *next = h->q->next;
        job_free(h->q);
        h->q = next;
    }
    history_rec_close(&h->rec);
    free(h->path);
    free(h->exclude);
    struct history_thread *t = h->thread;
    h->thread = NULL; /* stopping: this runs once */
    history_thread_stop(t, thread_on_closed, h);
}

void kcp_history_close(struct kcp_history *h, kcp_history_close_cb cb, void *data)
{
    if (h->closing)
        return;
    h->closing = true;
    h->close_cb = cb;
    h->close_data = data;
    kcp_store_set_applied_hook(h->store, NULL, NULL);
    /* Reads held back for a squash are answered now (the server stops before the history). */
    while (h->waiting) {
        struct history_read *rd = h->waiting;
        h->waiting = rd->next;
        rd->cancel(rd);
    }
    h->waiting_last = &h->waiting;
    uv_close((uv_handle_t *)&h->trim_timer, timer_on_close);
    uv_close((uv_handle_t *)&h->retain_timer, timer_on_close);
    uv_close((uv_handle_t *)&h->batch_timer, timer_on_close);
}

void kcp_history_stats(const struct kcp_history *h, struct kcp_history_stats *out)
{
    *out = h->st;
    out->queued = h->nq;
    out->lag = out->seen > out->recorded ? out->seen - out->recorded : 0;
}
