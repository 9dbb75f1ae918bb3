/*
 * The protobuf form of a LIST, for list.c's stream: each item's message (built once and kept on
 * the object), and the envelope around the list, whose raw field needs its length before the
 * first item is written (list.c sizes the items in its first pass).
 */
#include "list.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void free_buf(void *p)
{
    free(p);
}

const void *api_list_pb_item(const struct kcp_schema_message *m, const struct kcp_obj *obj,
                             size_t *len)
{
    const void *enc = kcp_obj_encoding(obj, KCP_OBJ_ENC_PROTOBUF, len);
    if (enc)
        return enc;
    struct kcp_buf b = KCP_BUF_INIT;
    struct kcp_codec_err err;
    if (kcp_codec_json_to_pb(&b, m, obj->doc, &err) != 0) {
        kcp_buf_free(&b);
        return NULL;
    }
    size_t n = b.len;
    return kcp_obj_set_encoding(obj, KCP_OBJ_ENC_PROTOBUF, kcp_buf_detach(&b), n, free_buf, len);
}

size_t api_list_pb_item_size(size_t len)
{
    return 1 + varint_len(len) + len;
}

void api_list_pb_item_write(struct kcp_buf *out, const void *item, size_t len)
{
    put_bytes_field(out, 2, item, len);
}

void api_list_pb_head(struct kcp_buf *out, const struct api_req *r, uint64_t rev,
                      const char *cont, size_t items_bytes)
{
    /* ListMeta{resourceVersion = 2, continue = 3}. */
    struct kcp_buf meta = KCP_BUF_INIT, tm = KCP_BUF_INIT;
    char rvs[32], gv[128];
    snprintf(rvs, sizeof(rvs), "%" PRIu64, rev);
    put_bytes_field(&meta, 2, rvs, strlen(rvs));
    if (cont)
        put_bytes_field(&meta, 3, cont, strlen(cont));
    size_t raw_len = 1 + varint_len(meta.len) + meta.len + items_bytes;
    /* "k8s\0" + Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding, contentType}. */
    api_group_version(r->rsrc, gv, sizeof(gv));
    put_bytes_field(&tm, 1, gv, strlen(gv));
    put_bytes_field(&tm, 2, r->rsrc->list_kind, strlen(r->rsrc->list_kind));
    kcp_buf_append(out, "k8s\0", 4);
    put_bytes_field(out, 1, tm.data, tm.len);
    kcp_buf_append(out, "\x12", 1);
    api_pb_varint(out, raw_len);
    put_bytes_field(out, 1, meta.data, meta.len);
    kcp_buf_free(&tm);
    kcp_buf_free(&meta);
}
