/* /raft/v1/ on the API port: peer messages, forwarded writes, the CA, join and members. */
#include "cluster_int.h"

#include <kcp/pki.h>

#include <stdlib.h>
#include <string.h>

static bool in_group(const struct kcp_http_request *req, const char *group)
{
    if (!req->identity)
        return false;
    for (size_t i = 0; i < req->identity->ngroups; i++)
        if (strcmp(req->identity->groups[i], group) == 0)
            return true;
    return false;
}

static bool require_peer(const struct kcp_http_request *req, struct kcp_http_response *res)
{
    if (in_group(req, KCP_PKI_PEER_GROUP))
        return true;
    kcp_http_respond_status(res, KCP_EFORBIDDEN,
                            "only servers of this cluster (group kcp:peers) may speak Raft");
    return false;
}

static void on_msgs(struct kcp_cluster *c, struct kcp_http_request *req,
                    struct kcp_http_response *res)
{
    const unsigned char *d = (const unsigned char *)req->body;
    size_t len = req->body_len, off = 0;
    const char *member = kcp_http_header(req, "Kcp-Member");
    if (member)
        cluster_peer_learn(c, member);
    while (off + 4 <= len) {
        size_t n = (size_t)d[off] | (size_t)d[off + 1] << 8 | (size_t)d[off + 2] << 16 |
                   (size_t)d[off + 3] << 24;
        off += 4;
        if (n > len - off)
            break;
        struct kcp_raft_msg m;
        if (c->installing) {
            /* Dropped: the core must not move on while the store is being replaced. */
        } else if (kcp_raft_msg_decode(&m, d + off, n) == 0) {
            struct kcp_raft_event ev = {.type = KCP_RAFT_EV_RECEIVE};
            ev.receive.msg = &m;
            cluster_step(c, &ev);
            kcp_raft_msg_free(&m);
        } else {
            KCP_LOG_V(1, "cluster", "dropped a malformed Raft message");
        }
        off += n;
    }
    if (off != len) {
        kcp_http_respond_status(res, KCP_EBADREQUEST, "truncated Raft message frame");
        return;
    }
    kcp_http_respond(res, 204, NULL, NULL, 0);
}

static void on_propose(struct kcp_cluster *c, struct kcp_http_request *req,
                       struct kcp_http_response *res)
{
    if (c->role != KCP_RAFT_LEADER) {
        kcp_http_respond_status(res, KCP_EUNAVAILABLE, "not the leader");
        return;
    }
    int rc = cluster_propose_payload(c, req->body, req->body_len);
    if (rc != 0) {
        kcp_http_respond_status(res, rc, kcp_error_message(rc));
        return;
    }
    kcp_http_respond(res, 202, NULL, NULL, 0);
}

static void on_ca(struct kcp_cluster *c, struct kcp_http_response *res)
{
    char *path = kcp_pki_cert_path(c->data_dir, "ca"), *pem = NULL;
    size_t len = 0;
    int rc = kcp_file_read(path, 64 * 1024, &pem, &len);
    free(path);
    if (rc != 0)
        kcp_http_respond_status(res, KCP_EINTERNAL, "cannot read the cluster CA");
    else
        kcp_http_respond(res, 200, "application/x-pem-file", pem, len);
    free(pem);
}

static const char *role_of(struct kcp_cluster *c, const struct kcp_raft_server *s)
{
    if (s->id == c->leader_id)
        return "leader";
    return s->role == KCP_RAFT_LEARNER ? "learner" : "follower";
}

static void on_members(struct kcp_cluster *c, struct kcp_http_response *res)
{
    struct kcp_raft_status st;
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_raft_status(c->raft, &st);
    for (uint32_t i = 0; st.config && i < st.config->n; i++) {
        const struct kcp_raft_server *s = &st.config->servers[i];
        char name[128], addr[128];
        if (cluster_member_parse(s->address, name, sizeof(name), addr, sizeof(addr)) != 0)
            continue;
        kcp_buf_printf(&b, "%s %s %s\n", name, addr, role_of(c, s));
    }
    kcp_http_respond(res, 200, "text/plain", b.data ? b.data : "", b.len);
    kcp_buf_free(&b);
}

static void on_remove(struct kcp_cluster *c, struct kcp_http_request *req,
                      struct kcp_http_response *res)
{
    const char *name = kcp_http_query(req, "name");
    if (!in_group(req, "system:masters")) {
        kcp_http_respond_status(res, KCP_EFORBIDDEN, "removing a member needs system:masters");
        return;
    }
    if (!name || !*name) {
        kcp_http_respond_status(res, KCP_EBADREQUEST, "name is required");
        return;
    }
    struct kcp_raft_status st;
    kcp_raft_status(c->raft, &st);
    uint64_t id = 0;
    for (uint32_t i = 0; st.config && i < st.config->n; i++) {
        char n[128], a[128];
        if (cluster_member_parse(st.config->servers[i].address, n, sizeof(n), a, sizeof(a)) == 0 &&
            strcmp(n, name) == 0)
            id = st.config->servers[i].id;
    }
    if (!id) {
        kcp_http_respond_status(res, KCP_ENOTFOUND, "no such member");
        return;
    }
    if (c->role != KCP_RAFT_LEADER) {
        struct cl_peer *l = cluster_peer_find(c, c->leader_id);
        char *msg = kcp_sprintf("not the leader; ask %s", l ? l->addr : "the leader");
        kcp_http_respond_status(res, KCP_EUNAVAILABLE, msg);
        free(msg);
        return;
    }
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_CHANGE};
    ev.change.type = KCP_RAFT_REMOVE;
    ev.change.id = id;
    int rc = cluster_step(c, &ev);
    if (rc != 0) {
        kcp_http_respond_status(res, rc, rc == KCP_ECONFLICT
                                             ? "another membership change is in progress; retry"
                                             : kcp_error_message(rc));
        return;
    }
    kcp_log(KCP_LOG_INFO, "cluster", "removing member %s", name);
    kcp_http_respond(res, 200, "text/plain", "removed\n", 8);
}

static void routes_on_request(struct kcp_http_request *req, struct kcp_http_response *res,
                              void *data)
{
    struct kcp_cluster *c = data;
    const char *p = req->path + strlen("/raft/v1/");
    bool post = strcmp(req->method, "POST") == 0, get = strcmp(req->method, "GET") == 0;
    if (c->closing) {
        kcp_http_respond_status(res, KCP_EUNAVAILABLE, "shutting down");
    } else if (strcmp(p, "msgs") == 0 && post) {
        if (require_peer(req, res))
            on_msgs(c, req, res);
    } else if (strcmp(p, "propose") == 0 && post) {
        if (require_peer(req, res))
            on_propose(c, req, res);
    } else if (strcmp(p, "ca") == 0 && get) {
        on_ca(c, res);
    } else if (strcmp(p, "join") == 0 && post) {
        cluster_join_handle(c, req, res);
    } else if (strcmp(p, "members") == 0 && get) {
        if (!req->identity)
            kcp_http_respond_status(res, KCP_EUNAUTHORIZED, "Unauthorized");
        else
            on_members(c, res);
    } else if (strcmp(p, "members/remove") == 0 && post) {
        on_remove(c, req, res);
    } else {
        kcp_http_respond_status(res, KCP_ENOTFOUND, "the server could not find the requested resource");
    }
}

void cluster_routes(struct kcp_cluster *c)
{
    kcp_http_route(c->http, "/raft/v1/", true, routes_on_request, c);
}
