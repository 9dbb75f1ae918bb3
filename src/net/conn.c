/* A connection on the loop: reading, the output queue, pausing and the close sequence. */
/*
 * Happy path (TLS): NEW -> kcp_conn_start -> HANDSHAKE (ciphertext read into `in`, mbedTLS
 * reads it through the bio in tls.c, its output is queued in `out` and written with one
 * uv_write at a time) -> OPEN (plaintext to on_data) -> kcp_conn_close(graceful) -> DRAINING
 * (close_notify queued, `out` flushed) -> LINGER (FIN sent, input discarded until the peer's
 * FIN) -> CLOSING (uv_close on both handles) -> on_close -> freed. Plain TCP and memory
 * connections skip HANDSHAKE; memory connections skip LINGER. An outbound connection
 * (connect.c) starts in CONNECTING instead of NEW and is otherwise the same.
 *
 * Failure modes: the handshake fails (the alert mbedTLS queued is flushed: DRAINING) or times
 * out (CLOSING); the peer resets or a write fails (CLOSING at once); the peer sends its FIN
 * while OPEN (DRAINING: what was queued still goes out); the peer never sends its FIN (LINGER
 * ends on its timer); a paused reader's peer keeps sending (reading stops at NET_IN_MAX, so
 * memory stays bounded). on_close fires exactly once for a started connection, always from a
 * libuv close callback, never from inside a kcp_conn_* call.
 */
#include "net_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B(s) (1u << (s))
static const unsigned transitions[] = {
    [CONN_NEW] = B(CONN_CONNECTING) | B(CONN_HANDSHAKE) | B(CONN_OPEN) | B(CONN_CLOSING),
    [CONN_CONNECTING] = B(CONN_HANDSHAKE) | B(CONN_OPEN) | B(CONN_CLOSING),
    [CONN_HANDSHAKE] = B(CONN_OPEN) | B(CONN_DRAINING) | B(CONN_CLOSING),
    [CONN_OPEN] = B(CONN_DRAINING) | B(CONN_CLOSING),
    [CONN_DRAINING] = B(CONN_LINGER) | B(CONN_CLOSING),
    [CONN_LINGER] = B(CONN_CLOSING),
    [CONN_CLOSING] = 0,
};

/* Checked in release builds too: a bad move is a bug that would otherwise corrupt memory. */
void conn_move(struct kcp_conn *c, enum conn_state to)
{
    if (!(transitions[c->state] & B(to))) {
        kcp_log(KCP_LOG_ERROR, "net", "bug: connection state %d -> %d", (int)c->state, (int)to);
        abort();
    }
    c->state = to;
}

static void conn_pump(struct kcp_conn *c);

static struct kcp_conn *conn_alloc(struct kcp_loop *loop, enum conn_kind kind)
{
    struct kcp_conn *c = kcp_calloc(1, sizeof(*c));
    c->kind = kind;
    c->state = CONN_NEW;
    c->loop = loop;
    uv_timer_init(&loop->uv, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    return c;
}

struct kcp_conn *conn_new_tcp(struct kcp_loop *loop, struct kcp_tls_config *tls)
{
    struct kcp_conn *c = conn_alloc(loop, tls ? CONN_TLS : CONN_TCP);
    uv_tcp_init(&loop->uv, &c->tcp);
    c->tcp.data = c;
    c->open_handles++;
    c->tls_cfg = tls;
    return c;
}

struct kcp_conn *kcp_conn_memory_new(struct kcp_loop *loop, kcp_conn_sink_cb sink, void *sink_data)
{
    struct kcp_conn *c = conn_alloc(loop, CONN_MEMORY);
    c->sink = sink;
    c->sink_data = sink_data;
    return c;
}

void conn_describe_peer(const struct kcp_conn *c, char *out, size_t size)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[64] = "?";
    snprintf(out, size, "memory");
    if (c->kind == CONN_MEMORY)
        return;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) {
        if (c->remote.ss_family == 0) {
            snprintf(out, size, "?");
            return;
        }
        ss = c->remote; /* still connecting, or the connect failed */
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, host, sizeof(host));
        snprintf(out, size, "[%s]:%d", host, ntohs(a->sin6_port));
        return;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    uv_ip4_name(a, host, sizeof(host));
    snprintf(out, size, "%s:%d", host, ntohs(a->sin_port));
}

static void conn_free(struct kcp_conn *c)
{
    tls_conn_free(c);
    kcp_buf_free(&c->in);
    kcp_buf_free(&c->out);
    kcp_buf_free(&c->early);
    free(c->wdata);
    free(c);
}

static void conn_on_handle_closed(uv_handle_t *h)
{
    struct kcp_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    if (c->handler && c->handler->on_close)
        c->handler->on_close(c);
    conn_free(c);
}

void conn_close_now(struct kcp_conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    conn_move(c, CONN_CLOSING);
    if (c->kind != CONN_MEMORY) {
        /* A write or shutdown still pending is cancelled before the close callback. */
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
        uv_close((uv_handle_t *)&c->tcp, conn_on_handle_closed);
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_on_handle_closed);
}

static void conn_on_timer(uv_timer_t *t)
{
    struct kcp_conn *c = t->data;
    char peer[80];
    switch (c->state) {
    case CONN_CONNECTING:
        conn_describe_peer(c, peer, sizeof(peer));
        KCP_LOG_V(1, "net", "connect to %s timed out", peer);
        conn_close_now(c);
        break;
    case CONN_HANDSHAKE:
        conn_describe_peer(c, peer, sizeof(peer));
        KCP_LOG_V(1, "net", "TLS handshake with %s timed out", peer);
        conn_close_now(c);
        break;
    case CONN_OPEN:
        conn_pump(c);
        break;
    case CONN_LINGER:
        conn_close_now(c);
        break;
    default:
        break;
    }
}

void conn_set_deadline(struct kcp_conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, conn_on_timer, ms, 0);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
    struct kcp_conn *c = req->data;
    if (c->state != CONN_DRAINING)
        return; /* cancelled by a close */
    if (status < 0 || c->peer_eof) {
        conn_close_now(c);
        return;
    }
    conn_move(c, CONN_LINGER);
    uv_timer_start(&c->timer, conn_on_timer, NET_LINGER_MS, 0);
    conn_update_reading(c);
}

/* Everything queued is written: send our FIN, unless there is nobody left to read it. */
static void conn_drained(struct kcp_conn *c)
{
    if (c->kind == CONN_MEMORY || c->peer_eof) {
        conn_close_now(c);
        return;
    }
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, conn_on_shutdown) != 0)
        conn_close_now(c);
}

static void conn_on_write(uv_write_t *req, int status);

static void conn_flush(struct kcp_conn *c)
{
    if (c->wdata || c->out.len == 0 || c->state == CONN_CLOSING)
        return;
    c->wlen = c->out.len;
    c->wdata = kcp_buf_detach(&c->out);
    uv_buf_t buf = uv_buf_init(c->wdata, (unsigned)c->wlen);
    c->wreq.data = c;
    int r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, conn_on_write);
    if (r != 0) {
        free(c->wdata);
        c->wdata = NULL;
        c->wlen = 0;
        conn_close_now(c);
    }
}

static void conn_on_write(uv_write_t *req, int status)
{
    struct kcp_conn *c = req->data;
    free(c->wdata);
    c->wdata = NULL;
    c->wlen = 0;
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        KCP_LOG_V(2, "net", "write: %s", uv_strerror(status));
        conn_close_now(c);
        return;
    }
    conn_flush(c);
    if (c->state == CONN_DRAINING && !c->wdata)
        conn_drained(c);
    else if (c->state == CONN_OPEN && !c->wdata && c->handler && c->handler->on_drain)
        c->handler->on_drain(c);
}

void conn_queue_out(struct kcp_conn *c, const void *data, size_t len)
{
    if (c->kind == CONN_MEMORY) {
        if (c->sink)
            c->sink(c, data, len, c->sink_data);
        return;
    }
    kcp_buf_append(&c->out, data, len);
    conn_flush(c);
}

/* Starts the close sequence with what is queued still to be sent. */
void conn_drain(struct kcp_conn *c)
{
    uv_timer_stop(&c->timer);
    conn_move(c, CONN_DRAINING);
    kcp_buf_free(&c->early);
    /*
     * Undelivered input is dropped, later input discarded as it arrives. Not freed: on_data may
     * be running on it (a handler that closes the connection it is reading).
     */
    c->in_off = c->in.len;
    conn_update_reading(c);
    if (!c->wdata && c->out.len == 0)
        conn_drained(c);
}

/* The connection can carry application data: send what was written early, deliver input. */
void conn_opened(struct kcp_conn *c)
{
    uv_timer_stop(&c->timer);
    conn_move(c, CONN_OPEN);
    if (c->early.len) {
        struct kcp_buf early = c->early;
        c->early = (struct kcp_buf)KCP_BUF_INIT;
        kcp_conn_write(c, early.data, early.len);
        kcp_buf_free(&early);
    }
    conn_pump(c);
}

/* Delivers buffered input to on_data until it is used up or the reader pauses. */
static void conn_pump(struct kcp_conn *c)
{
    if (c->state == CONN_HANDSHAKE) {
        tls_handshake_step(c);
    } else if (c->state == CONN_OPEN && !c->paused) {
        if (c->kind == CONN_TLS) {
            tls_pump(c);
        } else if (c->in.len > c->in_off) {
            size_t n = c->in.len - c->in_off;
            const char *p = c->in.data + c->in_off;
            c->in_off = c->in.len;
            c->handler->on_data(c, p, n);
        }
    }
    if (c->state != CONN_CLOSING && c->in_off == c->in.len) {
        /* Fully consumed: an idle connection keeps no read buffer. */
        kcp_buf_free(&c->in);
        c->in_off = 0;
    }
    conn_update_reading(c);
}

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct kcp_conn *c = h->data;
    (void)suggested;
    if (c->in_off > 0) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    kcp_buf_reserve(&c->in, NET_READ_SIZE);
    /* kcp_buf keeps one byte for its NUL terminator. */
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct kcp_conn *c = s->data;
    (void)buf;
    if (nread == 0 || c->state == CONN_CLOSING)
        return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            KCP_LOG_V(2, "net", "read: %s", uv_strerror((int)nread));
            conn_close_now(c);
            return;
        }
        c->peer_eof = true;
        uv_read_stop(s);
        c->reading = false;
        if (c->state == CONN_LINGER || c->state == CONN_HANDSHAKE || c->state == CONN_NEW)
            conn_close_now(c);
        else if (c->state == CONN_OPEN)
            conn_drain(c);
        return;
    }
    if (c->state == CONN_DRAINING || c->state == CONN_LINGER) {
        c->in.len = 0; /* discarded: we are closing */
        c->in_off = 0;
        return;
    }
    c->in.len += (size_t)nread;
    c->in.data[c->in.len] = '\0';
    conn_pump(c);
}

void conn_update_reading(struct kcp_conn *c)
{
    if (c->kind == CONN_MEMORY)
        return;
    bool want = !c->peer_eof && c->in.len - c->in_off < NET_IN_MAX &&
                (c->state == CONN_HANDSHAKE || c->state == CONN_OPEN || c->state == CONN_DRAINING ||
                 c->state == CONN_LINGER);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read) == 0)
            c->reading = true;
        else
            conn_close_now(c);
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void kcp_conn_start(struct kcp_conn *c, const struct kcp_conn_handler *handler)
{
    assert(handler && !c->handler);
    c->handler = handler;
    if (c->kind == CONN_TLS) {
        if (tls_conn_setup(c) != 0) {
            conn_close_now(c);
            return;
        }
        conn_move(c, CONN_HANDSHAKE);
        uv_timer_start(&c->timer, conn_on_timer, NET_HANDSHAKE_TIMEOUT_MS, 0);
        conn_update_reading(c);
    } else {
        conn_opened(c);
    }
}

int kcp_conn_write(struct kcp_conn *c, const void *data, size_t len)
{
    switch (c->state) {
    case CONN_CONNECTING:
        kcp_buf_append(&c->early, data, len); /* no socket to write to yet */
        return 0;
    case CONN_NEW:
    case CONN_HANDSHAKE:
        if (c->kind == CONN_TLS) {
            kcp_buf_append(&c->early, data, len);
            return 0;
        }
        conn_queue_out(c, data, len);
        return 0;
    case CONN_OPEN:
        if (c->kind == CONN_TLS)
            return tls_write(c, data, len);
        conn_queue_out(c, data, len);
        return 0;
    default:
        return KCP_ECLOSED;
    }
}

size_t kcp_conn_backlog(const struct kcp_conn *c)
{
    return c->out.len + c->wlen + c->early.len;
}

void kcp_conn_pause(struct kcp_conn *c, bool paused)
{
    if (c->paused == paused)
        return;
    c->paused = paused;
    if (c->state != CONN_OPEN)
        return;
    /* Resuming delivers what arrived meanwhile, from the loop rather than from this call. */
    if (!paused && (c->in.len > c->in_off || c->kind == CONN_TLS))
        uv_timer_start(&c->timer, conn_on_timer, 0, 0);
    conn_update_reading(c);
}

void kcp_conn_close(struct kcp_conn *c, bool graceful)
{
    switch (c->state) {
    case CONN_NEW:
    case CONN_CONNECTING: /* nothing sent yet: nothing to flush */
        conn_close_now(c);
        break;
    case CONN_HANDSHAKE:
    case CONN_OPEN:
        if (!graceful) {
            conn_close_now(c);
            break;
        }
        if (c->state == CONN_OPEN && c->kind == CONN_TLS)
            tls_close_notify(c);
        if (c->state != CONN_CLOSING)
            conn_drain(c);
        break;
    case CONN_DRAINING:
    case CONN_LINGER:
        if (!graceful)
            conn_close_now(c);
        break;
    case CONN_CLOSING:
        break;
    }
}

int kcp_conn_memory_feed(struct kcp_conn *c, const void *data, size_t len)
{
    if (c->state != CONN_OPEN && c->state != CONN_NEW)
        return KCP_ECLOSED;
    kcp_buf_append(&c->in, data, len);
    if (c->state == CONN_OPEN)
        conn_pump(c);
    return 0;
}

const struct kcp_peer_identity *kcp_conn_identity(const struct kcp_conn *c)
{
    return c->identity;
}

void kcp_conn_set_data(struct kcp_conn *c, void *data)
{
    c->data = data;
}

void *kcp_conn_data(const struct kcp_conn *c)
{
    return c->data;
}
