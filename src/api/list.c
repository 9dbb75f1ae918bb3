/*
 * LIST answers streamed in parts: JSON lists, Tables and protobuf lists, whole or one page
 * (limit/continue), in memory that does not grow with the list.
 *
 * Happy path: scan (one synchronous pass over the snapshot: how many items the page has,
 * whether more follow and where the page ends, and for protobuf the bytes the items take,
 * which the envelope states first) -> head (kind, metadata with the continue token, a Table's
 * columns, the protobuf envelope) -> a part: items after the last one written, from the same
 * snapshot, in 64 KiB chunks, until LIST_MAX_BACKLOG bytes wait for the client -> the
 * connection drains (kcp_http_stream_on_drain) -> the next part ... -> tail -> end.
 * Failure modes: the scan fails (a revision older than the history window, or newer than the
 * store): an error Status, nothing was sent. A write fails, or the client goes away while the
 * list waits (api_list_closed): the list stops. The history window moves past the snapshot
 * while a slow client holds the list: the body ends short, which the client's decoder rejects
 * (docs/LIMITS.md).
 * Every part reads the snapshot at its revision, with the request's own filter, so it sees the
 * items the scan counted, in the same order.
 */
#include "list.h"

#include <assert.h>
#include <inttypes.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_CHUNK (64 * 1024)
/* Bytes queued to the client before the list waits for them to go out. */
#define LIST_MAX_BACKLOG (256 * 1024)

#define SCAN_STOP 1
#define PART_DONE 1
#define PART_WAIT 2

struct api_list {
    struct api_req *r;
    struct api_filter filter;
    enum api_list_kind kind;
    uint64_t rev;
    struct kcp_buf after; /* the last key written: the next part starts after it */
    size_t left;          /* items of the page still to write */
    bool first;
    bool failed;
    const char *include; /* Table: includeObject */
    int64_t now;         /* Table: ages are counted from the list's start */
    const struct kcp_schema_message *item_msg;
    struct kcp_buf out; /* the chunk being built */
};

char *api_continue_encode(uint64_t rev, const char *key, size_t key_len)
{
    struct kcp_buf raw = KCP_BUF_INIT;
    kcp_buf_printf(&raw, "%" PRIu64 "/", rev);
    kcp_buf_append(&raw, key, key_len);
    size_t n = 0;
    mbedtls_base64_encode(NULL, 0, &n, (const unsigned char *)raw.data, raw.len);
    char *out = kcp_malloc(n + 1);
    mbedtls_base64_encode((unsigned char *)out, n + 1, &n, (const unsigned char *)raw.data,
                          raw.len);
    out[n] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    kcp_buf_free(&raw);
    return out;
}

static void list_free(struct api_list *l)
{
    api_filter_free(&l->filter);
    kcp_buf_free(&l->after);
    kcp_buf_free(&l->out);
    free(l);
}

/* ---- the scan ---- */

struct scan {
    struct api_list *l;
    size_t limit, matched;
    bool more;
    struct kcp_buf last_key;
    size_t pb_bytes;
    int err;
};

static int scan_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct scan *sc = ctx;
    /* Any key past a full page means more may follow (upstream answers a continue token even
     * when the rest turns out not to match). */
    if (sc->limit && sc->matched == sc->limit) {
        sc->more = true;
        return SCAN_STOP;
    }
    if (!api_filter_match(sc->l->r, &sc->l->filter, obj->doc))
        return 0;
    sc->matched++;
    kcp_buf_reset(&sc->last_key);
    kcp_buf_append(&sc->last_key, obj->key, obj->key_len);
    if (sc->l->kind == API_LIST_PROTOBUF) {
        size_t len = 0;
        if (!api_list_pb_item(sc->l->item_msg, obj, &len)) {
            sc->err = KCP_EINTERNAL;
            return SCAN_STOP;
        }
        sc->pb_bytes += api_list_pb_item_size(len);
    }
    return 0;
}

/* ---- the parts ---- */

static int flush(struct api_list *l)
{
    struct api_req *r = l->r;
    if (l->out.len == 0)
        return 0;
    int rc = r->res && !r->gone ? kcp_http_stream_write(r->res, l->out.data, l->out.len)
                                : KCP_ECLOSED;
    kcp_buf_reset(&l->out);
    return rc;
}

static int part_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct api_list *l = ctx;
    if (l->left == 0)
        return PART_DONE;
    if (!api_filter_match(l->r, &l->filter, obj->doc))
        return 0;
    if (l->kind != API_LIST_PROTOBUF && !l->first)
        kcp_buf_append(&l->out, ",", 1);
    l->first = false;
    switch (l->kind) {
    case API_LIST_JSON:
        kcp_buf_append(&l->out, obj->json, obj->json_len);
        break;
    case API_LIST_TABLE: {
        json_t *row = api_table_row(l->r->rsrc, obj->doc, l->include, l->now);
        kcp_codec_json_write(&l->out, row);
        json_decref(row);
        break;
    }
    case API_LIST_PROTOBUF: {
        size_t len = 0;
        const void *item = api_list_pb_item(l->item_msg, obj, &len);
        /* The scan built it and it stays on the object; a miss would break the envelope. */
        if (!item) {
            l->failed = true;
            return PART_DONE;
        }
        api_list_pb_item_write(&l->out, item, len);
        break;
    }
    }
    l->left--;
    kcp_buf_reset(&l->after);
    kcp_buf_append(&l->after, obj->key, obj->key_len);
    if (l->out.len < LIST_CHUNK)
        return 0;
    if (flush(l) != 0) {
        l->failed = true;
        return PART_DONE;
    }
    if (l->left && kcp_http_stream_backlog(l->r->res) > LIST_MAX_BACKLOG)
        return PART_WAIT;
    return 0;
}

static void list_run(struct api_list *l);

static void list_on_drain(struct kcp_http_response *res, void *data)
{
    (void)res;
    struct api_list *l = data;
    l->r->in_store = false;
    l->r->verb_state = NULL;
    list_run(l);
}

static void list_finish(struct api_list *l)
{
    struct api_req *r = l->r;
    if (!l->failed) {
        if (l->kind == API_LIST_PROTOBUF)
            kcp_buf_append(&l->out, API_LIST_PB_TAIL, API_LIST_PB_TAIL_LEN);
        else
            kcp_buf_puts(&l->out, "]}");
    }
    flush(l);
    if (r->res && !r->gone)
        kcp_http_stream_end(r->res);
    list_free(l);
    api_req_finish(r);
}

static void list_run(struct api_list *l)
{
    struct api_req *r = l->r;
    for (;;) {
        struct kcp_store_list_result lr;
        int rc = l->left == 0 ? PART_DONE
                              : kcp_store_list(r->api->store, r->key.data, r->key.len, l->rev,
                                               l->after.len ? l->after.data : NULL, l->after.len,
                                               0, part_on_item, l, &lr);
        if (rc == PART_WAIT) {
            /* A write is in flight: its completion says when the client has taken the rest. */
            if (kcp_http_stream_on_drain(r->res, list_on_drain, l) != 0)
                continue;
            r->verb_state = l;
            r->in_store = true; /* keeps r for the drain, or for api_list_closed */
            return;
        }
        if (rc != 0 && rc != PART_DONE) {
            KCP_LOG_V(1, "api", "%s: list ended short: %s", r->http->raw_path,
                      kcp_error_message(rc));
            l->failed = true;
        } else if (rc == 0 && l->left) {
            KCP_LOG_V(1, "api", "%s: list ended short: %zu items missing", r->http->raw_path,
                      l->left);
            l->failed = true;
        }
        return list_finish(l);
    }
}

void api_list_closed(struct api_req *r)
{
    struct api_list *l = r->verb_state;
    r->verb_state = NULL;
    r->in_store = false;
    list_free(l);
}

/* ---- the head ---- */

static void head_json(struct kcp_buf *b, const struct api_req *r, uint64_t rev, const char *cont)
{
    char gv[128];
    api_group_version(r->rsrc, gv, sizeof(gv));
    kcp_buf_printf(b, "{\"kind\":\"%s\",\"apiVersion\":\"%s\",", r->rsrc->list_kind, gv);
    kcp_buf_printf(b, "\"metadata\":{\"resourceVersion\":\"%" PRIu64 "\"", rev);
    if (cont)
        kcp_buf_printf(b, ",\"continue\":\"%s\"", cont);
    kcp_buf_puts(b, "},\"items\":[");
}

/* The Table without its rows, as the whole Table would start: it ends with "rows":[. */
static void head_table(struct kcp_buf *b, const struct api_req *r, uint64_t rev, const char *cont)
{
    json_t *t = api_table_new(r->rsrc, true);
    json_t *meta = json_object_get(t, "metadata");
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%" PRIu64, rev);
    json_object_set_new(meta, "resourceVersion", json_string(rvs));
    if (cont)
        json_object_set_new(meta, "continue", json_string(cont));
    size_t start = b->len;
    kcp_codec_json_write(b, t);
    json_decref(t);
    /* "rows" is the Table's last member (api_table_new): drop the "]}" that closes it. */
    assert(b->len - start > 3 && memcmp(b->data + b->len - 3, "[]}", 3) == 0);
    (void)start;
    b->len -= 2;
    b->data[b->len] = '\0';
}

void api_list_stream(struct api_req *r, struct api_filter *filter, enum api_list_kind kind,
                     uint64_t rev, const char *start, size_t start_len, size_t limit)
{
    struct api_list *l = kcp_calloc(1, sizeof(*l));
    l->r = r;
    l->filter = *filter;
    memset(filter, 0, sizeof(*filter));
    l->kind = kind;
    l->first = true;
    l->after = (struct kcp_buf)KCP_BUF_INIT;
    l->out = (struct kcp_buf)KCP_BUF_INIT;
    l->now = kcp_clock_wall_s(r->api->loop->clock);
    l->include = api_query(r, "includeObject");
    if (!l->include)
        l->include = "Metadata";
    l->item_msg = kcp_schema_message_at(r->rsrc->msg);
    if (start_len)
        kcp_buf_append(&l->after, start, start_len);

    struct scan sc = {.l = l, .limit = limit, .last_key = KCP_BUF_INIT};
    struct kcp_store_list_result lr;
    int rc = kcp_store_list(r->api->store, r->key.data, r->key.len, rev, start_len ? start : NULL,
                            start_len, 0, scan_on_item, &sc, &lr);
    if (rc == SCAN_STOP)
        rc = sc.err;
    if (rc == KCP_EGONE && kind == API_LIST_PROTOBUF && !limit && !start_len)
        api_fail(r, rc, NULL, NULL, "too old resource version");
    else if (rc == KCP_EGONE)
        api_fail(r, KCP_EGONE, NULL, NULL,
                 "The provided continue parameter is too old to display a consistent list "
                 "result. You can start a new list without the continue parameter.");
    else if (rc != 0)
        api_fail(r, rc, NULL, NULL, "list: %s", kcp_error_message(rc));
    if (rc != 0) {
        kcp_buf_free(&sc.last_key);
        list_free(l);
        return;
    }
    l->rev = lr.revision;
    l->left = sc.matched;
    char *token = sc.more ? api_continue_encode(lr.revision, sc.last_key.data, sc.last_key.len)
                          : NULL;
    kcp_buf_free(&sc.last_key);
    const char *ct = "application/json";
    if (kind == API_LIST_JSON) {
        head_json(&l->out, r, l->rev, token);
    } else if (kind == API_LIST_TABLE) {
        head_table(&l->out, r, l->rev, token);
    } else {
        api_list_pb_head(&l->out, r, l->rev, token, sc.pb_bytes);
        ct = "application/vnd.kubernetes.protobuf";
    }
    free(token);
    kcp_http_stream_begin(r->res, 200, ct);
    list_run(l);
}
