/* Responses: Content-Length and chunked streaming, completion, and what a closed client leaves. */
#include "http_int.h"

#include <assert.h>
#include <string.h>

static const struct {
    int code;
    const char *text;
} status_texts[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Request Entity Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

const char *http_status_text(int code)
{
    for (size_t i = 0; i < sizeof(status_texts) / sizeof(status_texts[0]); i++)
        if (status_texts[i].code == code)
            return status_texts[i].text;
    return "Status";
}

static void write_head(struct kcp_buf *b, int status, const char *content_type,
                       const struct kcp_buf *extra, bool chunked, size_t len, bool keep_alive)
{
    kcp_buf_printf(b, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    if (content_type)
        kcp_buf_printf(b, "Content-Type: %s\r\n", content_type);
    /* As kube-apiserver: API responses are per-user and must not be cached by intermediaries. */
    kcp_buf_puts(b, "Cache-Control: no-cache, private\r\n");
    if (extra && extra->len)
        kcp_buf_append(b, extra->data, extra->len);
    if (chunked)
        kcp_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    else if (len != (size_t)-1)
        kcp_buf_printf(b, "Content-Length: %zu\r\n", len);
    if (!keep_alive)
        kcp_buf_puts(b, "Connection: close\r\n");
    kcp_buf_puts(b, "\r\n");
}

void http_error_response(struct kcp_buf *out, int code, const char *reason, const char *msg,
                         const char *extra_headers)
{
    struct kcp_buf body = KCP_BUF_INIT;
    struct kcp_buf extra = KCP_BUF_INIT;
    http_status_json(&body, code, reason, msg);
    if (extra_headers)
        kcp_buf_puts(&extra, extra_headers);
    write_head(out, code, "application/json", &extra, false, body.len, false);
    kcp_buf_append(out, body.data, body.len);
    kcp_buf_free(&body);
    kcp_buf_free(&extra);
}

static bool header_ok(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

void kcp_http_set_header(struct kcp_http_response *res, const char *name, const char *value)
{
    if (!header_ok(name) || !header_ok(value) || !name[0]) {
        /* Never let a value split the response (header injection). */
        kcp_log(KCP_LOG_WARN, "http", "dropping response header with CR or LF: %s", name);
        return;
    }
    kcp_buf_printf(&res->res_headers, "%s: %s\r\n", name, value);
}

static bool exchange_keep_alive(const struct kcp_http_response *ex)
{
    const struct http_conn *hc = ex->hc;
    return ex->keep_alive && !hc->close_after && hc->state != HC_CLOSING &&
           hc->srv->state != SERVER_STOPPING && hc->srv->state != SERVER_STOPPED;
}

static void exchange_complete(struct kcp_http_response *ex, bool keep_alive)
{
    struct http_conn *hc = ex->hc;
    struct kcp_http_server *srv = hc->srv;
    if (ex->inflight)
        srv->inflight--;
    KCP_LOG_V(2, "http", "%s %s %d %llums id=%llu", ex->req.method, ex->req.raw_path, ex->status,
              (unsigned long long)(uv_now(&srv->loop->uv) - ex->start_ms),
              (unsigned long long)ex->req.id);
    http_exchange_free(ex);
    http_conn_request_done(hc, keep_alive);
}

static int exchange_write(struct kcp_http_response *ex, const void *data, size_t len)
{
    if (!ex->hc || !ex->hc->conn)
        return KCP_ECLOSED;
    return kcp_conn_write(ex->hc->conn, data, len);
}

void kcp_http_respond(struct kcp_http_response *res, int status, const char *content_type,
                      const void *body, size_t len)
{
    if (!res->hc) {
        http_exchange_free(res); /* the client went away meanwhile */
        return;
    }
    assert(res->state == EX_HANDLING);
    bool keep = exchange_keep_alive(res);
    struct kcp_buf out = KCP_BUF_INIT;
    write_head(&out, status, content_type, &res->res_headers, false, len, keep);
    if (!res->head && len)
        kcp_buf_append(&out, body, len);
    exchange_write(res, out.data, out.len);
    kcp_buf_free(&out);
    res->status = status;
    exchange_complete(res, keep);
}

void kcp_http_stream_begin(struct kcp_http_response *res, int status, const char *content_type)
{
    assert(res->state == EX_HANDLING);
    res->state = EX_STREAMING;
    res->status = status;
    if (!res->hc)
        return;
    /* Long-running, like upstream's watches: not held against max_inflight. */
    if (res->inflight) {
        res->hc->srv->inflight--;
        res->inflight = false;
    }
    if (res->http10)
        res->keep_alive = false; /* no chunked coding: the body ends when the connection does */
    struct kcp_buf out = KCP_BUF_INIT;
    write_head(&out, status, content_type, &res->res_headers, !res->http10, (size_t)-1,
               exchange_keep_alive(res));
    exchange_write(res, out.data, out.len);
    kcp_buf_free(&out);
}

int kcp_http_stream_write(struct kcp_http_response *res, const void *data, size_t len)
{
    struct http_conn *hc = res->hc;
    if (res->state != EX_STREAMING || !hc || !hc->conn || hc->state == HC_CLOSING)
        return KCP_ECLOSED;
    if (kcp_conn_backlog(hc->conn) > hc->srv->limits.max_stream_backlog) {
        KCP_LOG_V(1, "http", "%s %s: client reads too slowly, closing its stream", res->req.method,
                  res->req.raw_path);
        hc->state = HC_CLOSING;
        kcp_conn_close(hc->conn, false);
        return KCP_ETOOMANY;
    }
    if (len == 0 || res->head)
        return 0; /* an empty chunk would end the stream */
    if (res->http10)
        return exchange_write(res, data, len);
    struct kcp_buf out = KCP_BUF_INIT;
    kcp_buf_reserve(&out, len + 32);
    kcp_buf_printf(&out, "%zx\r\n", len);
    kcp_buf_append(&out, data, len);
    kcp_buf_puts(&out, "\r\n");
    int err = exchange_write(res, out.data, out.len);
    kcp_buf_free(&out);
    return err;
}

void kcp_http_stream_end(struct kcp_http_response *res)
{
    if (!res->hc) {
        http_exchange_free(res);
        return;
    }
    assert(res->state == EX_STREAMING);
    if (!res->head && !res->http10)
        exchange_write(res, "0\r\n\r\n", 5);
    exchange_complete(res, exchange_keep_alive(res));
}

size_t kcp_http_stream_backlog(const struct kcp_http_response *res)
{
    if (res->state != EX_STREAMING || !res->hc || !res->hc->conn)
        return 0;
    return kcp_conn_backlog(res->hc->conn);
}

int kcp_http_stream_on_drain(struct kcp_http_response *res, kcp_http_drain_cb cb, void *data)
{
    /* A backlog means a write in flight: its completion tells the connection, then us. */
    if (kcp_http_stream_backlog(res) == 0)
        return KCP_EINVAL;
    res->drain_cb = cb;
    res->drain_data = data;
    return 0;
}

void kcp_http_on_close(struct kcp_http_response *res, kcp_http_close_cb cb, void *data)
{
    res->close_cb = cb;
    res->close_data = data;
}

void http_exchange_detach(struct kcp_http_response *ex)
{
    if (ex->inflight) {
        ex->hc->srv->inflight--;
        ex->inflight = false;
    }
    ex->hc = NULL;
    if (ex->close_cb) {
        ex->state = EX_CLOSED;
        ex->close_cb(ex, ex->close_data);
        http_exchange_free(ex);
    }
    /* Otherwise the handler's completing call frees it. */
}
