/* Watchers: replay from the history, then live fan-out of durable events, sharing objects. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * A watch registered at the store's revision is live at once. One from an older
 * revision is replayed at the next loop turn (never inside kcp_store_watch, so the caller has its
 * handle first) and is live from then on; events published meanwhile are in the history, so the
 * replay includes them. The fan-out hands every watcher the same event and objects: nothing is
 * copied per watcher. Callbacks may cancel any watch, or add one, during the fan-out: cancelled
 * watches are only unlinked once the outermost fan-out returns.
 */

static bool matches(const struct kcp_store_watch *w, const char *key, size_t key_len)
{
    return key_len >= w->prefix_len && memcmp(key, w->prefix, w->prefix_len) == 0;
}

static void unlink_free(struct kcp_store_watch *w)
{
    struct kcp_store *s = w->s;
    if (w->prev)
        w->prev->next = w->next;
    else
        s->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    free(w->prefix);
    free(w);
}

static void reap(struct kcp_store *s)
{
    if (s->fanout_depth > 0 || !s->zombies)
        return;
    s->zombies = false;
    for (struct kcp_store_watch *w = s->watches, *next; w; w = next) {
        next = w->next;
        if (w->cancelled)
            unlink_free(w);
    }
}

static void mark_cancelled(struct kcp_store_watch *w)
{
    w->cancelled = true;
    w->s->nwatches--;
    w->s->zombies = true;
}

int kcp_store_watch(struct kcp_store *s, const void *prefix, size_t prefix_len,
                    uint64_t from_revision, kcp_store_watch_cb cb, void *ctx,
                    struct kcp_store_watch **out)
{
    if (s->closing)
        return KCP_ECLOSED;
    if (s->nwatches >= s->opts.max_watchers)
        return KCP_ETOOMANY;
    if (from_revision && from_revision < s->hist.floor)
        return KCP_EGONE;
    struct kcp_store_watch *w = kcp_calloc(1, sizeof(*w));
    w->s = s;
    w->prefix = kcp_malloc(prefix_len + 1);
    if (prefix_len)
        memcpy(w->prefix, prefix, prefix_len);
    w->prefix[prefix_len] = '\0';
    w->prefix_len = prefix_len;
    w->from = from_revision ? from_revision : s->durable;
    w->cb = cb;
    w->ctx = ctx;
    /* Registered inside a fan-out, the watch would miss the events of the entry being
     * delivered: it is replayed from the history instead. */
    w->live = w->from >= s->durable && s->fanout_depth == 0;
    w->next = s->watches;
    if (w->next)
        w->next->prev = w;
    s->watches = w;
    s->nwatches++;
    if (!w->live) {
        s->replay_wanted = true;
        store_kick(s);
    }
    *out = w;
    return 0;
}

void kcp_store_watch_cancel(struct kcp_store_watch *w)
{
    if (!w || w->cancelled)
        return;
    mark_cancelled(w);
    reap(w->s);
}

uint64_t kcp_store_watch_revision(const struct kcp_store_watch *w)
{
    if (!w->live)
        return w->from;
    return w->s->delivered > w->from ? w->s->delivered : w->from;
}

static void deliver(struct kcp_store_watch *w, const struct kcp_store_event *ev)
{
    if (!w->cancelled && ev->revision > w->from && matches(w, ev->key, ev->key_len))
        w->cb(w, ev, w->ctx);
}

void store_watch_publish(struct kcp_store *s, const struct kcp_store_event *ev)
{
    s->fanout_depth++;
    /* Watches added during the fan-out are linked at the head, before w: they do not see ev,
     * which is right, as they were registered at a revision that already includes it or will
     * replay it. */
    for (struct kcp_store_watch *w = s->watches; w; w = w->next)
        if (w->live)
            deliver(w, ev);
    s->fanout_depth--;
    reap(s);
}

/* Ends a watch with an ERROR event; it is freed once the callback returns. */
static void end_with_error(struct kcp_store_watch *w, int err)
{
    struct kcp_store_event ev = {.type = KCP_STORE_ERROR, .revision = w->s->durable, .err = err};
    mark_cancelled(w);
    w->cb(w, &ev, w->ctx);
}

void store_watch_replay(struct kcp_store *s)
{
    s->replay_wanted = false;
    s->fanout_depth++;
    for (struct kcp_store_watch *w = s->watches; w; w = w->next) {
        if (w->live || w->cancelled)
            continue;
        if (w->from < s->hist.floor) { /* the window moved on before we got here */
            end_with_error(w, KCP_EGONE);
            continue;
        }
        for (size_t i = store_history_after(&s->hist, w->from); i < s->hist.count; i++) {
            const struct store_event_rec *r = store_history_at(&s->hist, i);
            struct kcp_store_event ev = {.type = (enum kcp_store_event_type)r->type,
                                         .revision = r->revision,
                                         .key = r->obj->key,
                                         .key_len = r->obj->key_len,
                                         .obj = r->obj,
                                         .prev = r->prev};
            deliver(w, &ev);
            if (w->cancelled)
                break;
        }
        w->live = true;
    }
    s->fanout_depth--;
    reap(s);
}

void store_watch_end_all(struct kcp_store *s, int err)
{
    s->fanout_depth++;
    /* Watches a callback adds meanwhile are linked at the head, before w: they stay. */
    for (struct kcp_store_watch *w = s->watches; w; w = w->next)
        if (!w->cancelled)
            end_with_error(w, err);
    s->fanout_depth--;
    reap(s);
}
