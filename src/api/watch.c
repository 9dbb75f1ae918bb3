/*
 * WATCH: a chunked stream of events (JSON lines, or length-prefixed protobuf frames) fed by a
 * store watch, filtered by selectors, with optional initial events, bookmarks and a timeout.
 *
 * Happy path: begin stream -> (initial ADDED events, end bookmark) -> store events -> timeout
 * or client close -> cancel the store watch, close timers -> free.
 * Failure modes: resourceVersion too old (one ERROR event 410 Expired, then end); the client
 * reads too slowly (the HTTP layer cuts it: a write error ends the watch); shutdown ends every
 * stream.
 */
#include "api_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOOKMARK_MS 30000

struct api_watch {
    struct api_req *r;
    struct kcp_api *api;
    struct kcp_store_watch *sw;
    struct api_filter filter;
    uv_timer_t timeout;
    uv_timer_t bookmark;
    int open_handles;
    bool bookmarks;
    bool ended;
    bool table_sent_columns;
    struct api_watch *next, *prev;
};

void api_watch_closed(struct api_req *r);

static void watch_unlink(struct api_watch *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else if (w->api->watches == w)
        w->api->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

static void watch_on_handle_closed(uv_handle_t *h)
{
    struct api_watch *w = h->data;
    if (--w->open_handles > 0)
        return;
    struct api_req *r = w->r;
    api_filter_free(&w->filter);
    free(w);
    r->verb_state = NULL;
    /* The response is complete (stream ended) or the client is gone: either way it is over. */
    api_req_finish(r);
}

/* Ends the watch: no more events; the stream is ended if the client is still there. */
static void watch_end(struct api_watch *w)
{
    if (w->ended)
        return;
    w->ended = true;
    if (w->sw)
        kcp_store_watch_cancel(w->sw);
    w->sw = NULL;
    watch_unlink(w);
    w->api->nwatchers--;
    if (w->r->res && !w->r->gone)
        kcp_http_stream_end(w->r->res);
    w->r->res = NULL;
    uv_close((uv_handle_t *)&w->timeout, watch_on_handle_closed);
    uv_close((uv_handle_t *)&w->bookmark, watch_on_handle_closed);
}

void api_watch_closed(struct api_req *r)
{
    struct api_watch *w = r->verb_state;
    r->res = NULL;
    watch_end(w);
}

/* WatchEvent{type=1, object=2 RawExtension{raw=1}} framed by a 4-byte big-endian length. */
static int write_event(struct api_watch *w, const char *type, const json_t *obj)
{
    struct api_req *r = w->r;
    struct kcp_buf b = KCP_BUF_INIT;
    json_t *table = NULL;
    if (r->media.as == API_AS_TABLE && strcmp(type, "ERROR") != 0 && strcmp(type, "BOOKMARK") != 0) {
        /* Only the first Table event carries the column definitions (WIRE.md §6). */
        table = api_table_new(r->rsrc, !w->table_sent_columns);
        w->table_sent_columns = true;
        const char *include = api_query(r, "includeObject");
        api_table_add_row(table, r->rsrc, obj, include ? include : "Metadata",
                          kcp_clock_wall_s(r->api->loop->clock));
        obj = table;
    }
    if (r->media.format == API_FORMAT_PROTOBUF) {
        struct kcp_buf raw = KCP_BUF_INIT, ev = KCP_BUF_INIT;
        struct kcp_codec_err err;
        if (kcp_codec_pb_encode_object(&raw, obj, &err) != 0) {
            kcp_buf_free(&raw);
            json_decref(table);
            return 0; /* an object without a protobuf form cannot be sent on this stream */
        }
        kcp_buf_append(&ev, "\x0a", 1);
        api_pb_varint(&ev, strlen(type));
        kcp_buf_puts(&ev, type);
        struct kcp_buf ext = KCP_BUF_INIT;
        kcp_buf_append(&ext, "\x0a", 1);
        api_pb_varint(&ext, raw.len);
        kcp_buf_append(&ext, raw.data, raw.len);
        kcp_buf_append(&ev, "\x12", 1);
        api_pb_varint(&ev, ext.len);
        kcp_buf_append(&ev, ext.data, ext.len);
        uint8_t len[4] = {(uint8_t)(ev.len >> 24), (uint8_t)(ev.len >> 16), (uint8_t)(ev.len >> 8),
                          (uint8_t)ev.len};
        kcp_buf_append(&b, len, 4);
        kcp_buf_append(&b, ev.data, ev.len);
        kcp_buf_free(&raw);
        kcp_buf_free(&ev);
        kcp_buf_free(&ext);
    } else {
        kcp_buf_printf(&b, "{\"type\":\"%s\",\"object\":", type);
        kcp_codec_json_write(&b, obj);
        kcp_buf_puts(&b, "}\n");
    }
    json_decref(table);
    int rc = r->res ? kcp_http_stream_write(r->res, b.data, b.len) : KCP_ECLOSED;
    kcp_buf_free(&b);
    return rc;
}

static json_t *bookmark_object(struct api_watch *w, uint64_t rev, bool initial_end)
{
    char gv[128], rvs[32];
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string(w->r->rsrc->kind));
    json_object_set_new(o, "apiVersion", json_string(api_group_version(w->r->rsrc, gv, sizeof(gv))));
    json_t *meta = json_object();
    snprintf(rvs, sizeof(rvs), "%" PRIu64, rev);
    json_object_set_new(meta, "resourceVersion", json_string(rvs));
    if (initial_end)
        json_object_set_new(meta, "annotations",
                            json_pack("{s:s}", "k8s.io/initial-events-end", "true"));
    json_object_set_new(o, "metadata", meta);
    return o;
}

static void send_error(struct api_watch *w, int err, const char *message)
{
    json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion",
                           "v1", "metadata", "status", "Failure", "message", message, "reason",
                           kcp_error_reason(err), "code", kcp_error_http(err));
    write_event(w, "ERROR", st);
    json_decref(st);
}

static void watch_on_event(struct kcp_store_watch *sw, const struct kcp_store_event *ev, void *ctx)
{
    struct api_watch *w = ctx;
    if (w->ended)
        return;
    const char *type = NULL;
    const json_t *obj = ev->obj ? ev->obj->doc : NULL;
    switch (ev->type) {
    case KCP_STORE_ADDED:
        type = api_filter_match(w->r, &w->filter, obj) ? "ADDED" : NULL;
        break;
    case KCP_STORE_MODIFIED: {
        bool now = api_filter_match(w->r, &w->filter, obj);
        bool before = ev->prev && api_filter_match(w->r, &w->filter, ev->prev->doc);
        type = now && before ? "MODIFIED" : now ? "ADDED" : before ? "DELETED" : NULL;
        if (type && !strcmp(type, "DELETED")) {
            /* Leaving the selection: the object as the watcher knew it, at the new revision. */
            json_t *gone = json_deep_copy(ev->prev->doc);
            char rvs[32];
            snprintf(rvs, sizeof(rvs), "%" PRIu64, ev->revision);
            json_object_set_new(json_object_get(gone, "metadata"), "resourceVersion", json_string(rvs));
            int wrc = write_event(w, type, gone);
            json_decref(gone);
            if (wrc != 0)
                watch_end(w);
            return;
        }
        break;
    }
    case KCP_STORE_DELETED:
        type = api_filter_match(w->r, &w->filter, ev->prev ? ev->prev->doc : obj) ? "DELETED" : NULL;
        break;
    default: {
        /* The store frees a watch that reports an ERROR once this callback returns. */
        w->sw = NULL;
        char msg[128];
        snprintf(msg, sizeof(msg), "watch ended: %s", kcp_error_message(ev->err));
        if (ev->err == KCP_EGONE)
            send_error(w, KCP_EGONE, "too old resource version");
        else
            send_error(w, ev->err, msg);
        watch_end(w);
        return;
    }
    }
    if (type && write_event(w, type, obj) != 0)
        watch_end(w);
}

static void timeout_on_fire(uv_timer_t *t)
{
    watch_end(t->data);
}

static void bookmark_on_fire(uv_timer_t *t)
{
    struct api_watch *w = t->data;
    if (w->ended || !w->sw)
        return;
    json_t *bm = bookmark_object(w, kcp_store_watch_revision(w->sw), false);
    int rc = write_event(w, "BOOKMARK", bm);
    json_decref(bm);
    if (rc != 0)
        watch_end(w);
}

struct initial_ctx {
    struct api_watch *w;
    int rc;
};

static int initial_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct initial_ctx *ic = ctx;
    if (!api_filter_match(ic->w->r, &ic->w->filter, obj->doc))
        return 0;
    ic->rc = write_event(ic->w, "ADDED", obj->doc);
    return ic->rc ? 1 : 0;
}

void api_watch(struct api_req *r)
{
    struct kcp_api *api = r->api;
    if (api->nwatchers >= api->max_watchers)
        return api_fail(r, KCP_ETOOMANY, NULL, NULL, "too many watches open (limit %zu)",
                        api->max_watchers);
    const char *rv = api_query(r, "resourceVersion");
    uint64_t from = 0;
    bool initial = !rv || !*rv || strcmp(rv, "0") == 0;
    if (!initial) {
        char *end = NULL;
        from = strtoull(rv, &end, 10);
        if (*end || rv[0] == '-')
            return api_fail(r, KCP_EBADREQUEST, NULL, NULL, "invalid resource version: %s", rv);
    }
    bool send_initial = api_query_bool(r, "sendInitialEvents");
    if (send_initial) {
        const char *match = api_query(r, "resourceVersionMatch");
        if (!match || strcmp(match, "NotOlderThan") != 0)
            return api_fail(r, KCP_EINVALID, NULL, NULL,
                            "sendInitialEvents is forbidden unless resourceVersionMatch is "
                            "NotOlderThan");
        initial = true;
    }
    long timeout_s = 0;
    const char *ts = api_query(r, "timeoutSeconds");
    if (ts && *ts) {
        char *end = NULL;
        timeout_s = strtol(ts, &end, 10);
        if (*end || timeout_s < 0)
            return api_fail(r, KCP_EBADREQUEST, NULL, NULL, "invalid timeoutSeconds: %s", ts);
    }
    struct api_watch *w = kcp_calloc(1, sizeof(*w));
    w->r = r;
    w->api = api;
    w->bookmarks = api_query_bool(r, "allowWatchBookmarks");
    if (api_filter_parse(r, &w->filter) != 0) {
        free(w);
        return;
    }
    r->verb_state = w;
    api->nwatchers++;
    w->next = api->watches;
    if (w->next)
        w->next->prev = w;
    api->watches = w;
    uv_timer_init(&api->loop->uv, &w->timeout);
    uv_timer_init(&api->loop->uv, &w->bookmark);
    w->timeout.data = w->bookmark.data = w;
    w->open_handles = 2;

    const char *ct = r->media.format == API_FORMAT_PROTOBUF
                         ? "application/vnd.kubernetes.protobuf;stream=watch"
                         : "application/json";
    kcp_http_stream_begin(r->res, 200, ct);
    api_key(r, &r->key, NULL);
    if (initial) {
        /* The current state as ADDED events, then changes after that snapshot. */
        struct initial_ctx ic = {w, 0};
        struct kcp_store_list_result lr;
        from = kcp_store_revision(api->store);
        int rc = kcp_store_list(api->store, r->key.data, r->key.len, from, NULL, 0, 0,
                                initial_on_item, &ic, &lr);
        if (ic.rc != 0 || (rc != 0 && rc != 1)) {
            watch_end(w);
            return;
        }
        if (send_initial) {
            json_t *bm = bookmark_object(w, from, true);
            int wrc = write_event(w, "BOOKMARK", bm);
            json_decref(bm);
            if (wrc != 0) {
                watch_end(w);
                return;
            }
        }
    }
    int rc = kcp_store_watch(api->store, r->key.data, r->key.len, from, watch_on_event, w, &w->sw);
    if (rc == KCP_EGONE) {
        char msg[128];
        snprintf(msg, sizeof(msg), "too old resource version: %" PRIu64 " (%" PRIu64 ")", from,
                 kcp_store_revision(api->store));
        send_error(w, KCP_EGONE, msg);
        watch_end(w);
        return;
    }
    if (rc != 0) {
        send_error(w, rc, kcp_error_message(rc));
        watch_end(w);
        return;
    }
    if (timeout_s > 0)
        uv_timer_start(&w->timeout, timeout_on_fire, (uint64_t)timeout_s * 1000, 0);
    if (w->bookmarks) {
        /* One bookmark shortly before a timeout, so a client resumes from recent progress. */
        uint64_t first = BOOKMARK_MS;
        if (timeout_s > 2 && (uint64_t)(timeout_s - 2) * 1000 < first)
            first = (uint64_t)(timeout_s - 2) * 1000;
        uv_timer_start(&w->bookmark, bookmark_on_fire, first, BOOKMARK_MS);
    }
}

void kcp_api_stop_watches(struct kcp_api *api)
{
    while (api->watches)
        watch_end(api->watches);
}
