/* Outbound connections: a TCP connect, then the same connection an accepted one is. */
/*
 * Happy path: kcp_conn_connect -> CONNECTING (uv_tcp_connect; writes are held in `early`) ->
 * connected: TCP_NODELAY, then plain TCP goes OPEN and sends `early`; TLS goes HANDSHAKE and
 * speaks first (ClientHello), and from there conn.c and tls.c run it as they run an accepted
 * connection.
 *
 * Failure modes: a bad address (KCP_EINVAL, nothing is made); a connect that fails at once or
 * later (refused, unreachable) closes it (CLOSING, on_close from the loop); the connect and
 * the handshake share one deadline, NET_CONNECT_TIMEOUT_MS (CLOSING); a server certificate the
 * CA did not sign fails the handshake (our alert is flushed: DRAINING); kcp_conn_close while
 * CONNECTING closes the socket, which cancels the connect request (its callback then finds the
 * connection CLOSING and does nothing; the connection is freed only after that callback).
 */
#include "net_int.h"

#include <assert.h>
#include <signal.h>

static void conn_on_connect(uv_connect_t *req, int status)
{
    struct kcp_conn *c = req->data;
    char peer[80];
    if (c->state != CONN_CONNECTING)
        return; /* closed meanwhile: status is UV_ECANCELED */
    if (status < 0) {
        conn_describe_peer(c, peer, sizeof(peer));
        KCP_LOG_V(1, "net", "connect to %s: %s", peer, uv_strerror(status));
        conn_close_now(c);
        return;
    }
    /* As for accepted connections: small requests and responses must not wait for Nagle. */
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->kind != CONN_TLS) {
        conn_opened(c);
        return;
    }
    conn_move(c, CONN_HANDSHAKE);
    conn_update_reading(c);
    if (c->state == CONN_HANDSHAKE)
        tls_handshake_step(c);
}

int kcp_conn_connect(struct kcp_conn **out, struct kcp_loop *loop, const char *addr,
                     struct kcp_tls_client_config *tls, const struct kcp_conn_handler *handler,
                     void *data)
{
    struct sockaddr_storage ss;
    assert(out && loop && handler);
    if (kcp_net_parse_addr(addr, &ss) != 0)
        return KCP_EINVAL;
    /* A peer that resets while we write must give EPIPE, not kill the process (listener.c). */
    signal(SIGPIPE, SIG_IGN);
    struct kcp_conn *c = conn_new_tcp(loop, NULL);
    c->handler = handler;
    c->data = data;
    c->remote = ss;
    conn_move(c, CONN_CONNECTING);
    *out = c;
    if (tls) {
        c->kind = CONN_TLS;
        c->client_cfg = tls_client_config_acquire(tls);
        if (tls_conn_setup(c) != 0) {
            conn_close_now(c);
            return 0;
        }
    }
    conn_set_deadline(c, NET_CONNECT_TIMEOUT_MS);
    c->creq.data = c;
    int r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&ss, conn_on_connect);
    if (r != 0) {
        KCP_LOG_V(1, "net", "connect to %s: %s", addr, uv_strerror(r));
        conn_close_now(c);
    }
    return 0;
}
