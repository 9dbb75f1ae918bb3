/*
 * A protobuf LIST streamed item by item: the envelope's raw field needs its length up front, so
 * a first pass sizes every item (building each object's protobuf encoding once, shared on the
 * object) and a second pass writes them. Both passes read the same snapshot within one loop
 * callback, so they see the same items; memory does not grow with the list.
 */
#include "api_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (64 * 1024)

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void api_pb_varint(struct kcp_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    kcp_buf_append(b, tmp, n);
}

static void put_bytes_field(struct kcp_buf *b, unsigned field, const void *data, size_t len)
{
    uint8_t tag = (uint8_t)(field << 3 | 2);
    kcp_buf_append(b, &tag, 1);
    api_pb_varint(b, len);
    kcp_buf_append(b, data, len);
}

struct pb_list_ctx {
    struct api_req *r;
    const struct api_filter *filter;
    const struct kcp_schema_message *item_msg;
    size_t total; /* bytes of the repeated items field */
    struct kcp_buf out;
    bool writing;
    int err;
};

static void free_buf(void *p)
{
    free(p);
}

/* The object's protobuf message, built once and kept on the object. */
static const void *item_bytes(struct pb_list_ctx *c, const struct kcp_obj *obj, size_t *len)
{
    const void *enc = kcp_obj_encoding(obj, KCP_OBJ_ENC_PROTOBUF, len);
    if (enc)
        return enc;
    struct kcp_buf b = KCP_BUF_INIT;
    struct kcp_codec_err err;
    if (kcp_codec_json_to_pb(&b, c->item_msg, obj->doc, &err) != 0) {
        kcp_buf_free(&b);
        return NULL;
    }
    size_t n = b.len;
    return kcp_obj_set_encoding(obj, KCP_OBJ_ENC_PROTOBUF, kcp_buf_detach(&b), n, free_buf, len);
}

static int pb_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct pb_list_ctx *c = ctx;
    if (!api_filter_match(c->r, c->filter, obj->doc))
        return 0;
    size_t len = 0;
    const void *bytes = item_bytes(c, obj, &len);
    if (!bytes) {
        c->err = KCP_EINTERNAL;
        return 1;
    }
    if (!c->writing) {
        c->total += 1 + varint_len(len) + len;
        return 0;
    }
    put_bytes_field(&c->out, 2, bytes, len);
    if (c->out.len >= CHUNK) {
        if (!c->r->res || kcp_http_stream_write(c->r->res, c->out.data, c->out.len) != 0)
            return 1;
        kcp_buf_reset(&c->out);
    }
    return 0;
}

/* Streams the list at revision rev; returns 0 (the request is complete) or an error before
 * anything was sent (the caller answers it). */
int api_list_protobuf(struct api_req *r, const struct api_filter *filter, uint64_t rev)
{
    struct pb_list_ctx c = {.r = r, .filter = filter, .out = KCP_BUF_INIT};
    c.item_msg = kcp_schema_message_at(r->rsrc->msg);
    const struct kcp_schema_message *list_meta =
        kcp_schema_message_find("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta");
    if (!c.item_msg || !list_meta || r->rsrc->list_msg < 0)
        return KCP_ENOTACCEPTABLE;
    struct kcp_store_list_result lr;
    int rc = kcp_store_list(r->api->store, r->key.data, r->key.len, rev, NULL, 0, 0, pb_on_item,
                            &c, &lr);
    if (c.err)
        return c.err;
    if (rc != 0 && rc != 1)
        return rc;
    rev = lr.revision;
    /* ListMeta{resourceVersion}. */
    struct kcp_buf meta = KCP_BUF_INIT;
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%" PRIu64, rev);
    put_bytes_field(&meta, 2, rvs, strlen(rvs));
    size_t raw_len = 1 + varint_len(meta.len) + meta.len + c.total;
    /* "k8s\0" + Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding, contentType}. */
    struct kcp_buf head = KCP_BUF_INIT, tm = KCP_BUF_INIT;
    char gv[128];
    api_group_version(r->rsrc, gv, sizeof(gv));
    put_bytes_field(&tm, 1, gv, strlen(gv));
    put_bytes_field(&tm, 2, r->rsrc->list_kind, strlen(r->rsrc->list_kind));
    kcp_buf_append(&head, "k8s\0", 4);
    put_bytes_field(&head, 1, tm.data, tm.len);
    kcp_buf_append(&head, "\x12", 1);
    api_pb_varint(&head, raw_len);
    put_bytes_field(&head, 1, meta.data, meta.len);
    kcp_buf_free(&tm);
    kcp_buf_free(&meta);
    kcp_http_stream_begin(r->res, 200, "application/vnd.kubernetes.protobuf");
    kcp_http_stream_write(r->res, head.data, head.len);
    kcp_buf_free(&head);
    c.writing = true;
    kcp_store_list(r->api->store, r->key.data, r->key.len, rev, NULL, 0, 0, pb_on_item, &c, &lr);
    kcp_buf_append(&c.out, "\x1a\x00\x22\x00", 4);
    if (r->res && !r->gone) {
        kcp_http_stream_write(r->res, c.out.data, c.out.len);
        kcp_http_stream_end(r->res);
    }
    kcp_buf_free(&c.out);
    api_req_finish(r);
    return 0;
}
