/*
 * /openapi/v2 and /openapi/v3: documents generated from the schema at build time. v3 documents
 * are addressed by a content hash so kubectl can cache them for good (WIRE.md §3).
 */
#include "api_int.h"

#include <mbedtls/sha512.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (strcmp(req->path, "/openapi/v2") == 0) {
        const char *accept = kcp_http_header(req, "Accept");
        /* The protobuf form of the v2 document is not served; kubectl 1.32 uses v3 and only
         * falls back to v2 when v3 lacks what it needs (WIRE.md §3). */
        if (accept && strstr(accept, "protobuf") && !strstr(accept, "json") && !strstr(accept, "*/*")) {
            kcp_http_respond_status(res, KCP_ENOTACCEPTABLE,
                                    "only application/json is served for /openapi/v2");
            return;
        }
        if (!api->openapi_v2 && kcp_schema_openapi_v2(&api->openapi_v2, &api->openapi_v2_len) != 0) {
            kcp_http_respond_status(res, KCP_EINTERNAL, "the OpenAPI document is unavailable");
            return;
        }
        respond_text(res, 200, "application/json", api->openapi_v2, api->openapi_v2_len);
        return;
    }
    if (strcmp(req->path, "/openapi/v3") == 0 || strcmp(req->path, "/openapi/v3/") == 0)
        return v3_index(res);
    if (strncmp(req->path, "/openapi/v3/", 12) == 0)
        return v3_document(req, res, req->path + 12);
    kcp_http_respond_status(res, KCP_ENOTFOUND, "the server could not find the requested resource");
}
