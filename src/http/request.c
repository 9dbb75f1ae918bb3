/* Requests: the per-request arena, header and query lookup, percent-decoding. */
#include "http_int.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARENA_CHUNK 4096
#define ARENA_ALIGN alignof(max_align_t)

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    alignas(max_align_t) char data[];
};

void *http_arena_alloc(struct http_arena *a, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = kcp_malloc(sizeof(*c) + cap);
        c->used = 0;
        c->cap = cap;
        if (a->head && size > ARENA_CHUNK) {
            /* A large block goes behind the current chunk, which keeps serving small ones. */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

char *http_arena_strndup(struct http_arena *a, const char *s, size_t n)
{
    char *p = http_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void http_arena_free(struct http_arena *a)
{
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http_percent_decode(char *out, const char *s, size_t n, bool plus)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -1;
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else if (c == '+' && plus) {
            out[o++] = ' ';
        } else if (c == '\0') {
            return -1;
        } else {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return 0;
}

/* A copy in the arena: the request may outlive its connection (an asynchronous handler). */
static const struct kcp_peer_identity *identity_copy(struct http_arena *a,
                                                     const struct kcp_peer_identity *id)
{
    if (!id)
        return NULL;
    struct kcp_peer_identity *c = http_arena_alloc(a, sizeof(*c));
    c->user = http_arena_strndup(a, id->user, strlen(id->user));
    c->ngroups = id->ngroups;
    c->groups = http_arena_alloc(a, (id->ngroups ? id->ngroups : 1) * sizeof(char *));
    for (size_t i = 0; i < id->ngroups; i++)
        c->groups[i] = http_arena_strndup(a, id->groups[i], strlen(id->groups[i]));
    return c;
}

struct kcp_http_response *http_exchange_new(struct http_conn *hc)
{
    struct kcp_http_response *ex = kcp_calloc(1, sizeof(*ex));
    ex->hc = hc;
    ex->state = EX_PARSING;
    ex->req.id = ++hc->srv->next_id;
    ex->req.identity = identity_copy(&ex->arena, hc->conn ? kcp_conn_identity(hc->conn) : NULL);
    ex->req.method = "";
    ex->req.path = "";
    ex->req.raw_path = "";
    ex->req.body = "";
    return ex;
}

void http_exchange_free(struct kcp_http_response *ex)
{
    http_arena_free(&ex->arena);
    free(ex->headers);
    kcp_buf_free(&ex->body);
    kcp_buf_free(&ex->res_headers);
    free(ex);
}

void http_exchange_add_header(struct kcp_http_response *ex, const char *name, size_t nlen,
                              const char *value, size_t vlen)
{
    if (ex->nheaders == ex->cap_headers) {
        ex->cap_headers = ex->cap_headers ? ex->cap_headers * 2 : 16;
        ex->headers = kcp_realloc(ex->headers, ex->cap_headers * sizeof(*ex->headers));
    }
    struct kcp_http_header *h = &ex->headers[ex->nheaders++];
    h->name = http_arena_strndup(&ex->arena, name, nlen);
    h->value = http_arena_strndup(&ex->arena, value, vlen);
}

static struct kcp_http_response *exchange_of(const struct kcp_http_request *req)
{
    /* req is the first member of its exchange. */
    return (struct kcp_http_response *)(void *)req;
}

const char *kcp_http_header(const struct kcp_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

const char *kcp_http_query(const struct kcp_http_request *req, const char *key)
{
    struct kcp_http_response *ex = exchange_of(req);
    const char *q = req->raw_query;
    if (!q)
        return NULL;
    size_t klen = strlen(key);
    while (*q) {
        size_t seg = strcspn(q, "&");
        const char *eq = memchr(q, '=', seg);
        size_t nlen = eq ? (size_t)(eq - q) : seg;
        char *name = http_arena_alloc(&ex->arena, nlen + 1);
        if (http_percent_decode(name, q, nlen, true) == 0 && strlen(name) == klen &&
            memcmp(name, key, klen) == 0) {
            size_t vlen = eq ? seg - nlen - 1 : 0;
            char *value = http_arena_alloc(&ex->arena, vlen + 1);
            /* A malformed value is as good as absent (Go's url.ParseQuery drops it too). */
            if (http_percent_decode(value, eq ? eq + 1 : "", vlen, true) == 0)
                return value;
        }
        q += seg;
        if (*q == '&')
            q++;
    }
    return NULL;
}
