/* GET and LIST: objects from the store's cache, selectors, pagination, tables, streaming. */
#include "api_int.h"

#include "list.h"

#include <kcp/selector.h>

#include <errno.h>
#include <inttypes.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_key(struct api_req *r, struct kcp_buf *out, const char *name)
{
    const char *ns = r->rsrc->namespaced ? r->path.namespace_ : NULL;
    kcp_store_key(out, r->rsrc->group, r->rsrc->resource, ns, name);
}

/* ---- field selectors ---- */

/* Fields a selector may name beyond metadata.name and metadata.namespace (upstream's). */
static const struct {
    const char *resource;
    const char *fields[10];
} extra_fields[] = {
    {"pods", {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
              "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
              "status.nominatedNodeName", NULL}},
    {"events", {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                "involvedObject.fieldPath", "reason", "source", "type"}},
    {"secrets", {"type", NULL}},
    {"namespaces", {"status.phase", NULL}},
    {"nodes", {"spec.unschedulable", NULL}},
    {"replicasets", {"status.replicas", NULL}},
    {"jobs", {"status.successful", NULL}},
    {"certificatesigningrequests", {"spec.signerName", NULL}},
};

static bool field_supported(void *ctx, const char *field)
{
    const struct kcp_schema_resource *rsrc = ctx;
    if (strcmp(field, "metadata.name") == 0 || strcmp(field, "metadata.namespace") == 0)
        return true;
    for (size_t i = 0; i < sizeof(extra_fields) / sizeof(extra_fields[0]); i++) {
        if (strcmp(extra_fields[i].resource, rsrc->resource) != 0)
            continue;
        for (size_t k = 0; k < 10 && extra_fields[i].fields[k]; k++)
            if (strcmp(extra_fields[i].fields[k], field) == 0)
                return true;
    }
    return false;
}

struct field_ctx {
    const json_t *obj;
    char scratch[32];
};

static int field_get(void *ctx, const char *field, const char **out)
{
    struct field_ctx *fc = ctx;
    const json_t *v = fc->obj;
    char path[256];
    snprintf(path, sizeof(path), "%s", field);
    char *save = NULL;
    for (char *seg = strtok_r(path, ".", &save); seg && v; seg = strtok_r(NULL, ".", &save))
        v = json_object_get(v, seg);
    if (json_is_string(v))
        *out = json_string_value(v);
    else if (json_is_boolean(v))
        *out = json_is_true(v) ? "true" : "false";
    else if (json_is_integer(v)) {
        snprintf(fc->scratch, sizeof(fc->scratch), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = fc->scratch;
    } else
        *out = ""; /* an unset field matches "" as upstream's zero value does */
    return 0;
}

int api_filter_parse(struct api_req *r, struct api_filter *out)
{
    char *err = NULL;
    memset(out, 0, sizeof(*out));
    const char *ls = api_query(r, "labelSelector");
    const char *fs = api_query(r, "fieldSelector");
    if (ls && *ls && kcp_selector_parse_labels(&out->labels, ls, &err) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "%s", err ? err : "invalid label selector");
        free(err);
        return KCP_EBADREQUEST;
    }
    if (fs && *fs) {
        if (kcp_selector_parse_fields(&out->fields, fs, &err) != 0 ||
            kcp_selector_fields_check(out->fields, field_supported, (void *)r->rsrc, &err) != 0) {
            api_filter_free(out);
            api_fail(r, KCP_EBADREQUEST, NULL, NULL, "%s", err ? err : "invalid field selector");
            free(err);
            return KCP_EBADREQUEST;
        }
    }
    return 0;
}

bool api_filter_match(const struct api_req *r, const struct api_filter *f, const json_t *obj)
{
    if (f->labels &&
        !kcp_selector_labels_matches(f->labels, json_object_get(json_object_get(obj, "metadata"), "labels")))
        return false;
    if (f->fields) {
        struct field_ctx fc = {.obj = obj};
        if (!kcp_selector_fields_matches(f->fields, field_get, &fc))
            return false;
    }
    return true;
}

void api_filter_free(struct api_filter *f)
{
    kcp_selector_labels_free(f->labels);
    kcp_selector_fields_free(f->fields);
    f->labels = NULL;
    f->fields = NULL;
}

/* ---- resourceVersion parameters ---- */

/* A read that names a revision the store has not reached waits for it, up to 3 s (upstream). */
#define RV_WAIT_MS 3000
#define RV_POLL_MS 20

struct rv_wait {
    uv_timer_t timer;
    struct api_req *r;
};

static void rv_wait_on_closed(uv_handle_t *h)
{
    struct rv_wait *w = h->data;
    struct api_req *r = w->r;
    free(w);
    r->in_store = false;
    if (r->gone) {
        api_req_finish(r);
        return;
    }
    if (r->verb == API_VERB_GET)
        api_get(r);
    else
        api_list(r);
}

static void rv_wait_on_timer(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, rv_wait_on_closed);
}

/* 1 when the request was parked to be retried, 0 when the deadline passed. */
static int rv_wait(struct api_req *r)
{
    uint64_t now = kcp_clock_now_ms(r->api->loop->clock);
    if (!r->rv_deadline_ms)
        r->rv_deadline_ms = now + RV_WAIT_MS;
    if (now >= r->rv_deadline_ms)
        return 0;
    struct rv_wait *w = kcp_calloc(1, sizeof(*w));
    w->r = r;
    uv_timer_init(&r->api->loop->uv, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, rv_wait_on_timer, RV_POLL_MS, 0);
    r->in_store = true; /* keeps r alive if the client leaves meanwhile */
    return 1;
}

/* The revision a read asks for: 0 = latest. Completes the request on a bad value. */
static int read_revision(struct api_req *r, uint64_t *out)
{
    const char *rv = api_query(r, "resourceVersion");
    const char *match = api_query(r, "resourceVersionMatch");
    *out = 0;
    if (match && *match && strcmp(match, "Exact") != 0 && strcmp(match, "NotOlderThan") != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "unsupported resourceVersionMatch: %s", match);
        return KCP_EBADREQUEST;
    }
    if (!rv || !*rv || strcmp(rv, "0") == 0) {
        if (match && *match && (!rv || !*rv)) {
            api_fail(r, KCP_EINVALID, NULL, NULL,
                     "resourceVersionMatch is forbidden unless resourceVersion is provided");
            return KCP_EINVALID;
        }
        return 0;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(rv, &end, 10);
    if (errno || *end || rv[0] == '-') {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "invalid resource version: %s", rv);
        return KCP_EBADREQUEST;
    }
    /* Exact asks for that snapshot; NotOlderThan (and no match) for anything at least as new. */
    if (match && strcmp(match, "Exact") == 0)
        *out = n;
    else if (n > kcp_store_revision(r->api->store)) {
        if (rv_wait(r))
            return 1;
        /* client-go looks for this cause (and retries after a second). */
        char msg[128];
        snprintf(msg, sizeof(msg), "Too large resource version: %llu, current: %" PRIu64, n,
                 kcp_store_revision(r->api->store));
        json_t *causes = json_pack("[{s:s, s:s}]", "reason", "ResourceVersionTooLarge", "message",
                                   "Too large resource version");
        if (r->res)
            kcp_http_set_header(r->res, "Retry-After", "1");
        api_fail(r, KCP_ETIMEOUT, NULL, causes, "%s", msg);
        return KCP_ETIMEOUT;
    }
    return 0;
}

/* ---- GET ---- */

void api_get(struct api_req *r)
{
    uint64_t rev = 0;
    struct kcp_obj *obj = NULL;
    if (read_revision(r, &rev) != 0)
        return;
    api_key(r, &r->key, r->path.name);
    int rc = kcp_store_get(r->api->store, r->key.data, r->key.len, rev, &obj);
    if (rc == KCP_EGONE)
        return api_fail(r, KCP_EGONE, NULL, NULL, "too old resource version: %" PRIu64, rev);
    if (rc != 0)
        return api_fail_object(r, rc, r->path.name);
    if (r->sub && strcmp(r->sub->name, "scale") == 0) {
        json_t *scale = api_scale_of(r, obj->doc);
        kcp_obj_unref(obj);
        api_respond_object(r, 200, scale);
        json_decref(scale);
        return;
    }
    api_respond_stored(r, 200, obj);
    kcp_obj_unref(obj);
}

/* ---- continue tokens: base64url("<revision>/<last key>") (api_continue_encode) ---- */

static int continue_decode(const char *token, uint64_t *out_rev, struct kcp_buf *out_key)
{
    size_t len = strlen(token), n = 0;
    if (len > 4096)
        return KCP_EBADREQUEST;
    char *std = kcp_strdup(token);
    for (char *p = std; *p; p++)
        *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
    unsigned char buf[4096];
    int rc = mbedtls_base64_decode(buf, sizeof(buf) - 1, &n, (unsigned char *)std, len);
    free(std);
    if (rc != 0)
        return KCP_EBADREQUEST;
    buf[n] = '\0';
    char *slash = memchr(buf, '/', n);
    if (!slash || slash == (char *)buf)
        return KCP_EBADREQUEST;
    *slash = '\0';
    char *end = NULL;
    *out_rev = strtoull((char *)buf, &end, 10);
    if (*end || *out_rev == 0)
        return KCP_EBADREQUEST;
    kcp_buf_reset(out_key);
    kcp_buf_append(out_key, slash + 1, n - (size_t)(slash + 1 - (char *)buf));
    return 0;
}

/* ---- LIST ---- */

/*
 * JSON and protobuf lists and JSON Tables stream (list.c). What is left is built whole here:
 * PartialObjectMetadataList, YAML, and the kinds without a protobuf form asked for in protobuf.
 */
struct list_ctx {
    struct api_req *r;
    struct api_filter filter;
    size_t limit;
    size_t matched;
    bool stopped_early;
    struct kcp_buf last_key;
    json_t *items;
};

#define LIST_STOP 1

static int list_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct list_ctx *lc = ctx;
    if (lc->limit && lc->matched == lc->limit) {
        lc->stopped_early = true;
        return LIST_STOP;
    }
    if (!api_filter_match(lc->r, &lc->filter, obj->doc))
        return 0;
    lc->matched++;
    kcp_buf_reset(&lc->last_key);
    kcp_buf_append(&lc->last_key, obj->key, obj->key_len);
    json_array_append(lc->items, obj->doc);
    return 0;
}

static void list_finish_object(struct list_ctx *lc, uint64_t rev, const char *cont)
{
    struct api_req *r = lc->r;
    char gv[128], rvs[32];
    json_t *list = json_object();
    if (r->media.as == API_AS_PARTIAL) {
        json_object_set_new(list, "kind", json_string("PartialObjectMetadataList"));
        json_object_set_new(list, "apiVersion", json_string("meta.k8s.io/v1"));
        size_t i;
        json_t *item;
        json_t *partial = json_array();
        json_array_foreach(lc->items, i, item)
            json_array_append_new(partial, api_partial_of(item));
        json_decref(lc->items);
        lc->items = partial;
    } else {
        json_object_set_new(list, "kind", json_string(r->rsrc->list_kind));
        json_object_set_new(list, "apiVersion",
                            json_string(api_group_version(r->rsrc, gv, sizeof(gv))));
    }
    json_t *meta = json_object();
    snprintf(rvs, sizeof(rvs), "%" PRIu64, rev);
    json_object_set_new(meta, "resourceVersion", json_string(rvs));
    if (cont)
        json_object_set_new(meta, "continue", json_string(cont));
    json_object_set_new(list, "metadata", meta);
    json_object_set(list, "items", lc->items);
    api_respond_object(r, 200, list);
    json_decref(list);
}

/* The list kind list.c streams for the negotiated media, or -1 to build it here. */
static int streamed_kind(const struct api_req *r)
{
    if (r->media.format == API_FORMAT_JSON && r->media.as == API_AS_OBJECT)
        return API_LIST_JSON;
    /* A Table is answered in JSON whatever format was asked for, as before. */
    if (r->media.as == API_AS_TABLE)
        return API_LIST_TABLE;
    if (r->media.format == API_FORMAT_PROTOBUF && r->media.as == API_AS_OBJECT &&
        kcp_schema_message_at(r->rsrc->msg) && r->rsrc->list_msg >= 0 &&
        kcp_schema_message_find("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"))
        return API_LIST_PROTOBUF;
    return -1;
}

void api_list(struct api_req *r)
{
    struct list_ctx lc;
    uint64_t rev = 0;
    memset(&lc, 0, sizeof(lc));
    lc.r = r;
    if (read_revision(r, &rev) != 0)
        return;
    if (api_filter_parse(r, &lc.filter) != 0)
        return;
    const char *limit = api_query(r, "limit");
    if (limit && *limit) {
        char *end = NULL;
        long long n = strtoll(limit, &end, 10);
        if (*end || n < 0) {
            api_filter_free(&lc.filter);
            return api_fail(r, KCP_EBADREQUEST, NULL, NULL, "invalid limit: %s", limit);
        }
        lc.limit = (size_t)n;
    }
    struct kcp_buf start = KCP_BUF_INIT;
    const char *cont = api_query(r, "continue");
    if (cont && *cont) {
        if (continue_decode(cont, &rev, &start) != 0) {
            api_filter_free(&lc.filter);
            kcp_buf_free(&start);
            return api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                            "continue key is not valid: the continue token is malformed");
        }
    }
    api_key(r, &r->key, NULL);
    int kind = streamed_kind(r);
    if (kind >= 0) {
        api_list_stream(r, &lc.filter, (enum api_list_kind)kind, rev, start.data, start.len,
                        lc.limit);
        goto done;
    }
    lc.items = json_array();
    struct kcp_store_list_result res;
    memset(&res, 0, sizeof(res));
    int rc = kcp_store_list(r->api->store, r->key.data, r->key.len, rev,
                            start.len ? start.data : NULL, start.len, 0, list_on_item, &lc, &res);
    if (rc == LIST_STOP)
        rc = 0;
    if (rc == KCP_EGONE) {
        api_fail(r, KCP_EGONE, NULL, NULL,
                 "The provided continue parameter is too old to display a consistent list "
                 "result. You can start a new list without the continue parameter.");
        goto done;
    }
    if (rc != 0) {
        api_fail(r, rc, NULL, NULL, "list: %s", kcp_error_message(rc));
        goto done;
    }
    char *token = lc.stopped_early
                      ? api_continue_encode(res.revision, lc.last_key.data, lc.last_key.len)
                      : NULL;
    list_finish_object(&lc, res.revision, token);
    free(token);
done:
    kcp_buf_free(&start);
    api_filter_free(&lc.filter);
    json_decref(lc.items);
    kcp_buf_free(&lc.last_key);
}
