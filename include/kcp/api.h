/* kcp api: the Kubernetes REST API (discovery, OpenAPI, verbs) served over kcp http. */
#ifndef KCP_API_H
#define KCP_API_H

#include <kcp/http.h>
#include <kcp/loop.h>
#include <kcp/store.h>

struct kcp_api;

typedef void (*kcp_api_barrier_cb)(void *data, int status);
typedef void (*kcp_api_barrier_fn)(void *barrier_data, kcp_api_barrier_cb cb, void *data);
/* A write barrier's status: the local state is current if this server still leads (below). */
#define KCP_API_BARRIER_LOCAL 1

struct kcp_api_config {
    struct kcp_loop *loop;         /* borrowed; its clock stamps creationTimestamp */
    struct kcp_http_server *http;  /* borrowed; routes are added by kcp_api_new */
    struct kcp_store *store;       /* borrowed; the one write path */
    size_t max_watchers;           /* open watch streams; 429 past it */
    /*
     * Optional linearizable-read barrier (the cluster's ReadIndex): a GET, LIST or WATCH without
     * a resourceVersion waits for cb(data, 0) before reading the store; an error fails it.
     */
    kcp_api_barrier_fn barrier;
    void *barrier_data;
    /*
     * Optional, with barrier: the barrier before a write (create, update, patch, delete,
     * deletecollection), which reads the current state before it proposes. It may answer
     * KCP_API_BARRIER_LOCAL: the local state reflects every write committed before the call
     * provided this server is still the leader, which it did not confirm. Proposals built from
     * it are safe either way (the store decides their preconditions at apply, and a deposed
     * leader's entry never commits); any answer not taken from an applied entry of the request
     * (404, a failed precondition, a no-op update, a dry run) waits for `barrier` first. NULL:
     * writes wait for `barrier`.
     */
    kcp_api_barrier_fn write_barrier;
};

/*
 * Registers /api, /apis and /openapi routes on cfg->http (before it starts). The API object is
 * freed with kcp_api_free after the HTTP server has stopped (no request can be in flight).
 */
int kcp_api_new(struct kcp_api **out, const struct kcp_api_config *cfg);
void kcp_api_free(struct kcp_api *api);

typedef void (*kcp_api_ready_cb)(struct kcp_api *api, int status, void *data);
/*
 * Creates what every cluster starts with (namespaces default, kube-system, kube-public,
 * kube-node-lease) through the write path when missing, then calls cb (status 0 or the error).
 */
void kcp_api_bootstrap(struct kcp_api *api, kcp_api_ready_cb cb, void *data);

/* Ends every open watch stream (shutdown); requests in flight complete normally. */
void kcp_api_stop_watches(struct kcp_api *api);

#endif
