/*
 * Apply, phase two: group commit off the loop thread, and publication.
 *
 * Happy path: entries applied in memory queue up -> the next loop turn takes them all (up to
 * max_batch) into one batch -> a work-pool thread writes them in one LMDB transaction whose
 * commit syncs once -> back on the loop: each entry in index order updates the cache, the
 * history and the watchers, runs the applied hook, then answers its request. Entries applied
 * while a batch commits wait for the next one: one sync per batch, however many writers.
 * Deferred durability (kcp_store_set_deferred, under Raft): the log the proposer applies from
 * is already durable, so the next loop turn publishes the entries at once and they wait in the
 * unsynced queue; one batch takes them to LMDB every defer_ms (or at max_batch, a flush, a
 * close). A crash loses what LMDB did not get, and the proposer applies it again.
 * Failure modes: the commit fails (disk full beyond max_map_size, EIO from fsync) -> the batch's
 * requests get KCP_EIO (deferred: they were answered already), every later entry
 * KCP_EUNAVAILABLE, and the store refuses writes from then on; readers keep the state they
 * see. Nothing half-written is ever shown: LMDB's commit is atomic, and the cache changes only
 * after it returns (deferred: after the proposer's log made the entry durable).
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

static void finish_close(struct kcp_store *s);

static void batch_on_work(uv_work_t *work)
{
    struct store_batch *b = work->data;
    b->rc = store_lmdb_write(b->s, b);
}

static uint8_t event_type(const struct kcp_store_op *op, const struct kcp_store_op_result *r)
{
    if (op->type == KCP_STORE_DELETE)
        return KCP_STORE_DELETED;
    return r->prev ? KCP_STORE_MODIFIED : KCP_STORE_ADDED;
}

/*
 * One durable entry becomes visible: first the whole entry goes into the cache and the history
 * and the revision moves, so that anything a callback reads is a consistent state at that
 * revision; then the events fan out; then the hook and the reply.
 */
static void publish(struct kcp_store *s, struct store_applied *a)
{
    for (size_t i = 0; i < a->result.nops; i++) {
        const struct kcp_store_op *op = &a->entry.ops[i];
        struct kcp_store_op_result *r = &a->ops[i];
        if (!r->applied)
            continue;
        if (op->type == KCP_STORE_PUT)
            store_map_put(&s->cache, op->key, op->key_len, kcp_obj_ref(r->obj), 0);
        else
            store_map_del(&s->cache, op->key, op->key_len);
        /* A later pending entry may have written the key again; then its overlay stays. */
        struct store_node *n = store_map_find(&s->overlay, op->key, op->key_len);
        if (n && n->tag == a->index)
            store_map_del(&s->overlay, op->key, op->key_len);
        store_history_append(&s->hist, event_type(op, r), a->index, r->obj, r->prev);
        s->st.ops_applied++;
    }
    s->durable = a->index;
    for (size_t i = 0; i < a->result.nops; i++) {
        struct kcp_store_op_result *r = &a->ops[i];
        if (!r->applied)
            continue;
        struct kcp_store_event ev = {.type =
                                         (enum kcp_store_event_type)event_type(&a->entry.ops[i], r),
                                     .revision = a->index,
                                     .key = r->obj->key,
                                     .key_len = r->obj->key_len,
                                     .obj = r->obj,
                                     .prev = r->prev};
        store_watch_publish(s, &ev);
    }
    s->delivered = a->index;
    s->st.entries_applied++;
    if (s->hook)
        s->hook(s->hook_data, &a->entry, &a->result);
    struct kcp_store_req *req = a->req;
    a->req = NULL; /* answered: a later failure of its batch must not answer it again */
    if (req)
        req->cb(req, 0, &a->result);
}

static void fail_list(struct store_applied *a, int err)
{
    while (a) {
        struct store_applied *next = a->next;
        if (a->req)
            a->req->cb(a->req, err, NULL);
        store_applied_free(a);
        a = next;
    }
}

void store_fail(struct kcp_store *s, int err, struct store_applied *batch_head)
{
    struct store_applied *pending = s->pending, *unsynced = s->unsynced;
    s->failed = err;
    s->pending = NULL;
    s->pending_last = &s->pending;
    s->npending = 0;
    /* Published already (their requests answered): LMDB will not get them, a restart applies
     * them again from the proposer's log. */
    s->unsynced = NULL;
    s->unsynced_last = &s->unsynced;
    s->nunsynced = 0;
    uv_timer_stop(&s->defer_timer);
    /* The overlay describes entries that will never be durable. */
    store_map_free(&s->overlay);
    store_map_init(&s->overlay);
    fail_list(batch_head, KCP_EIO);
    fail_list(unsynced, KCP_EIO);
    fail_list(pending, KCP_EUNAVAILABLE);
}

/* ---- deferred durability ---------------------------------------------------------------- */

static bool defer_now(const struct kcp_store *s)
{
    return s->unsynced &&
           (s->closing || s->flush_upto > s->synced || s->nunsynced >= s->opts.max_batch);
}

static void defer_on_timer(uv_timer_t *t)
{
    struct kcp_store *s = t->data;
    if (!s->inflight && s->unsynced && !s->failed)
        store_commit_start(s);
}

/* Starts a batch of unsynced entries now, or arms the timer that will. */
static void defer_schedule(struct kcp_store *s)
{
    if (!s->unsynced || s->inflight || s->failed)
        return;
    if (defer_now(s))
        store_commit_start(s);
    else if (!uv_is_active((uv_handle_t *)&s->defer_timer))
        uv_timer_start(&s->defer_timer, defer_on_timer, s->defer_ms, 0);
}

/*
 * Publishes every pending entry in index order. Each goes onto the unsynced queue before its
 * callbacks run, so that the store is never idle inside them (kcp_store_install must not run
 * while one is published). Callbacks may apply more entries: they queue for the next turn.
 */
static void publish_pending(struct kcp_store *s)
{
    struct store_applied *a = s->pending;
    s->pending = NULL;
    s->pending_last = &s->pending;
    s->npending = 0;
    while (a && !s->failed) {
        struct store_applied *next = a->next;
        a->next = NULL;
        *s->unsynced_last = a;
        s->unsynced_last = &a->next;
        s->nunsynced++;
        publish(s, a);
        a = next;
    }
    fail_list(a, KCP_EUNAVAILABLE); /* only after a failure inside a callback (none today) */
}

void kcp_store_set_deferred(struct kcp_store *s, uint32_t interval_ms)
{
    s->defer_ms = interval_ms;
    /* The timer armed with the old interval is armed again with the new one. */
    uv_timer_stop(&s->defer_timer);
    store_kick(s);
}

uint64_t kcp_store_synced(const struct kcp_store *s)
{
    return s->synced;
}

void kcp_store_flush(struct kcp_store *s)
{
    if (s->durable > s->flush_upto)
        s->flush_upto = s->durable;
    store_kick(s);
}

size_t store_queued(const struct kcp_store *s)
{
    return s->npending + s->nunsynced + (s->inflight ? s->inflight->n : 0);
}

static void batch_on_done(uv_work_t *work, int status)
{
    struct store_batch *b = work->data;
    struct kcp_store *s = b->s;
    s->map_size = b->map_size;
    if (b->rc != 0 || status != 0) {
        kcp_log(KCP_LOG_ERROR, "store", "commit of entries up to %llu: %s; writes stopped",
                (unsigned long long)b->last_index, b->rc ? mdb_strerror(b->rc) : "cancelled");
        s->inflight = NULL;
        store_fail(s, KCP_EIO, b->head);
        free(b);
        store_kick(s);
        return;
    }
    s->st.batches++;
    s->st.fsyncs++;
    s->st.bytes_written += b->bytes;
    s->synced = b->last_index;
    /* Callbacks below may propose: those entries queue behind this batch (inflight is set).
     * Deferred, the batch was published before it was written. */
    for (struct store_applied *a = b->head; a;) {
        struct store_applied *next = a->next;
        if (!b->deferred)
            publish(s, a);
        store_applied_free(a);
        a = next;
    }
    s->inflight = NULL;
    bool deferred = b->deferred;
    free(b);
    if (s->failed)
        store_kick(s);
    else if (deferred) {
        defer_schedule(s);
        store_kick(s);
    } else if (s->pending)
        store_commit_start(s); /* what arrived meanwhile is the next batch, at once */
    else
        store_kick(s);
}

void store_commit_start(struct kcp_store *s)
{
    struct store_batch *b = kcp_calloc(1, sizeof(*b));
    /* Deferred, the batch takes published entries; otherwise the ones it will publish. */
    bool deferred = s->unsynced != NULL;
    struct store_applied **queue = deferred ? &s->unsynced : &s->pending;
    struct store_applied ***last = deferred ? &s->unsynced_last : &s->pending_last;
    struct store_applied **tail = queue;
    b->s = s;
    b->deferred = deferred;
    b->head = *queue;
    while (*tail && b->n < s->opts.max_batch) {
        b->last_index = (*tail)->index;
        b->n++;
        tail = &(*tail)->next;
    }
    /* Split the queue after the batch's last entry. */
    *queue = *tail;
    *tail = NULL;
    if (!*queue)
        *last = queue;
    if (deferred)
        s->nunsynced -= b->n;
    else
        s->npending -= b->n;
    if (deferred)
        uv_timer_stop(&s->defer_timer);
    b->map_size = s->map_size;
    /* Retained entries are trimmed only as far as they are written (deferred, history may
     * have recorded entries LMDB does not hold yet). */
    b->trim_to = s->trim_to < b->last_index ? s->trim_to : b->last_index;
    b->work.data = b;
    s->inflight = b;
    int rc = uv_queue_work(&s->loop->uv, &b->work, batch_on_work, batch_on_done);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "store", "queue work: %s", uv_strerror(rc));
        s->inflight = NULL;
        store_fail(s, KCP_EIO, b->head);
        free(b);
    }
}

static void kick_on_idle(uv_idle_t *idle)
{
    struct kcp_store *s = idle->data;
    uv_idle_stop(idle);
    s->kick_active = false;
    if (s->defer_ms && s->pending && !s->failed)
        publish_pending(s);
    if (s->unsynced)
        defer_schedule(s);
    else if (!s->inflight && s->pending && !s->failed)
        store_commit_start(s);
    if (s->replay_wanted)
        store_watch_replay(s);
    if (s->closing && !s->inflight && !s->pending && !s->unsynced)
        finish_close(s);
}

void store_kick(struct kcp_store *s)
{
    if (s->kick_active || uv_is_closing((uv_handle_t *)&s->kick))
        return;
    s->kick_active = true;
    uv_idle_start(&s->kick, kick_on_idle);
}

/* ---- close ------------------------------------------------------------------------------ */

static void kick_on_close(uv_handle_t *h)
{
    struct kcp_store *s = h->data;
    if (--s->handles_open > 0)
        return;
    kcp_store_close_cb cb = s->close_cb;
    void *data = s->close_data;
    store_history_free(&s->hist);
    store_map_free(&s->cache);
    store_map_free(&s->overlay);
    store_lmdb_close(s);
    uv_mutex_destroy(&s->resize_lock);
    free(s);
    if (cb)
        cb(data);
}

static void finish_close(struct kcp_store *s)
{
    if (uv_is_closing((uv_handle_t *)&s->kick))
        return;
    store_watch_end_all(s, KCP_ECLOSED);
    uv_close((uv_handle_t *)&s->defer_timer, kick_on_close);
    uv_close((uv_handle_t *)&s->kick, kick_on_close);
}

void kcp_store_close(struct kcp_store *s, kcp_store_close_cb cb, void *data)
{
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_data = data;
    /* Never synchronously: the caller may be inside one of our callbacks. */
    store_kick(s);
}
