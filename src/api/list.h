/* Internal to the api module: LIST answers streamed in parts (list.c, list_pb.c, table.c). */
#ifndef KCP_API_LIST_H
#define KCP_API_LIST_H

#include "api_int.h"

/* What a streamed list is made of. */
enum api_list_kind {
    API_LIST_JSON,     /* a <Kind>List in JSON: the stored texts */
    API_LIST_TABLE,    /* a meta.k8s.io/v1 Table in JSON: one row per item */
    API_LIST_PROTOBUF, /* a <Kind>List in protobuf, in its envelope */
};

/*
 * Answers r (a LIST whose key prefix is in r->key) with the items under it at revision rev (0:
 * the latest) that match filter, after the key start (NULL: from the first), at most limit of
 * them (0: all), with a continue token when more follow. The filter moves into the list (*filter
 * is left empty). Completes the request: an error Status when the snapshot cannot be read
 * (nothing sent yet), else a chunked body written in parts while the client keeps up.
 */
void api_list_stream(struct api_req *r, struct api_filter *filter, enum api_list_kind kind,
                     uint64_t rev, const char *start, size_t start_len, size_t limit);

/* Stops a list waiting for its client (r->verb_state set) when the connection closed. */
void api_list_closed(struct api_req *r);

/* base64url("<revision>/<last key>"), the continue token of a page (caller frees). */
char *api_continue_encode(uint64_t rev, const char *key, size_t key_len);

/* ---- list_pb.c ---- */
/* The object's protobuf message, built once and kept on the object; NULL if it has none. */
const void *api_list_pb_item(const struct kcp_schema_message *m, const struct kcp_obj *obj,
                             size_t *len);
/* Bytes an item of len bytes takes in the list message (tag, length, message). */
size_t api_list_pb_item_size(size_t len);
/* Appends the item as field 2 of the list message. */
void api_list_pb_item_write(struct kcp_buf *out, const void *item, size_t len);
/*
 * Appends "k8s\0" + runtime.Unknown{typeMeta, raw: <Kind>List{ListMeta{resourceVersion,
 * continue}} up to its items, which take items_bytes} as upstream writes it; the items and
 * then api_list_pb_tail follow.
 */
void api_list_pb_head(struct kcp_buf *out, const struct api_req *r, uint64_t rev,
                      const char *cont, size_t items_bytes);
/* The envelope's fields after raw (contentEncoding and contentType, both empty). */
#define API_LIST_PB_TAIL "\x1a\x00\x22\x00"
#define API_LIST_PB_TAIL_LEN 4

/* ---- table.c ---- */
/* One row of a Table (new reference): the cells, and the object as include says. */
json_t *api_table_row(const struct kcp_schema_resource *rsrc, const json_t *obj,
                      const char *include, int64_t now);

#endif
