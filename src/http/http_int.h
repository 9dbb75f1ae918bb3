/* kcp http internals: the server, per-connection parser state and the request/response pair. */
#ifndef KCP_HTTP_INT_H
#define KCP_HTTP_INT_H

#include <kcp/base.h>
#include <kcp/http.h>

/* llhttp stays out of the public header: its HTTP_STATUS_* names clash with libwebsockets'. */
#include <llhttp.h>

/*
 * A client that pipelines requests without reading the responses would make us queue them
 * without bound: past this many unsent bytes no further request is parsed until they drain.
 */
#define HTTP_PIPELINE_BACKLOG (1024 * 1024)

/* A bump allocator: everything a request owns, freed at once when its response completes. */
struct arena_chunk;
struct http_arena {
    struct arena_chunk *head;
};
void *http_arena_alloc(struct http_arena *a, size_t size);
char *http_arena_strndup(struct http_arena *a, const char *s, size_t n);
void http_arena_free(struct http_arena *a);

struct http_route {
    char *path;
    size_t len;
    bool prefix;
    kcp_http_handler handler;
    void *data;
};

enum server_state { SERVER_NEW, SERVER_RUNNING, SERVER_STOPPING, SERVER_STOPPED };

struct http_conn;
struct kcp_http_server {
    struct kcp_loop *loop;
    char *listen;
    struct kcp_tls_config *tls;
    struct kcp_http_limits limits;
    struct http_route *routes;
    size_t nroutes;
    struct kcp_listener *listener;
    int port;
    enum server_state state;
    struct http_conn *conns; /* doubly linked */
    size_t nconns;
    size_t inflight; /* requests handed to a handler and not complete, streams excluded */
    uint64_t next_id;
    kcp_http_stopped_cb stopped_cb;
    void *stopped_data;
};

/* Where a connection is between requests; see conn.c. */
enum hconn_state {
    HC_IDLE,       /* waiting for a request's first byte */
    HC_HEADERS,    /* request line and headers arriving (header timeout) */
    HC_BODY,       /* body arriving */
    HC_DISPATCHED, /* with a handler; input is paused and buffered */
    HC_CLOSING,    /* closing; nothing more is parsed */
};

struct http_conn {
    struct kcp_http_server *srv;
    struct kcp_conn *conn; /* NULL once closed */
    struct http_conn *prev, *next;
    enum hconn_state state;
    llhttp_t parser;
    uv_timer_t timer;       /* header, idle and body deadlines; a deferred resume */
    bool first;             /* no request yet: the header deadline runs from accept */
    bool running;           /* inside hconn_run: completions only record themselves */
    bool resume;            /* the timer is armed to resume parsing, not as a deadline */
    bool ready;             /* the parser paused on a complete request */
    bool close_after;       /* the response in progress is the last one (server stopping) */
    bool wait_drain;        /* responses queued past HTTP_PIPELINE_BACKLOG: parse no more */
    struct kcp_buf pending; /* received and not parsed yet */
    size_t pending_off;
    struct kcp_http_response *cur; /* the request being parsed or handled */
    size_t header_bytes;
    struct kcp_buf url, field, value;
    int fail_code; /* set by a parser callback that rejects the request */
    const char *fail_reason;
    const char *fail_msg;
};

enum exchange_state {
    EX_PARSING,   /* still arriving */
    EX_HANDLING,  /* with the handler, no response yet */
    EX_STREAMING, /* chunked response begun */
    EX_CLOSED,    /* the connection went away; only freeing is left */
};

/* A request and its response: one allocation, one arena. */
struct kcp_http_response {
    struct kcp_http_request req;
    struct http_arena arena;
    struct http_conn *hc; /* NULL once the connection closed (detached) */
    enum exchange_state state;
    struct kcp_http_header *headers;
    size_t nheaders, cap_headers;
    struct kcp_buf body;
    struct kcp_buf res_headers; /* extra response headers, serialised */
    kcp_http_close_cb close_cb;
    void *close_data;
    kcp_http_drain_cb drain_cb; /* a streaming handler waits for its backlog to go out */
    void *drain_data;
    bool keep_alive;
    bool head;
    bool http10;
    bool inflight; /* counted in srv->inflight */
    int status;
    uint64_t start_ms;
};

/* conn.c */
void http_conn_adopt(struct kcp_http_server *srv, struct kcp_conn *conn);
void http_conn_request_done(struct http_conn *hc, bool keep_alive);
void http_conn_shutdown(struct http_conn *hc);

/* request.c */
struct kcp_http_response *http_exchange_new(struct http_conn *hc);
void http_exchange_free(struct kcp_http_response *ex);
void http_exchange_add_header(struct kcp_http_response *ex, const char *name, size_t nlen,
                              const char *value, size_t vlen);
/* Decodes %XX (and '+' as space when plus); -1 for a bad escape or a NUL. out has n+1 bytes. */
int http_percent_decode(char *out, const char *s, size_t n, bool plus);

/* response.c */
void http_exchange_detach(struct kcp_http_response *ex);
/* The bytes of a complete response with a Status body, for failures outside any handler. */
void http_error_response(struct kcp_buf *out, int code, const char *reason, const char *msg,
                         const char *extra_headers);
const char *http_status_text(int code);

/* status.c */
void http_status_json(struct kcp_buf *out, int code, const char *reason, const char *message);

/* server.c */
const struct http_route *http_server_match(const struct kcp_http_server *srv, const char *path);
void http_server_conn_gone(struct kcp_http_server *srv, struct http_conn *hc);

#endif
