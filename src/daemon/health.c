/* /healthz, /livez, /readyz (with ?verbose and per-check paths) and /version. */
#include "daemon_int.h"

#include <kcp/base.h>

#include <stdlib.h>
#include <string.h>

struct check {
    const char *name;
    bool (*ok)(struct daemon *d);
};

static bool check_ping(struct daemon *d)
{
    return true;
}

static bool check_api(struct daemon *d)
{
    return d->ready;
}

/* A leader is known: without one (a minority cut off) writes cannot succeed. */
static bool check_raft(struct daemon *d)
{
    return kcp_cluster_ready(d->cluster);
}

static bool check_certificates(struct daemon *d)
{
    int64_t left = 0;
    return kcp_pki_leaf_remaining(d->opts->data_dir, kcp_clock_wall_s(&d->clock), &left) == 0 &&
           left > 0;
}

static const struct check live_checks[] = {{"ping", check_ping}, {NULL, NULL}};
static const struct check ready_checks[] = {
    {"ping", check_ping}, {"api-served", check_api}, {"raft-leader", check_raft}, {"certificates", check_certificates},
    {NULL, NULL}};

/* The upstream shape: "ok", or with ?verbose one "[+]name ok" line per check. */
static void answer(struct kcp_http_request *req, struct kcp_http_response *res,
                   struct daemon *d, const char *endpoint, const struct check *checks)
{
    struct kcp_buf b = KCP_BUF_INIT;
    const char *only = NULL;
    size_t plen = strlen(endpoint);
    if (strncmp(req->path, endpoint, plen) == 0 && req->path[plen] == '/')
        only = req->path + plen + 1;
    bool verbose = kcp_http_query(req, "verbose") != NULL;
    /* The route is a prefix; "/healthzx" is not ours. */
    bool all_ok = true, found = only == NULL && strcmp(req->path, endpoint) == 0;
    for (const struct check *c = checks; c->name; c++) {
        if (only && strcmp(only, c->name) != 0)
            continue;
        found = true;
        bool ok = c->ok(d);
        all_ok = all_ok && ok;
        kcp_buf_printf(&b, ok ? "[+]%s ok\n" : "[-]%s failed: reason withheld\n", c->name);
    }
    if (!found || (only && !*only)) {
        kcp_buf_free(&b);
        kcp_http_respond_status(res, KCP_ENOTFOUND, "the server could not find the requested resource");
        return;
    }
    if (!verbose && all_ok) {
        kcp_buf_reset(&b);
        kcp_buf_puts(&b, "ok");
    } else {
        kcp_buf_printf(&b, "%s check %s\n", endpoint + 1, all_ok ? "passed" : "failed");
    }
    kcp_http_set_header(res, "X-Content-Type-Options", "nosniff");
    kcp_http_respond(res, all_ok ? 200 : 500, "text/plain; charset=utf-8", b.data, b.len);
    kcp_buf_free(&b);
}

static void healthz_on_request(struct kcp_http_request *req, struct kcp_http_response *res,
                               void *data)
{
    answer(req, res, data, "/healthz", ready_checks);
}

static void livez_on_request(struct kcp_http_request *req, struct kcp_http_response *res,
                             void *data)
{
    answer(req, res, data, "/livez", live_checks);
}

static void readyz_on_request(struct kcp_http_request *req, struct kcp_http_response *res,
                              void *data)
{
    answer(req, res, data, "/readyz", ready_checks);
}

static void version_on_request(struct kcp_http_request *req, struct kcp_http_response *res,
                               void *data)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        kcp_http_respond_status(res, KCP_EMETHOD, "the server does not allow this method on the requested resource");
        return;
    }
    char *json = kcp_version_json();
    kcp_http_respond(res, 200, "application/json", json, strlen(json));
    free(json);
}

void daemon_health_routes(struct daemon *d)
{
    kcp_http_route(d->http, "/healthz", true, healthz_on_request, d);
    kcp_http_route(d->http, "/livez", true, livez_on_request, d);
    kcp_http_route(d->http, "/readyz", true, readyz_on_request, d);
    kcp_http_route(d->http, "/version", false, version_on_request, d);
}
