/* kcp http: an HTTP/1.1 server (llhttp) over kcp net, with routing, limits and streaming. */
#ifndef KCP_HTTP_H
#define KCP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kcp/loop.h>
#include <kcp/net.h>

/* Every limit is explicit; exceeding one is answered with a Kubernetes Status, never a crash. */
struct kcp_http_limits {
    size_t max_header_bytes;    /* request line + headers; 431/400 past it */
    size_t max_body_bytes;      /* 413 RequestEntityTooLarge past it (3 MiB, as upstream) */
    size_t max_connections;     /* further connections are closed at accept */
    size_t max_inflight;        /* requests being handled at once; 429 with Retry-After past it */
    size_t max_stream_backlog;  /* bytes queued to one slow streaming reader before it is cut */
    uint64_t header_timeout_ms; /* a request's headers must arrive within this (slow loris) */
    uint64_t idle_timeout_ms;   /* keep-alive connection with no request is closed after this */
};
/* The defaults documented in docs/LIMITS.md. */
void kcp_http_limits_default(struct kcp_http_limits *out);

struct kcp_http_header {
    const char *name;
    const char *value;
};

/*
 * A parsed request. Valid from the handler call until its response completes (respond,
 * stream_end, or the connection's close); all strings live in the request's arena.
 */
struct kcp_http_request {
    const char *method;    /* "GET", "POST", ... */
    const char *path;      /* percent-decoded path, no query */
    const char *raw_path;  /* the request target as sent */
    const char *raw_query; /* after '?', or NULL */
    const struct kcp_http_header *headers;
    size_t nheaders;
    const char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    const struct kcp_peer_identity *identity; /* NULL when anonymous */
    uint64_t id;                              /* per-server sequence, for logs */
};
/* Case-insensitive header lookup; NULL if absent. */
const char *kcp_http_header(const struct kcp_http_request *req, const char *name);
/* Percent-decoded value of a query parameter (first occurrence), or NULL. Lives in the arena. */
const char *kcp_http_query(const struct kcp_http_request *req, const char *key);

struct kcp_http_response;
/*
 * Adds a response header; before respond/stream_begin only. Strings are copied. A name or
 * value containing CR or LF is dropped with a warning (no header injection).
 */
void kcp_http_set_header(struct kcp_http_response *res, const char *name, const char *value);
/* A complete response with Content-Length. Completes the request. */
void kcp_http_respond(struct kcp_http_response *res, int status, const char *content_type,
                      const void *body, size_t len);
/*
 * A Kubernetes Status for error code err (KCP_E*), with message (copied) and the HTTP code
 * and reason of the error table. Completes the request.
 */
void kcp_http_respond_status(struct kcp_http_response *res, int err, const char *message);
/*
 * Chunked streaming (watch, streamed lists). A streaming request is long-running: from here on
 * it no longer counts against max_inflight (as upstream exempts watches).
 */
void kcp_http_stream_begin(struct kcp_http_response *res, int status, const char *content_type);
/*
 * Sends one chunk. KCP_ECLOSED when the client is gone, KCP_ETOOMANY when its backlog passed
 * max_stream_backlog (the connection is then closed: a slow reader must not grow our memory).
 * After an error the handler either calls kcp_http_stream_end (which then just frees the
 * request) or waits for its kcp_http_on_close callback, which will come.
 */
int kcp_http_stream_write(struct kcp_http_response *res, const void *data, size_t len);
/* Ends the stream (terminating chunk). Completes the request. */
void kcp_http_stream_end(struct kcp_http_response *res);
/*
 * Bytes written to the stream and not yet handed to the socket (0 once the connection is gone).
 * A handler that produces a long body in parts pauses past a bound of its own, so that its
 * memory does not grow with the body, and goes on from kcp_http_stream_on_drain.
 */
size_t kcp_http_stream_backlog(const struct kcp_http_response *res);
typedef void (*kcp_http_drain_cb)(struct kcp_http_response *res, void *data);
/*
 * Calls cb(res, data) once, from the loop, when everything queued has been written. Only while
 * kcp_http_stream_backlog(res) > 0; otherwise KCP_EINVAL and cb is never called. If the
 * connection closes first cb is not called: the close callback (kcp_http_on_close) is.
 */
int kcp_http_stream_on_drain(struct kcp_http_response *res, kcp_http_drain_cb cb, void *data);
typedef void (*kcp_http_close_cb)(struct kcp_http_response *res, void *data);
/*
 * Called once if the connection closes before the response completed (client went away, or
 * the server is shutting down), from the loop, never from inside a kcp_http_* call. After it,
 * res must not be used; the handler's completion call is not needed. Register it during the
 * handler's call. Without it, a request whose client went away stays allocated until the
 * handler's completing call, which then only frees it.
 */
void kcp_http_on_close(struct kcp_http_response *res, kcp_http_close_cb cb, void *data);

/*
 * A handler answers now or later (asynchronously) with exactly one completing call, or is told
 * through kcp_http_on_close that the client went away.
 */
typedef void (*kcp_http_handler)(struct kcp_http_request *req, struct kcp_http_response *res,
                                 void *data);

struct kcp_http_config {
    const char *listen;         /* numeric "HOST:PORT" */
    struct kcp_tls_config *tls; /* borrowed; must outlive the server */
    struct kcp_http_limits limits;
};

struct kcp_http_server;
int kcp_http_server_new(struct kcp_http_server **out, struct kcp_loop *loop,
                        const struct kcp_http_config *cfg);
/*
 * Routes: exact path, or a prefix when prefix is true (longest match wins). Unrouted paths get
 * a 404 NotFound Status. Before start only.
 */
void kcp_http_route(struct kcp_http_server *srv, const char *path, bool prefix,
                    kcp_http_handler handler, void *data);
/* Binds and listens. KCP_EIO with a log line naming the address if it cannot. */
int kcp_http_server_start(struct kcp_http_server *srv);
/* Actual bound port (for --listen with port 0). */
int kcp_http_server_port(const struct kcp_http_server *srv);
/*
 * Graceful stop: no new connections, idle keep-alive connections and connections still sending
 * a request closed, streams ended (terminating chunk, then their kcp_http_on_close callbacks),
 * in-flight requests allowed to complete (their responses carry Connection: close); cb fires
 * once the listener and every connection are closed (at once if there was nothing to close).
 * The caller enforces its own deadline (kcp_loop's drain) for handlers that never answer.
 */
typedef void (*kcp_http_stopped_cb)(struct kcp_http_server *srv, void *data);
void kcp_http_server_stop(struct kcp_http_server *srv, kcp_http_stopped_cb cb, void *data);
/* Frees a stopped (or never started) server. */
void kcp_http_server_free(struct kcp_http_server *srv);

#endif
