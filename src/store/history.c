/* The bounded history of recent events: watch replay and lists at an older revision read it. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * A ring of events in revision order, bounded by count and by the bytes of the versions it
 * holds (the previous version is usually shared with the event before, so it is not counted).
 * `floor` only moves up as events are evicted: a revision R can be served (list at R, watch from
 * R) while R >= floor, because every event after R is still here. After a restart the ring is
 * empty and floor is the durable revision, as upstream's watch cache starts empty.
 */

void store_history_init(struct store_history *h, size_t max_events, size_t max_bytes,
                        uint64_t floor)
{
    memset(h, 0, sizeof(*h));
    h->cap = max_events ? max_events : 1;
    h->ring = kcp_calloc(h->cap, sizeof(*h->ring));
    h->max_bytes = max_bytes;
    h->floor = floor;
}

static size_t event_bytes(const struct store_event_rec *e)
{
    return e->obj->json_len + e->obj->key_len + sizeof(*e);
}

static void evict_oldest(struct store_history *h)
{
    struct store_event_rec *e = &h->ring[h->head];
    if (e->revision > h->floor)
        h->floor = e->revision;
    h->bytes -= event_bytes(e);
    kcp_obj_unref(e->obj);
    kcp_obj_unref(e->prev);
    memset(e, 0, sizeof(*e));
    h->head = (h->head + 1) % h->cap;
    h->count--;
}

void store_history_free(struct store_history *h)
{
    while (h->count)
        evict_oldest(h);
    free(h->ring);
    h->ring = NULL;
}

void store_history_append(struct store_history *h, uint8_t type, uint64_t revision,
                          const struct kcp_obj *obj, const struct kcp_obj *prev)
{
    struct store_event_rec rec = {revision, kcp_obj_ref(obj), kcp_obj_ref(prev), type};
    size_t add = event_bytes(&rec);
    while (h->count && (h->count == h->cap || h->bytes + add > h->max_bytes))
        evict_oldest(h);
    if (h->bytes + add > h->max_bytes) {
        /* A single version larger than the whole budget is not retained: the window moves
         * past it. */
        kcp_obj_unref(rec.obj);
        kcp_obj_unref(rec.prev);
        if (revision > h->floor)
            h->floor = revision;
        return;
    }
    h->ring[(h->head + h->count) % h->cap] = rec;
    h->count++;
    h->bytes += add;
}

size_t store_history_after(const struct store_history *h, uint64_t rev)
{
    size_t lo = 0, hi = h->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (store_history_at(h, mid)->revision <= rev)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
