/*
 * /openapi/v2 and /openapi/v3: documents generated from the schema at build time. v3 documents
 * are addressed by a content hash so kubectl can cache them for good (WIRE.md §3); v2 is served
 * as JSON or as gnostic's protobuf (openapi_pb.c), which kubectl asks for when v3 falls short.
 */
#include "openapi.h"

#include <mbedtls/sha512.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct v3_doc {
    char *json;
    size_t len;
    char hash[129];
};

static struct v3_doc *v3_docs; /* indexed like kcp_schema_openapi_v3_path; built on first use */

static int v3_load(size_t i)
{
    if (!v3_docs)
        v3_docs = kcp_calloc(kcp_schema_openapi_v3_count(), sizeof(*v3_docs));
    struct v3_doc *d = &v3_docs[i];
    if (d->json)
        return 0;
    int rc = kcp_schema_openapi_v3(kcp_schema_openapi_v3_path(i), &d->json, &d->len);
    if (rc)
        return rc;
    unsigned char sum[64];
    mbedtls_sha512_ret((const unsigned char *)d->json, d->len, sum, 0);
    for (int k = 0; k < 64; k++)
        snprintf(d->hash + 2 * k, 3, "%02X", sum[k]);
    return 0;
}

static void respond_text(struct kcp_http_response *res, int code, const char *ct, const char *body,
                         size_t len)
{
    kcp_http_respond(res, code, ct, body, len);
}

static void v3_index(struct kcp_http_response *res)
{
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_buf_puts(&b, "{\"paths\":{");
    for (size_t i = 0; i < kcp_schema_openapi_v3_count(); i++) {
        if (v3_load(i) != 0)
            continue;
        const char *path = kcp_schema_openapi_v3_path(i);
        kcp_buf_printf(&b, "%s\"%s\":{\"serverRelativeURL\":\"/openapi/v3/%s?hash=%s\"}",
                       i ? "," : "", path, path, v3_docs[i].hash);
    }
    kcp_buf_puts(&b, "}}");
    respond_text(res, 200, "application/json", b.data, b.len);
    kcp_buf_free(&b);
}

static void v3_document(struct kcp_http_request *req, struct kcp_http_response *res,
                        const char *path)
{
    for (size_t i = 0; i < kcp_schema_openapi_v3_count(); i++) {
        if (strcmp(kcp_schema_openapi_v3_path(i), path) != 0)
            continue;
        if (v3_load(i) != 0)
            break;
        const char *hash = kcp_http_query(req, "hash");
        char etag[140];
        snprintf(etag, sizeof(etag), "\"%s\"", v3_docs[i].hash);
        if (hash && strcmp(hash, v3_docs[i].hash) != 0) {
            /* A stale hash: send the client to the current document. */
            char *loc = kcp_sprintf("/openapi/v3/%s?hash=%s", path, v3_docs[i].hash);
            kcp_http_set_header(res, "Location", loc);
            free(loc);
            kcp_http_respond(res, 301, "text/plain", "", 0);
            return;
        }
        kcp_http_set_header(res, "Etag", etag);
        kcp_http_set_header(res, "Vary", "Accept");
        kcp_http_set_header(res, "Cache-Control", hash ? "public, immutable" : "no-cache, private");
        respond_text(res, 200, "application/json", v3_docs[i].json, v3_docs[i].len);
        return;
    }
    kcp_http_respond_status(res, KCP_ENOTFOUND, "the server could not find the requested resource");
}

/* ---- /openapi/v2 ---- */

/*
 * What kube-openapi's handler serves at /openapi/v2: JSON, or the document as gnostic's
 * protobuf Document for either of its protobuf media types, with the same ETag (the JSON's
 * SHA-512) and Vary: Accept on both. Built on first use and kept.
 */
#define V2_PB_TYPE "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

static struct {
    char *pb;
    size_t pb_len;
    char etag[131]; /* "\"<128 hex digits>\"" */
} v2;

static int v2_load(struct kcp_api *api)
{
    if (!api->openapi_v2 && kcp_schema_openapi_v2(&api->openapi_v2, &api->openapi_v2_len) != 0)
        return KCP_EINTERNAL;
    if (!v2.etag[0]) {
        unsigned char sum[64];
        mbedtls_sha512_ret((const unsigned char *)api->openapi_v2, api->openapi_v2_len, sum, 0);
        v2.etag[0] = '"';
        for (int k = 0; k < 64; k++)
            snprintf(v2.etag + 1 + 2 * k, 3, "%02X", sum[k]);
        v2.etag[129] = '"';
        v2.etag[130] = '\0';
    }
    return 0;
}

static int v2_pb_load(struct kcp_api *api)
{
    if (v2.pb)
        return 0;
    json_t *doc = json_loadb(api->openapi_v2, api->openapi_v2_len, 0, NULL);
    struct kcp_buf b = KCP_BUF_INIT;
    int rc = doc ? api_openapi_v2_protobuf(&b, doc) : KCP_EINTERNAL;
    json_decref(doc);
    if (rc != 0) {
        kcp_buf_free(&b);
        return KCP_EINTERNAL;
    }
    v2.pb_len = b.len;
    v2.pb = kcp_buf_detach(&b);
    return 0;
}

enum v2_format { V2_JSON, V2_PROTOBUF, V2_NONE };

struct accept_clause {
    const char *type, *subtype;
    size_t type_len, subtype_len;
    double q;
    size_t order;
};

static bool clause_is(const char *s, size_t len, const char *want)
{
    return (len == 1 && s[0] == '*') || (strlen(want) == len && strncasecmp(s, want, len) == 0);
}

/* goautoneg's order: q first, then concrete types and subtypes before wildcards. */
static int clause_cmp(const void *a, const void *b)
{
    const struct accept_clause *x = a, *y = b;
    if (x->q != y->q)
        return x->q > y->q ? -1 : 1;
    bool xt = !(x->type_len == 1 && x->type[0] == '*');
    bool yt = !(y->type_len == 1 && y->type[0] == '*');
    if (xt != yt)
        return xt ? -1 : 1;
    bool xs = !(x->subtype_len == 1 && x->subtype[0] == '*');
    bool ys = !(y->subtype_len == 1 && y->subtype[0] == '*');
    if (xs != ys)
        return xs ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The first clause of Accept (kube-openapi's rules) that JSON or the protobuf types satisfy. */
static enum v2_format v2_negotiate(const char *accept)
{
    static const char *const subtypes[] = {"json", "com.github.proto-openapi.spec.v2@v1.0+protobuf",
                                           "com.github.proto-openapi.spec.v2.v1.0+protobuf"};
    static const enum v2_format formats[] = {V2_JSON, V2_PROTOBUF, V2_PROTOBUF};
    if (!accept || !*accept)
        accept = "*/*";
    struct accept_clause c[32];
    size_t n = 0;
    for (const char *p = accept; *p && n < 32;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *semi = memchr(p, ';', len);
        size_t mlen = semi ? (size_t)(semi - p) : len;
        while (mlen && (*p == ' ' || *p == '\t')) {
            p++;
            mlen--;
            len--;
        }
        while (mlen && (p[mlen - 1] == ' ' || p[mlen - 1] == '\t'))
            mlen--;
        const char *slash = memchr(p, '/', mlen);
        if (slash) {
            struct accept_clause *cl = &c[n];
            cl->type = p;
            cl->type_len = (size_t)(slash - p);
            cl->subtype = slash + 1;
            cl->subtype_len = mlen - cl->type_len - 1;
            cl->q = 1;
            cl->order = n;
            const char *q = semi ? strstr(semi, "q=") : NULL;
            if (q && q < p + len)
                cl->q = strtod(q + 2, NULL);
            if (cl->q > 0)
                n++;
        }
        p = end ? end + 1 : p + len;
    }
    qsort(c, n, sizeof(c[0]), clause_cmp);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < 3; k++)
            if (clause_is(c[i].type, c[i].type_len, "application") &&
                clause_is(c[i].subtype, c[i].subtype_len, subtypes[k]))
                return formats[k];
    return V2_NONE;
}

/* If-None-Match names the ETag (or is "*"): the client's copy is current. */
static bool v2_not_modified(struct kcp_http_request *req)
{
    const char *inm = kcp_http_header(req, "If-None-Match");
    if (!inm)
        return false;
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, v2.etag, 130) == 0)
            return true;
        const char *next = strchr(p, ',');
        if (!next)
            break;
        p = next;
    }
    return false;
}

static void v2_document(struct kcp_api *api, struct kcp_http_request *req,
                        struct kcp_http_response *res)
{
    enum v2_format f = v2_negotiate(kcp_http_header(req, "Accept"));
    if (f == V2_NONE) {
        kcp_http_respond_status(res, KCP_ENOTACCEPTABLE,
                                "only application/json and "
                                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf are "
                                "served for /openapi/v2");
        return;
    }
    if (v2_load(api) != 0 || (f == V2_PROTOBUF && v2_pb_load(api) != 0)) {
        kcp_http_respond_status(res, KCP_EINTERNAL, "the OpenAPI document is unavailable");
        return;
    }
    kcp_http_set_header(res, "Vary", "Accept");
    kcp_http_set_header(res, "Etag", v2.etag);
    if (v2_not_modified(req)) {
        kcp_http_respond(res, 304, NULL, "", 0);
        return;
    }
    if (f == V2_PROTOBUF)
        respond_text(res, 200, V2_PB_TYPE, v2.pb, v2.pb_len);
    else
        respond_text(res, 200, "application/json", api->openapi_v2, api->openapi_v2_len);
}

void api_openapi_on_request(struct kcp_http_request *req, struct kcp_http_response *res,
                            void *data)
{
    struct kcp_api *api = data;
    if (!req->identity || !req->identity->user) {
        kcp_http_respond_status(res, KCP_EUNAUTHORIZED, "Unauthorized");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        kcp_http_respond_status(res, KCP_EMETHOD,
                                "the server does not allow this method on the requested resource");
        return;
    }
    if (strcmp(req->path, "/openapi/v2") == 0)
        return v2_document(api, req, res);
    if (strcmp(req->path, "/openapi/v3") == 0 || strcmp(req->path, "/openapi/v3/") == 0)
        return v3_index(res);
    if (strncmp(req->path, "/openapi/v3/", 12) == 0)
        return v3_document(req, res, req->path + 12);
    kcp_http_respond_status(res, KCP_ENOTFOUND, "the server could not find the requested resource");
}
