/*
 * The API's entry: routes /api and /apis, resolves the resource and verb of a request, and owns
 * the request's lifetime (a request lives until its response completes, or, when the client
 * leaves first, until no store request is outstanding for it).
 */
#include "api_int.h"

#include "list.h"
#include "services.h"

#include <stdlib.h>
#include <string.h>

void api_watch_closed(struct api_req *r);

static void req_free(struct api_req *r)
{
    api_service_forget(r);
    api_path_free(&r->path);
    json_decref(r->obj);
    json_decref(r->warnings);
    kcp_buf_free(&r->key);
    kcp_buf_free(&r->parked);
    free(r);
}

void api_req_finish(struct api_req *r)
{
    r->res = NULL;
    r->gone = true;
    if (!r->in_store)
        req_free(r);
}

static void req_on_close(struct kcp_http_response *res, void *data)
{
    struct api_req *r = data;
    r->res = NULL;
    r->gone = true;
    if (r->verb == API_VERB_WATCH && r->verb_state) {
        api_watch_closed(r);
        return;
    }
    if (r->verb == API_VERB_LIST && r->verb_state)
        api_list_closed(r); /* a list waiting for its client to drain */
    if (!r->in_store)
        req_free(r);
}

const char *api_query(const struct api_req *r, const char *key)
{
    return kcp_http_query(r->http, key);
}

bool api_query_bool(const struct api_req *r, const char *key)
{
    const char *v = api_query(r, key);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static enum api_verb verb_of(struct api_req *r)
{
    const char *m = r->http->method;
    bool named = r->path.name != NULL;
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
        if (api_query_bool(r, "watch"))
            return API_VERB_WATCH;
        return named ? API_VERB_GET : API_VERB_LIST;
    }
    if (strcmp(m, "POST") == 0)
        return named && !r->path.subresource ? API_VERB_NONE : API_VERB_CREATE;
    if (strcmp(m, "PUT") == 0)
        return named ? API_VERB_UPDATE : API_VERB_NONE;
    if (strcmp(m, "PATCH") == 0)
        return named ? API_VERB_PATCH : API_VERB_NONE;
    if (strcmp(m, "DELETE") == 0)
        return named ? API_VERB_DELETE : API_VERB_DELETECOLLECTION;
    return API_VERB_NONE;
}

static unsigned verb_bit(enum api_verb v)
{
    switch (v) {
    case API_VERB_GET: return KCP_VERB_GET;
    case API_VERB_LIST: return KCP_VERB_LIST;
    case API_VERB_WATCH: return KCP_VERB_WATCH;
    case API_VERB_CREATE: return KCP_VERB_CREATE;
    case API_VERB_UPDATE: return KCP_VERB_UPDATE;
    case API_VERB_PATCH: return KCP_VERB_PATCH;
    case API_VERB_DELETE: return KCP_VERB_DELETE;
    case API_VERB_DELETECOLLECTION: return KCP_VERB_DELETECOLLECTION;
    default: return 0;
    }
}

static void not_found(struct api_req *r)
{
    api_fail(r, KCP_ENOTFOUND, NULL, NULL, "the server could not find the requested resource");
}

static void run_verb(struct api_req *r);

/*
 * A read without a resourceVersion must see every write acknowledged before it began, on
 * whichever server it lands (upstream's "most recent" semantics): it waits for the barrier.
 * So does every write: it reads the current object (or the namespace) before it proposes,
 * and on a follower that has not yet applied a create acknowledged elsewhere it would answer
 * 404. A write takes the write barrier, which on the leader needs no network round (see
 * kcp_api_config.write_barrier; respond.c holds back answers it did not confirm). Reads at a
 * given resourceVersion are served from the local store as they are.
 */
static bool needs_barrier(struct api_req *r)
{
    if (!r->api->barrier)
        return false;
    if (r->verb != API_VERB_GET && r->verb != API_VERB_LIST && r->verb != API_VERB_WATCH)
        return true;
    const char *rv = api_query(r, "resourceVersion");
    return !rv || !*rv;
}

static void barrier_on_done(void *data, int status)
{
    struct api_req *r = data;
    r->in_store = false;
    if (r->gone) {
        req_free(r);
        return;
    }
    if (status == KCP_API_BARRIER_LOCAL) {
        r->unconfirmed = true;
        status = 0;
    }
    if (status != 0)
        return api_fail(r, status, NULL, NULL,
                        status == KCP_EUNAVAILABLE
                            ? "the cluster has no leader: cannot serve a consistent read"
                            : "timed out waiting for a consistent read");
    run_verb(r);
}

static void dispatch_resource(struct api_req *r)
{
    const struct api_path *p = &r->path;
    r->rsrc = kcp_schema_resource_find(p->group, p->version, p->resource);
    if (!r->rsrc)
        return not_found(r);
    /* A namespaced resource is addressed in a namespace except for cluster-wide lists and
     * watches; a cluster-scoped one never is. */
    if (r->rsrc->namespaced && !p->namespace_ && p->name)
        return not_found(r);
    if (!r->rsrc->namespaced && p->namespace_)
        return not_found(r);
    unsigned allowed = r->rsrc->verbs;
    if (p->subresource) {
        r->sub = kcp_schema_subresource_find(r->rsrc, p->subresource);
        if (!r->sub || r->sub->connect)
            return not_found(r);
        allowed = r->sub->verbs;
    }
    r->verb = verb_of(r);
    if (r->verb == API_VERB_NONE || !(allowed & verb_bit(r->verb))) {
        r->verb = API_VERB_NONE;
        return api_fail(r, KCP_EMETHOD, NULL, NULL,
                        "the server does not allow this method on the requested resource");
    }
    if (r->verb == API_VERB_LIST || r->verb == API_VERB_WATCH || r->verb == API_VERB_DELETECOLLECTION)
        if (p->namespace_ == NULL && r->rsrc->namespaced && r->verb == API_VERB_DELETECOLLECTION)
            return not_found(r);
    if (needs_barrier(r)) {
        bool write =
            r->verb != API_VERB_GET && r->verb != API_VERB_LIST && r->verb != API_VERB_WATCH;
        r->in_store = true; /* keeps r alive if the client leaves meanwhile */
        kcp_api_barrier_fn fn =
            write && r->api->write_barrier ? r->api->write_barrier : r->api->barrier;
        fn(r->api->barrier_data, barrier_on_done, r);
        return;
    }
    run_verb(r);
}

static void run_verb(struct api_req *r)
{
    switch (r->verb) {
    case API_VERB_GET: return api_get(r);
    case API_VERB_LIST: return api_list(r);
    case API_VERB_WATCH: return api_watch(r);
    case API_VERB_CREATE: return api_create(r);
    case API_VERB_UPDATE: return api_update(r);
    case API_VERB_PATCH: return api_patch(r);
    case API_VERB_DELETE: return api_delete(r);
    case API_VERB_DELETECOLLECTION: return api_delete_collection(r);
    default: return not_found(r);
    }
}

static void api_on_request(struct kcp_http_request *req, struct kcp_http_response *res,
                           void *data)
{
    struct api_req *r = kcp_calloc(1, sizeof(*r));
    r->api = data;
    r->http = req;
    r->res = res;
    kcp_http_on_close(res, req_on_close, r);
    /* Only clients with a certificate from the cluster CA may use the API; bearer tokens are
     * not served yet, so an anonymous client has no way in (health and /version stay open). */
    if (!req->identity || !req->identity->user)
        return api_fail(r, KCP_EUNAUTHORIZED, NULL, NULL, "Unauthorized");
    if (api_path_parse(&r->path, req->path) != 0)
        return not_found(r);
    bool discovery = r->path.kind != API_PATH_RESOURCE;
    bool aggregated = r->path.kind == API_PATH_LEGACY_ROOT || r->path.kind == API_PATH_GROUPS_ROOT;
    if (api_media_negotiate(&r->media, kcp_http_header(req, "Accept"), aggregated) != 0)
        return api_fail(r, KCP_ENOTACCEPTABLE, NULL, NULL,
                        "only the following media types are accepted: application/json, "
                        "application/vnd.kubernetes.protobuf");
    if (discovery)
        return api_discovery(r);
    dispatch_resource(r);
}

int kcp_api_new(struct kcp_api **out, const struct kcp_api_config *cfg)
{
    struct kcp_api *api = kcp_calloc(1, sizeof(*api));
    api->loop = cfg->loop;
    api->http = cfg->http;
    api->store = cfg->store;
    api->max_watchers = cfg->max_watchers ? cfg->max_watchers : 10000;
    api->barrier = cfg->barrier;
    api->barrier_data = cfg->barrier_data;
    api->write_barrier = cfg->barrier ? cfg->write_barrier : NULL;
    kcp_http_route(cfg->http, "/api", true, api_on_request, api);
    kcp_http_route(cfg->http, "/apis", true, api_on_request, api);
    kcp_http_route(cfg->http, "/openapi", true, api_openapi_on_request, api);
    *out = api;
    return 0;
}

void kcp_api_free(struct kcp_api *api)
{
    if (!api)
        return;
    free(api->openapi_v2);
    free(api);
}
