/* One HTTP/1.1 connection: llhttp parsing, deadlines, pipelining and keep-alive. */
/*
 * Happy path: IDLE -> first byte (on_message_begin) -> HEADERS -> headers complete -> BODY ->
 * message complete: the parser pauses, the request is dispatched (DISPATCHED, input paused and
 * buffered in `pending`) -> the response completes -> IDLE, and buffered pipelined requests are
 * parsed next, in order. Keep-alive until the client or HTTP/1.0 says otherwise.
 *
 * Failure modes: headers past max_header_bytes (431), a body past max_body_bytes (413), a bad
 * request (400): a Status is written with Connection: close and the connection closes
 * (CLOSING). Headers not complete within header_timeout_ms of accept or of the request's first
 * byte, a body stalled or a keep-alive connection idle for idle_timeout_ms: closed without a
 * response. The connection goes away while a handler holds the request: the request is
 * detached (kcp_http_on_close fires, or the handler's completion just frees it).
 */
#include "http_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hconn_on_message_begin(llhttp_t *p);
static int hconn_on_url(llhttp_t *p, const char *at, size_t len);
static int hconn_on_header_field(llhttp_t *p, const char *at, size_t len);
static int hconn_on_header_value(llhttp_t *p, const char *at, size_t len);
static int hconn_on_header_value_complete(llhttp_t *p);
static int hconn_on_headers_complete(llhttp_t *p);
static int hconn_on_body(llhttp_t *p, const char *at, size_t len);
static int hconn_on_message_complete(llhttp_t *p);

static const llhttp_settings_t parser_settings = {
    .on_message_begin = hconn_on_message_begin,
    .on_url = hconn_on_url,
    .on_header_field = hconn_on_header_field,
    .on_header_value = hconn_on_header_value,
    .on_header_value_complete = hconn_on_header_value_complete,
    .on_headers_complete = hconn_on_headers_complete,
    .on_body = hconn_on_body,
    .on_message_complete = hconn_on_message_complete,
};

static void hconn_on_data(struct kcp_conn *conn, const char *data, size_t len);
static void hconn_on_close(struct kcp_conn *conn);
static void hconn_on_drain(struct kcp_conn *conn);
static const struct kcp_conn_handler hconn_handler = {hconn_on_data, hconn_on_close,
                                                      hconn_on_drain};

static void hconn_run(struct http_conn *hc);

static void hconn_on_timer(uv_timer_t *t);

static void hconn_arm(struct http_conn *hc, uint64_t ms)
{
    uv_timer_start(&hc->timer, hconn_on_timer, ms, 0);
}

static void hconn_close(struct http_conn *hc, bool graceful)
{
    hc->state = HC_CLOSING;
    uv_timer_stop(&hc->timer);
    if (hc->conn)
        kcp_conn_close(hc->conn, graceful);
}

/* Answers a request that never reached a handler with a Status, and closes. */
static void hconn_fail(struct http_conn *hc, int code, const char *reason, const char *msg)
{
    struct kcp_buf out = KCP_BUF_INIT;
    KCP_LOG_V(2, "http", "rejecting request: %d %s", code, msg);
    http_error_response(&out, code, reason, msg, NULL);
    if (hc->conn)
        kcp_conn_write(hc->conn, out.data, out.len);
    kcp_buf_free(&out);
    if (hc->cur) {
        http_exchange_free(hc->cur);
        hc->cur = NULL;
    }
    hconn_close(hc, true);
}

static void hconn_on_timer(uv_timer_t *t)
{
    struct http_conn *hc = t->data;
    switch (hc->state) {
    case HC_IDLE:
        if (hc->resume) {
            hc->resume = false;
            hconn_run(hc);
            return;
        }
        if (hc->first)
            KCP_LOG_V(2, "http", "closing a connection that sent no request in time");
        hconn_close(hc, true);
        break;
    case HC_HEADERS:
        KCP_LOG_V(2, "http", "closing a connection whose request headers did not arrive in time");
        hconn_close(hc, true);
        break;
    case HC_BODY:
        KCP_LOG_V(2, "http", "closing a connection whose request body stalled");
        hconn_close(hc, true);
        break;
    default:
        break;
    }
}

/* A llhttp callback's way to reject the request: the parser stops with HPE_USER. */
static int hconn_reject(struct http_conn *hc, int code, const char *reason, const char *msg)
{
    hc->fail_code = code;
    hc->fail_reason = reason;
    hc->fail_msg = msg;
    return -1;
}

static int hconn_count_header(struct http_conn *hc, size_t len)
{
    hc->header_bytes += len;
    if (hc->header_bytes > hc->srv->limits.max_header_bytes)
        return hconn_reject(hc, 431, "BadRequest", "request header fields too large");
    return 0;
}

static int hconn_on_message_begin(llhttp_t *p)
{
    struct http_conn *hc = p->data;
    hc->cur = http_exchange_new(hc);
    hc->header_bytes = 0;
    kcp_buf_reset(&hc->url);
    kcp_buf_reset(&hc->field);
    kcp_buf_reset(&hc->value);
    hc->state = HC_HEADERS;
    if (!hc->first)
        hconn_arm(hc, hc->srv->limits.header_timeout_ms);
    return 0;
}

static int hconn_on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    if (hconn_count_header(hc, len) != 0)
        return -1;
    kcp_buf_append(&hc->url, at, len);
    return 0;
}

static int hconn_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    if (hconn_count_header(hc, len) != 0)
        return -1;
    kcp_buf_append(&hc->field, at, len);
    return 0;
}

static int hconn_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    if (hconn_count_header(hc, len) != 0)
        return -1;
    kcp_buf_append(&hc->value, at, len);
    return 0;
}

static int hconn_on_header_value_complete(llhttp_t *p)
{
    struct http_conn *hc = p->data;
    /* ": " and CRLF, so that many empty headers still count against the limit. */
    if (hconn_count_header(hc, 4) != 0)
        return -1;
    http_exchange_add_header(hc->cur, hc->field.data ? hc->field.data : "", hc->field.len,
                             hc->value.data ? hc->value.data : "", hc->value.len);
    kcp_buf_reset(&hc->field);
    kcp_buf_reset(&hc->value);
    return 0;
}

static int hconn_on_headers_complete(llhttp_t *p)
{
    struct http_conn *hc = p->data;
    struct kcp_http_response *ex = hc->cur;
    struct kcp_http_request *req = &ex->req;
    const char *url = hc->url.data ? hc->url.data : "";
    size_t ulen = hc->url.len;

    req->method = llhttp_method_name((llhttp_method_t)p->method);
    ex->head = p->method == HTTP_HEAD;
    ex->http10 = p->http_major == 1 && p->http_minor == 0;
    req->raw_path = http_arena_strndup(&ex->arena, url, ulen);
    const char *q = memchr(url, '?', ulen);
    size_t plen = q ? (size_t)(q - url) : ulen;
    if (q)
        req->raw_query = http_arena_strndup(&ex->arena, q + 1, ulen - plen - 1);
    char *path = http_arena_alloc(&ex->arena, plen + 1);
    if (http_percent_decode(path, url, plen, false) != 0)
        return hconn_reject(hc, 400, "BadRequest", "invalid escape in the request path");
    req->path = path;
    req->headers = ex->headers;
    req->nheaders = ex->nheaders;

    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > hc->srv->limits.max_body_bytes)
        return hconn_reject(hc, 413, "RequestEntityTooLarge", "the request body is too large");
    const char *expect = kcp_http_header(req, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && !ex->http10 && hc->conn)
        kcp_conn_write(hc->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    hc->state = HC_BODY;
    /* A body that stops arriving is bounded by the idle timeout, re-armed as bytes come. */
    hconn_arm(hc, hc->srv->limits.idle_timeout_ms);
    return 0;
}

static int hconn_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    struct kcp_http_response *ex = hc->cur;
    if (ex->body.len + len > hc->srv->limits.max_body_bytes)
        return hconn_reject(hc, 413, "RequestEntityTooLarge", "the request body is too large");
    kcp_buf_append(&ex->body, at, len);
    return 0;
}

static int hconn_on_message_complete(llhttp_t *p)
{
    struct http_conn *hc = p->data;
    struct kcp_http_response *ex = hc->cur;
    ex->keep_alive = llhttp_should_keep_alive(p);
    if (!ex->body.data)
        kcp_buf_append(&ex->body, "", 0); /* req.body is never NULL, always terminated */
    ex->req.body = ex->body.data;
    ex->req.body_len = ex->body.len;
    ex->req.headers = ex->headers;
    ex->req.nheaders = ex->nheaders;
    hc->ready = true;
    /* One request at a time: the rest of the input waits until this one is answered. */
    return HPE_PAUSED;
}

/* Feeds bytes to the parser; returns how many it took (it stops after a complete request). */
static size_t hconn_parse(struct http_conn *hc, const char *data, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&hc->parser, data, len);
    if (e == HPE_OK)
        return len;
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        size_t n = (size_t)(llhttp_get_error_pos(&hc->parser) - data);
        if (e == HPE_PAUSED_UPGRADE) {
            /* No protocol switch is offered: answer the request, then close. */
            if (!hc->ready) {
                hconn_fail(hc, 400, "BadRequest", "protocol upgrade is not supported");
                return len;
            }
            llhttp_resume_after_upgrade(&hc->parser);
            if (hc->cur)
                hc->cur->keep_alive = false;
        } else {
            llhttp_resume(&hc->parser);
        }
        return n > len ? len : n;
    }
    if (hc->fail_code)
        hconn_fail(hc, hc->fail_code, hc->fail_reason, hc->fail_msg);
    else
        hconn_fail(hc, 400, "BadRequest", llhttp_get_error_reason(&hc->parser));
    return len;
}

static void hconn_dispatch(struct http_conn *hc)
{
    struct kcp_http_server *srv = hc->srv;
    struct kcp_http_response *ex = hc->cur;
    hc->state = HC_DISPATCHED;
    uv_timer_stop(&hc->timer);
    ex->state = EX_HANDLING;
    ex->start_ms = uv_now(&srv->loop->uv);
    if (srv->inflight >= srv->limits.max_inflight) {
        kcp_http_set_header(ex, "Retry-After", "1");
        kcp_http_respond_status(ex, KCP_ETOOMANY, "too many requests, please try again later");
        return;
    }
    srv->inflight++;
    ex->inflight = true;
    const struct http_route *r = http_server_match(srv, ex->req.path);
    if (!r) {
        kcp_http_respond_status(ex, KCP_ENOTFOUND,
                                "the server could not find the requested resource");
        return;
    }
    r->handler(&ex->req, ex, r->data);
}

static bool hconn_backlogged(struct http_conn *hc)
{
    return hc->conn && kcp_conn_backlog(hc->conn) > HTTP_PIPELINE_BACKLOG;
}

/* Parses what is buffered and runs the requests it holds, strictly one at a time. */
static void hconn_run(struct http_conn *hc)
{
    if (hc->running)
        return;
    hc->running = true;
    while (hc->state != HC_CLOSING && hc->state != HC_DISPATCHED) {
        if (hc->ready) {
            hc->ready = false;
            hconn_dispatch(hc);
            continue;
        }
        size_t avail = hc->pending.len - hc->pending_off;
        if (avail == 0)
            break;
        if (hc->state == HC_IDLE && hconn_backlogged(hc)) {
            hc->wait_drain = true; /* hconn_on_drain goes on */
            break;
        }
        hc->pending_off += hconn_parse(hc, hc->pending.data + hc->pending_off, avail);
    }
    if (hc->pending_off == hc->pending.len) {
        kcp_buf_free(&hc->pending);
        hc->pending_off = 0;
    }
    hc->running = false;
    if (hc->state == HC_CLOSING || !hc->conn)
        return;
    if (hc->state == HC_IDLE && !hc->first)
        hconn_arm(hc, hc->srv->limits.idle_timeout_ms);
    kcp_conn_pause(hc->conn, hc->state == HC_DISPATCHED || hc->wait_drain);
}

static void hconn_on_drain(struct kcp_conn *conn)
{
    struct http_conn *hc = kcp_conn_data(conn);
    struct kcp_http_response *ex = hc->cur;
    if (hc->state == HC_DISPATCHED && ex && ex->state == EX_STREAMING && ex->drain_cb) {
        kcp_http_drain_cb cb = ex->drain_cb;
        ex->drain_cb = NULL;
        cb(ex, ex->drain_data);
        return;
    }
    if (!hc->wait_drain)
        return;
    hc->wait_drain = false;
    hconn_run(hc);
}

static void hconn_on_data(struct kcp_conn *conn, const char *data, size_t len)
{
    struct http_conn *hc = kcp_conn_data(conn);
    if (hc->state == HC_CLOSING)
        return;
    if (hc->state == HC_BODY)
        hconn_arm(hc, hc->srv->limits.idle_timeout_ms);
    if (hc->pending.len == hc->pending_off && !hc->running && hc->state != HC_DISPATCHED &&
        !hc->wait_drain && !(hc->state == HC_IDLE && hconn_backlogged(hc))) {
        /* The common case parses straight from the read buffer. */
        hc->running = true;
        size_t n = hconn_parse(hc, data, len);
        hc->running = false;
        if (hc->state == HC_CLOSING)
            return;
        if (n < len)
            kcp_buf_append(&hc->pending, data + n, len - n);
    } else {
        kcp_buf_append(&hc->pending, data, len);
    }
    hconn_run(hc);
}

void http_conn_request_done(struct http_conn *hc, bool keep_alive)
{
    hc->cur = NULL;
    if (hc->state == HC_CLOSING)
        return;
    if (!keep_alive || hc->close_after) {
        hconn_close(hc, true);
        return;
    }
    hc->state = HC_IDLE;
    hc->first = false;
    if (hc->running)
        return; /* answered from inside hconn_run, which goes on by itself */
    /* Answered later: go on from the loop, not from inside the handler's call. */
    hc->resume = true;
    hconn_arm(hc, 0);
}

static void hconn_on_timer_closed(uv_handle_t *h)
{
    struct http_conn *hc = h->data;
    struct kcp_http_server *srv = hc->srv;
    kcp_buf_free(&hc->pending);
    kcp_buf_free(&hc->url);
    kcp_buf_free(&hc->field);
    kcp_buf_free(&hc->value);
    http_server_conn_gone(srv, hc);
    free(hc);
}

static void hconn_on_close(struct kcp_conn *conn)
{
    struct http_conn *hc = kcp_conn_data(conn);
    hc->conn = NULL;
    hc->state = HC_CLOSING;
    struct kcp_http_response *ex = hc->cur;
    hc->cur = NULL;
    if (ex && ex->state == EX_PARSING)
        http_exchange_free(ex);
    else if (ex)
        http_exchange_detach(ex);
    uv_timer_stop(&hc->timer);
    uv_close((uv_handle_t *)&hc->timer, hconn_on_timer_closed);
}

void http_conn_shutdown(struct http_conn *hc)
{
    if (hc->state == HC_CLOSING || !hc->conn)
        return;
    struct kcp_http_response *ex = hc->cur;
    if (!ex || ex->state == EX_PARSING) {
        hconn_close(hc, true);
    } else if (ex->state == EX_STREAMING) {
        /* End the stream cleanly (a watch client re-lists elsewhere); on_close tells the handler.
         */
        if (!ex->head && !ex->http10)
            kcp_conn_write(hc->conn, "0\r\n\r\n", 5);
        hconn_close(hc, true);
    } else {
        hc->close_after = true; /* the response in progress goes out with Connection: close */
    }
}

void http_conn_adopt(struct kcp_http_server *srv, struct kcp_conn *conn)
{
    struct http_conn *hc = kcp_calloc(1, sizeof(*hc));
    hc->srv = srv;
    hc->conn = conn;
    hc->state = HC_IDLE;
    hc->first = true;
    llhttp_init(&hc->parser, HTTP_REQUEST, &parser_settings);
    hc->parser.data = hc;
    uv_timer_init(&srv->loop->uv, &hc->timer);
    hc->timer.data = hc;
    hc->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = hc;
    srv->conns = hc;
    srv->nconns++;
    kcp_conn_set_data(conn, hc);
    /* The first request's headers are due header_timeout_ms after accept, handshake included. */
    hconn_arm(hc, srv->limits.header_timeout_ms);
    kcp_conn_start(conn, &hconn_handler);
}
