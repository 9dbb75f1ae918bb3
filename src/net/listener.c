/* The listening socket: accepts connections and hands them, not yet started, to its owner. */
#include "net_int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

struct kcp_listener {
    uv_tcp_t tcp;
    struct kcp_loop *loop;
    struct kcp_tls_config *tls;
    kcp_listener_accept_cb cb;
    void *data;
    kcp_listener_closed_cb closed_cb;
    void *closed_data;
    char addr[80];
};

static void listener_on_connection(uv_stream_t *s, int status)
{
    struct kcp_listener *lis = s->data;
    if (status < 0) {
        /* EMFILE and the like: the client retries; say so once per event at -v. */
        KCP_LOG_V(1, "net", "accept on %s: %s", lis->addr, uv_strerror(status));
        return;
    }
    struct kcp_conn *c = conn_new_tcp(lis->loop, lis->tls);
    if (uv_accept(s, (uv_stream_t *)&c->tcp) != 0) {
        conn_close_now(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    lis->cb(lis, c, lis->data);
}

int kcp_listener_new(struct kcp_listener **out, struct kcp_loop *loop, const char *addr,
                     struct kcp_tls_config *tls, kcp_listener_accept_cb cb, void *data)
{
    struct sockaddr_storage ss;
    int r;
    if (kcp_net_parse_addr(addr, &ss) != 0) {
        kcp_log(KCP_LOG_ERROR, "net", "listen address %s: not a numeric HOST:PORT", addr);
        return KCP_EINVAL;
    }
    /*
     * A peer that resets while we write must give EPIPE, not kill the process. Process-wide,
     * and harmless to repeat.
     */
    signal(SIGPIPE, SIG_IGN);
    struct kcp_listener *lis = kcp_calloc(1, sizeof(*lis));
    lis->loop = loop;
    lis->tls = tls;
    lis->cb = cb;
    lis->data = data;
    snprintf(lis->addr, sizeof(lis->addr), "%s", addr);
    uv_tcp_init(&loop->uv, &lis->tcp);
    lis->tcp.data = lis;
    if ((r = uv_tcp_bind(&lis->tcp, (const struct sockaddr *)&ss, 0)) != 0 ||
        (r = uv_listen((uv_stream_t *)&lis->tcp, 511, listener_on_connection)) != 0) {
        kcp_log(KCP_LOG_ERROR, "net", "listen on %s: %s", addr, uv_strerror(r));
        kcp_listener_close(lis, NULL, NULL);
        return KCP_EIO;
    }
    *out = lis;
    return 0;
}

int kcp_listener_port(const struct kcp_listener *lis)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&lis->tcp, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void listener_on_closed(uv_handle_t *h)
{
    struct kcp_listener *lis = h->data;
    if (lis->closed_cb)
        lis->closed_cb(lis, lis->closed_data);
    free(lis);
}

void kcp_listener_close(struct kcp_listener *lis, kcp_listener_closed_cb cb, void *data)
{
    lis->closed_cb = cb;
    lis->closed_data = data;
    uv_close((uv_handle_t *)&lis->tcp, listener_on_closed);
}
