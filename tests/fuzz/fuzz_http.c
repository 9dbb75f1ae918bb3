/* libFuzzer driver: arbitrary bytes through an HTTP connection's parser, routing and responses. */
#include <kcp/base.h>
#include <kcp/http.h>
#include <kcp/net.h>

#include "http_int.h" /* http_conn_adopt: a connection without a socket */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct kcp_loop loop;
static struct kcp_http_server *srv;
static size_t sunk;

static void sink(struct kcp_conn *conn, const char *data, size_t len, void *sink_data)
{
    (void)conn;
    (void)sink_data;
    (void)data;
    sunk += len;
}

static void handle_ok(struct kcp_http_request *req, struct kcp_http_response *res, void *d)
{
    (void)d;
    kcp_http_set_header(res, "X-Path", req->path);
    kcp_http_respond(res, 200, "text/plain", req->body, req->body_len);
}

static void handle_query(struct kcp_http_request *req, struct kcp_http_response *res, void *d)
{
    struct kcp_buf b = KCP_BUF_INIT;
    const char *keys[] = {"a", "watch", "", "labelSelector"};
    (void)d;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = kcp_http_query(req, keys[i]);
        kcp_buf_printf(&b, "%s=%s;", keys[i], v ? v : "(none)");
    }
    const char *h = kcp_http_header(req, "content-type");
    kcp_buf_puts(&b, h ? h : "");
    kcp_http_respond_status(res, KCP_EINVALID, b.data);
    kcp_buf_free(&b);
}

static void handle_stream(struct kcp_http_request *req, struct kcp_http_response *res, void *d)
{
    (void)d;
    kcp_http_stream_begin(res, 200, "application/json");
    kcp_http_stream_write(res, req->raw_path, strlen(req->raw_path));
    kcp_http_stream_write(res, "", 0);
    kcp_http_stream_write(res, req->body, req->body_len);
    kcp_http_stream_end(res);
}

/* Answers from the loop, so that pipelined input waits and resumes. */
struct later {
    uv_timer_t timer;
    struct kcp_http_response *res;
};

static void later_on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_on_timer(uv_timer_t *t)
{
    struct later *l = t->data;
    kcp_http_respond(l->res, 204, NULL, NULL, 0);
    uv_close((uv_handle_t *)&l->timer, later_on_closed);
}

static void later_on_close(struct kcp_http_response *res, void *data)
{
    struct later *l = data;
    (void)res;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, later_on_closed);
}

static void handle_later(struct kcp_http_request *req, struct kcp_http_response *res, void *d)
{
    struct later *l = calloc(1, sizeof(*l));
    (void)req;
    (void)d;
    l->res = res;
    uv_timer_init(&loop.uv, &l->timer);
    l->timer.data = l;
    kcp_http_on_close(res, later_on_close, l);
    uv_timer_start(&l->timer, later_on_timer, 0, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    uv_loop_init(&loop.uv);
    struct kcp_http_config cfg = {.listen = "127.0.0.1:0"};
    kcp_http_limits_default(&cfg.limits);
    /* Small limits, so that the fuzzer reaches them. */
    cfg.limits.max_header_bytes = 2048;
    cfg.limits.max_body_bytes = 4096;
    cfg.limits.max_inflight = 4;
    if (kcp_http_server_new(&srv, &loop, &cfg) != 0)
        abort();
    kcp_http_route(srv, "/", true, handle_ok, NULL);
    kcp_http_route(srv, "/q", true, handle_query, NULL);
    kcp_http_route(srv, "/s", true, handle_stream, NULL);
    kcp_http_route(srv, "/l", true, handle_later, NULL);
    kcp_http_route(srv, "/exact", false, handle_ok, NULL);
    return 0;
}

/* The loop may close and free the connection (a rejected request, Connection: close). */
static bool conn_alive(void)
{
    return srv->conns && srv->conns->conn;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte picks how the input is cut into reads, as a network would. */
    size_t piece = size ? (size_t)(data[0] % 32) + 1 : 1;
    if (size) {
        data++;
        size--;
    }
    struct kcp_conn *conn = kcp_conn_memory_new(&loop, sink, NULL);
    http_conn_adopt(srv, conn);
    for (size_t off = 0; off < size && conn_alive(); off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        if (kcp_conn_memory_feed(conn, data + off, n) != 0)
            break; /* closing: a rejected request */
        uv_run(&loop.uv, UV_RUN_NOWAIT);
    }
    if (conn_alive())
        uv_run(&loop.uv, UV_RUN_NOWAIT);
    if (conn_alive())
        kcp_conn_close(conn, false);
    uv_run(&loop.uv, UV_RUN_DEFAULT);
    /* Everything the connection owned is gone; a leak here is a bug LeakSanitizer reports. */
    if (srv->nconns != 0 || srv->inflight != 0)
        abort();
    return 0;
}
