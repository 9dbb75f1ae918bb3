/* The HTTP server: routes, the listener, the connection limit and graceful stop. */
#include "http_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int kcp_http_server_new(struct kcp_http_server **out, struct kcp_loop *loop,
                        const struct kcp_http_config *cfg)
{
    if (!cfg->listen)
        return KCP_EINVAL;
    struct kcp_http_server *srv = kcp_calloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->listen = kcp_strdup(cfg->listen);
    srv->tls = cfg->tls;
    srv->limits = cfg->limits;
    srv->state = SERVER_NEW;
    *out = srv;
    return 0;
}

void kcp_http_route(struct kcp_http_server *srv, const char *path, bool prefix,
                    kcp_http_handler handler, void *data)
{
    assert(srv->state == SERVER_NEW);
    srv->routes = kcp_realloc(srv->routes, (srv->nroutes + 1) * sizeof(*srv->routes));
    struct http_route *r = &srv->routes[srv->nroutes++];
    r->path = kcp_strdup(path);
    r->len = strlen(path);
    r->prefix = prefix;
    r->handler = handler;
    r->data = data;
}

const struct http_route *http_server_match(const struct kcp_http_server *srv, const char *path)
{
    const struct http_route *best = NULL;
    size_t plen = strlen(path);
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct http_route *r = &srv->routes[i];
        if (!r->prefix) {
            if (r->len == plen && memcmp(r->path, path, plen) == 0)
                return r; /* an exact route is the longest possible match */
        } else if (r->len <= plen && memcmp(r->path, path, r->len) == 0) {
            if (!best || r->len > best->len)
                best = r;
        }
    }
    return best;
}

static void server_on_accept(struct kcp_listener *lis, struct kcp_conn *conn, void *data)
{
    struct kcp_http_server *srv = data;
    (void)lis;
    if (srv->state != SERVER_RUNNING || srv->nconns >= srv->limits.max_connections) {
        KCP_LOG_V(1, "http", "refusing a connection: %zu of %zu open", srv->nconns,
                  srv->limits.max_connections);
        kcp_conn_close(conn, false);
        return;
    }
    http_conn_adopt(srv, conn);
}

int kcp_http_server_start(struct kcp_http_server *srv)
{
    assert(srv->state == SERVER_NEW);
    int err =
        kcp_listener_new(&srv->listener, srv->loop, srv->listen, srv->tls, server_on_accept, srv);
    if (err != 0)
        return KCP_EIO;
    srv->port = kcp_listener_port(srv->listener);
    srv->state = SERVER_RUNNING;
    KCP_LOG_V(1, "http", "serving %s on %s (port %d)", srv->tls ? "HTTPS" : "HTTP", srv->listen,
              srv->port);
    return 0;
}

int kcp_http_server_port(const struct kcp_http_server *srv)
{
    return srv->port;
}

static void server_check_stopped(struct kcp_http_server *srv)
{
    if (srv->state != SERVER_STOPPING || srv->listener || srv->nconns > 0)
        return;
    srv->state = SERVER_STOPPED;
    if (srv->stopped_cb)
        srv->stopped_cb(srv, srv->stopped_data);
}

static void server_on_listener_closed(struct kcp_listener *lis, void *data)
{
    struct kcp_http_server *srv = data;
    (void)lis;
    srv->listener = NULL;
    server_check_stopped(srv);
}

void http_server_conn_gone(struct kcp_http_server *srv, struct http_conn *hc)
{
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        srv->conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    srv->nconns--;
    server_check_stopped(srv);
}

void kcp_http_server_stop(struct kcp_http_server *srv, kcp_http_stopped_cb cb, void *data)
{
    if (srv->state == SERVER_STOPPING || srv->state == SERVER_STOPPED) {
        if (srv->state == SERVER_STOPPED && cb)
            cb(srv, data);
        else if (cb) {
            srv->stopped_cb = cb;
            srv->stopped_data = data;
        }
        return;
    }
    srv->state = SERVER_STOPPING;
    srv->stopped_cb = cb;
    srv->stopped_data = data;
    if (srv->listener)
        kcp_listener_close(srv->listener, server_on_listener_closed, srv);
    /* Each shutdown only starts an asynchronous close, so the list stays intact meanwhile. */
    for (struct http_conn *hc = srv->conns; hc; hc = hc->next)
        http_conn_shutdown(hc);
    server_check_stopped(srv);
}

void kcp_http_server_free(struct kcp_http_server *srv)
{
    if (!srv)
        return;
    assert(srv->nconns == 0 && !srv->listener);
    for (size_t i = 0; i < srv->nroutes; i++)
        free(srv->routes[i].path);
    free(srv->routes);
    free(srv->listen);
    free(srv);
}
