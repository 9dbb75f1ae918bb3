/* The store's lifetime: options, open (LMDB and the cache), statistics, hooks. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

void kcp_store_options_default(struct kcp_store_options *out)
{
    memset(out, 0, sizeof(*out));
    out->map_size = (size_t)1 << 30;
    out->max_map_size = (size_t)8 << 30;
    out->history_events = 10000;
    out->history_bytes = (size_t)64 << 20;
    out->max_watchers = 10000;
    out->max_value_bytes = (size_t)3 << 19; /* 1.5 MiB, etcd's default request limit */
    out->max_pending = 100000;
    out->max_batch = 10000;
}

int kcp_store_open(struct kcp_store **out, struct kcp_loop *loop, const char *dir,
                   const struct kcp_store_options *opts)
{
    struct kcp_store *s = kcp_calloc(1, sizeof(*s));
    int rc;
    *out = NULL;
    s->loop = loop;
    kcp_store_options_default(&s->opts);
    if (opts)
        s->opts = *opts;
    /* Zero means "default" for each field, so callers may set only what they care about. */
    struct kcp_store_options d;
    kcp_store_options_default(&d);
    if (!s->opts.map_size)
        s->opts.map_size = d.map_size;
    if (s->opts.max_map_size < s->opts.map_size)
        s->opts.max_map_size = s->opts.map_size;
    if (!s->opts.history_events)
        s->opts.history_events = d.history_events;
    if (!s->opts.history_bytes)
        s->opts.history_bytes = d.history_bytes;
    if (!s->opts.max_watchers)
        s->opts.max_watchers = d.max_watchers;
    if (!s->opts.max_value_bytes)
        s->opts.max_value_bytes = d.max_value_bytes;
    if (!s->opts.max_pending)
        s->opts.max_pending = d.max_pending;
    if (!s->opts.max_batch)
        s->opts.max_batch = d.max_batch;

    store_map_init(&s->cache);
    store_map_init(&s->overlay);
    s->pending_last = &s->pending;
    store_proposer_local_init(s);
    if (uv_mutex_init(&s->resize_lock) != 0) {
        free(s);
        return KCP_EIO;
    }
    if ((rc = store_lmdb_open(s, dir)) != 0)
        goto done;
    s->tail = s->delivered = s->synced = s->durable;
    s->unsynced_last = &s->unsynced;
    store_history_init(&s->hist, s->opts.history_events, s->opts.history_bytes, s->durable);
    if (uv_idle_init(&loop->uv, &s->kick) != 0) {
        store_history_free(&s->hist);
        rc = KCP_EIO;
        goto done;
    }
    uv_timer_init(&loop->uv, &s->defer_timer);
    s->kick.data = s->defer_timer.data = s;
    s->handles_open = 2;
    KCP_LOG_V(1, "store", "opened %s at revision %llu with %zu objects", dir,
              (unsigned long long)s->durable, s->cache.count);
    *out = s;
    s = NULL;
done:
    if (s) {
        store_map_free(&s->cache);
        store_map_free(&s->overlay);
        store_lmdb_close(s);
        uv_mutex_destroy(&s->resize_lock);
        free(s);
    }
    return rc;
}

uint64_t kcp_store_revision(const struct kcp_store *s)
{
    return s->durable;
}

uint64_t kcp_store_applied_index(const struct kcp_store *s)
{
    return s->tail;
}

void kcp_store_set_applied_hook(struct kcp_store *s, kcp_store_applied_cb cb, void *data)
{
    s->hook = cb;
    s->hook_data = data;
}

void kcp_store_stats(const struct kcp_store *s, struct kcp_store_stats *out)
{
    *out = s->st;
    out->revision = s->durable;
    out->objects = s->cache.count;
    out->pending = s->npending + (s->inflight && !s->inflight->deferred ? s->inflight->n : 0);
    out->unsynced = s->nunsynced + (s->inflight && s->inflight->deferred ? s->inflight->n : 0);
    out->synced = s->synced;
    out->watchers = s->nwatches;
    out->history_events = s->hist.count;
    out->history_bytes = s->hist.bytes;
    out->history_floor = s->hist.floor;
    out->map_size = s->map_size;
    out->failed = s->failed;
    out->retained_trim = s->trim_to;
}
