/*
 * The transport: one mutually authenticated TLS connection to each other member, on its API
 * port. Messages of one update travel as one pipelined HTTP/1.1 POST of length-prefixed frames;
 * a forwarded write is a POST of its own. Raft tolerates loss, so a peer that is down or too
 * slow simply misses messages; it is dialled again at most every CLUSTER_REDIAL_MS.
 */
#include "cluster_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_RESPONSE_BYTES (1u << 20)

int cluster_member_parse(const char *member, char *name, size_t name_cap, char *addr,
                         size_t addr_cap)
{
    const char *at = strchr(member, '@');
    if (!at || at == member || !at[1] || (size_t)(at - member) >= name_cap ||
        strlen(at + 1) >= addr_cap)
        return KCP_EINVAL;
    memcpy(name, member, (size_t)(at - member));
    name[at - member] = '\0';
    strcpy(addr, at + 1);
    return 0;
}

struct cl_peer *cluster_peer_find(struct kcp_cluster *c, uint64_t id)
{
    for (struct cl_peer *p = c->peers; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static void posts_fail(struct cl_peer *p)
{
    while (p->posts) {
        struct cl_post *post = p->posts;
        p->posts = post->next;
        if (post->kind == CL_POST_PROPOSE && p->c)
            cluster_props_fail_seq(p->c, post->seq, KCP_EUNAVAILABLE);
        free(post);
    }
    p->posts_tail = &p->posts;
}

static void peer_free(struct cl_peer *p)
{
    posts_fail(p);
    kcp_buf_free(&p->out);
    kcp_buf_free(&p->in);
    free(p);
}

/* Parses complete responses off the front of p->in and answers their posts in order. */
static int parse_responses(struct cl_peer *p)
{
    for (;;) {
        const char *d = p->in.data;
        size_t len = p->in.len;
        const char *hend = NULL;
        for (size_t i = 0; i + 3 < len; i++)
            if (memcmp(d + i, "\r\n\r\n", 4) == 0) {
                hend = d + i;
                break;
            }
        if (!hend)
            return len > 64 * 1024 ? KCP_EBADREQUEST : 0;
        if (len < 12 || memcmp(d, "HTTP/1.1 ", 9) != 0)
            return KCP_EBADREQUEST;
        int status = atoi(d + 9);
        size_t body = 0;
        for (const char *q = d; q < hend; q++)
            if ((*q == '\n') && strncasecmp(q + 1, "content-length:", 15) == 0)
                body = strtoul(q + 16, NULL, 10);
        size_t total = (size_t)(hend + 4 - d) + body;
        if (body > MAX_RESPONSE_BYTES)
            return KCP_EBADREQUEST;
        if (len < total)
            return 0;
        struct cl_post *post = p->posts;
        if (!post)
            return KCP_EBADREQUEST; /* an answer nobody asked for */
        p->posts = post->next;
        if (!p->posts)
            p->posts_tail = &p->posts;
        if (post->kind == CL_POST_PROPOSE && (status < 200 || status > 299))
            cluster_props_fail_seq(p->c, post->seq, KCP_EUNAVAILABLE);
        else if (post->kind == CL_POST_MSGS && status != 204)
            KCP_LOG_V(1, "cluster", "peer %s answered %d to messages", p->name, status);
        free(post);
        memmove(p->in.data, p->in.data + total, len - total);
        p->in.len = len - total;
    }
}

static void peer_on_data(struct kcp_conn *conn, const char *data, size_t len)
{
    struct cl_peer *p = kcp_conn_data(conn);
    kcp_buf_append(&p->in, data, len);
    if (parse_responses(p) != 0) {
        kcp_log(KCP_LOG_WARN, "cluster", "peer %s sent a malformed response; reconnecting",
                p->name);
        kcp_conn_close(conn, false);
    }
}

static void peer_on_close(struct kcp_conn *conn)
{
    struct cl_peer *p = kcp_conn_data(conn);
    p->conn = NULL;
    kcp_buf_reset(&p->in);
    if (!p->c) { /* removed from the roster while connected */
        peer_free(p);
        return;
    }
    posts_fail(p);
}

static const struct kcp_conn_handler peer_handler = {
    .on_data = peer_on_data,
    .on_close = peer_on_close,
};

static bool peer_dial(struct cl_peer *p)
{
    struct kcp_cluster *c = p->c;
    if (p->conn)
        return true;
    uint64_t now = cluster_now(c);
    if (now < p->next_dial_ms || c->closing)
        return false;
    p->next_dial_ms = now + CLUSTER_REDIAL_MS;
    if (kcp_conn_connect(&p->conn, c->loop, p->addr, c->tls, &peer_handler, p) != 0) {
        p->conn = NULL;
        return false;
    }
    return true;
}

static int peer_post(struct cl_peer *p, const char *path, const void *body, size_t len,
                     enum cl_post_kind kind, uint64_t seq)
{
    if (!peer_dial(p))
        return KCP_EUNAVAILABLE;
    if (kcp_conn_backlog(p->conn) > CLUSTER_MAX_PEER_BACKLOG)
        return KCP_ETOOMANY;
    /* Who we are and where we answer: a server that has not yet received the log knows no
     * members, yet must answer the leader. Head and body go in one write: one TLS record and
     * one syscall rather than two for each of the small POSTs replication is made of. */
    struct kcp_buf req = KCP_BUF_INIT;
    kcp_buf_printf(&req,
                   "POST %s HTTP/1.1\r\nHost: kcp\r\nContent-Type: application/octet-stream\r\n"
                   "Kcp-Member: %llu %s@%s\r\nContent-Length: %zu\r\n\r\n",
                   path, (unsigned long long)p->c->id, p->c->name, p->c->address, len);
    kcp_buf_append(&req, body, len);
    int rc = kcp_conn_write(p->conn, req.data, req.len);
    kcp_buf_free(&req);
    if (rc != 0)
        return KCP_EUNAVAILABLE;
    struct cl_post *post = kcp_calloc(1, sizeof(*post));
    post->kind = kind;
    post->seq = seq;
    *p->posts_tail = post;
    p->posts_tail = &post->next;
    return 0;
}

static void peer_flush(struct cl_peer *p)
{
    if (!p->out.len)
        return;
    peer_post(p, "/raft/v1/msgs", p->out.data, p->out.len, CL_POST_MSGS, 0);
    kcp_buf_reset(&p->out);
}

/*
 * Connections to every member stay open, followers' to each other too: an election must not
 * wait for TCP and TLS handshakes, or two candidates time out inside that window and split
 * the vote.
 */
void cluster_peers_dial(struct kcp_cluster *c)
{
    for (struct cl_peer *p = c->peers; p; p = p->next)
        if (!p->conn)
            peer_dial(p);
}

void cluster_peers_flush(struct kcp_cluster *c)
{
    if (c->installing)
        return; /* the leader must not hear "installed" before it is durable */
    for (struct cl_peer *p = c->peers; p; p = p->next)
        peer_flush(p);
}

void cluster_peer_send(struct kcp_cluster *c, const struct kcp_raft_msg *m)
{
    struct cl_peer *p = cluster_peer_find(c, m->to);
    if (!p)
        return;
    size_t at = p->out.len;
    unsigned char len4[4] = {0};
    kcp_buf_append(&p->out, len4, 4);
    kcp_raft_msg_encode(m, &p->out);
    size_t n = p->out.len - at - 4;
    unsigned char *hdr = (unsigned char *)p->out.data + at;
    for (int i = 0; i < 4; i++)
        hdr[i] = (unsigned char)(n >> (8 * i));
    if (p->out.len >= CLUSTER_MAX_POST_BYTES / 2)
        peer_flush(p);
}

int cluster_peer_forward(struct kcp_cluster *c, uint64_t leader, uint64_t seq, const void *payload,
                         size_t len)
{
    struct cl_peer *p = cluster_peer_find(c, leader);
    if (!p)
        return KCP_EUNAVAILABLE;
    peer_flush(p); /* keep messages and the write in the order they were made */
    return peer_post(p, "/raft/v1/propose", payload, len, CL_POST_PROPOSE, seq);
}

void cluster_peer_learn(struct kcp_cluster *c, const char *header)
{
    char *end = NULL;
    char name[128], addr[128];
    uint64_t id = strtoull(header, &end, 10);
    if (id == 0 || id == c->id || !end || *end != ' ' || cluster_peer_find(c, id) ||
        cluster_member_parse(end + 1, name, sizeof(name), addr, sizeof(addr)) != 0)
        return;
    struct sockaddr_storage sa;
    if (kcp_net_parse_addr(addr, &sa) != 0)
        return;
    struct cl_peer *p = kcp_calloc(1, sizeof(*p));
    p->c = c;
    p->id = id;
    p->posts_tail = &p->posts;
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    p->seen = true;
    p->next = c->peers;
    c->peers = p;
    KCP_LOG_V(1, "cluster", "learnt of %s at %s from its messages", name, addr);
}

static void peer_remove(struct kcp_cluster *c, struct cl_peer *p)
{
    posts_fail(p);
    p->c = NULL;
    if (p->conn)
        kcp_conn_close(p->conn, false); /* freed in on_close */
    else
        peer_free(p);
}

void cluster_peers_sync(struct kcp_cluster *c, const struct kcp_raft_config *cfg)
{
    if (cfg->n == 0)
        return; /* no configuration yet (a joiner before the log): keep who we learnt of */
    for (struct cl_peer *p = c->peers; p; p = p->next)
        p->seen = false;
    for (uint32_t i = 0; i < cfg->n; i++) {
        const struct kcp_raft_server *s = &cfg->servers[i];
        char name[128], addr[128];
        if (s->id == c->id || cluster_member_parse(s->address, name, sizeof(name), addr,
                                                   sizeof(addr)) != 0)
            continue;
        struct cl_peer *p = cluster_peer_find(c, s->id);
        if (!p) {
            p = kcp_calloc(1, sizeof(*p));
            p->c = c;
            p->id = s->id;
            p->posts_tail = &p->posts;
            p->next = c->peers;
            c->peers = p;
            kcp_log(KCP_LOG_INFO, "cluster", "member %s at %s", name, addr);
        }
        if (strcmp(p->addr, addr) != 0 && p->conn)
            kcp_conn_close(p->conn, false);
        snprintf(p->name, sizeof(p->name), "%s", name);
        snprintf(p->addr, sizeof(p->addr), "%s", addr);
        p->seen = true;
    }
    for (struct cl_peer **pp = &c->peers; *pp;) {
        struct cl_peer *p = *pp;
        if (p->seen) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        kcp_log(KCP_LOG_INFO, "cluster", "member %s left the configuration", p->name);
        peer_remove(c, p);
    }
}

void cluster_peers_free(struct kcp_cluster *c)
{
    while (c->peers) {
        struct cl_peer *p = c->peers;
        c->peers = p->next;
        peer_remove(c, p);
    }
}
