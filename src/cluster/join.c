/*
 * Joining: the token that admits a server, and the leader's side of a join. A joiner proves it
 * holds the token's secret; the leader adds it as a learner under a fresh id (removing first a
 * member of the same name: a server rejoining with a wiped data dir is a new server to Raft, and
 * must not inherit the old one's votes) and hands it the cluster CA, so that it can issue its own
 * serving, admin and peer certificates. The learner is promoted once it has caught up (node.c).
 */
#include "cluster_int.h"

#include <kcp/pki.h>

#include <jansson.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/sha256.h>

#include <stdlib.h>
#include <string.h>

#define JOIN_TIMEOUT_MS 15000

static char *secret_path(const char *data_dir)
{
    return kcp_sprintf("%s/pki/join-token", data_dir);
}

static void hex(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int new_secret(char out[65])
{
    unsigned char raw[32];
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    int r = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0);
    if (r == 0)
        r = mbedtls_ctr_drbg_random(&drbg, raw, sizeof(raw));
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    if (r != 0)
        return KCP_ECRYPTO;
    hex(out, raw, sizeof(raw));
    return 0;
}

/* The secret in DIR/pki/join-token, created on first use. */
static int read_secret(const char *data_dir, bool create, char out[65])
{
    char *path = secret_path(data_dir), *text = NULL;
    size_t len = 0;
    int rc = kcp_file_read(path, 4096, &text, &len);
    if (rc == 0 && len >= 64) {
        memcpy(out, text, 64);
        out[64] = '\0';
    } else if (create) {
        if ((rc = new_secret(out)) == 0)
            rc = kcp_file_write_atomic(path, out, 64, 0600);
    } else {
        rc = KCP_ENOTFOUND;
    }
    free(text);
    free(path);
    return rc;
}

int kcp_cluster_token(const char *data_dir, char **out)
{
    char secret[65], digest_hex[65];
    unsigned char digest[32];
    char *ca_path = kcp_pki_cert_path(data_dir, "ca"), *pem = NULL;
    size_t len = 0;
    int rc = kcp_file_read(ca_path, 64 * 1024, &pem, &len);
    free(ca_path);
    if (rc != 0)
        return KCP_ENOTFOUND;
    mbedtls_sha256_ret((const unsigned char *)pem, len, digest, 0);
    free(pem);
    hex(digest_hex, digest, sizeof(digest));
    if ((rc = read_secret(data_dir, true, secret)) != 0)
        return rc;
    *out = kcp_sprintf(KCP_CLUSTER_TOKEN_PREFIX "%s.%s", digest_hex, secret);
    return 0;
}

/* ---- the leader's side ---------------------------------------------------------------- */

struct cl_join {
    struct kcp_cluster *c;
    struct kcp_http_response *res; /* NULL once answered or the joiner left */
    char name[64];
    char member[KCP_RAFT_ADDR_MAX];
    uint64_t old_id, new_id;
    uint64_t deadline_ms;
    struct cl_join *next;
};

static bool secret_ok(const char *given, const char *want)
{
    /* Constant time over the secret: a comparison must not tell how much of a guess was
     * right. The length is public (64 hex digits). */
    size_t n = strlen(want);
    if (strlen(given) != n)
        return false;
    unsigned diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)given[i] ^ (unsigned char)want[i];
    return diff == 0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '.'))
            return false;
    return true;
}

static void join_on_close(struct kcp_http_response *res, void *data)
{
    struct cl_join *j = data;
    j->res = NULL;
}

static void join_answer(struct cl_join *j)
{
    struct kcp_cluster *c = j->c;
    char *ca_path = kcp_pki_cert_path(c->data_dir, "ca");
    char *key_path = kcp_pki_key_path(c->data_dir, "ca");
    char *ca = NULL, *key = NULL, *id = kcp_sprintf("%llu", (unsigned long long)j->new_id);
    size_t ca_len = 0, key_len = 0;
    if (kcp_file_read(ca_path, 64 * 1024, &ca, &ca_len) != 0 ||
        kcp_file_read(key_path, 64 * 1024, &key, &key_len) != 0) {
        kcp_http_respond_status(j->res, KCP_EINTERNAL, "cannot read the cluster CA");
    } else {
        json_t *o = json_pack("{s:s, s:s, s:s}", "id", id, "caCert", ca, "caKey", key);
        char *body = json_dumps(o, JSON_COMPACT);
        kcp_http_respond(j->res, 200, "application/json", body, strlen(body));
        free(body);
        json_decref(o);
    }
    j->res = NULL;
    if (key)
        memset(key, 0, key_len);
    free(ca);
    free(key);
    free(id);
    free(ca_path);
    free(key_path);
}

/* Takes the next step of a join; true when it is finished (answered or failed). */
static bool join_advance(struct cl_join *j, uint64_t now)
{
    struct kcp_cluster *c = j->c;
    if (!j->res)
        return true;
    if (now >= j->deadline_ms || c->role != KCP_RAFT_LEADER) {
        kcp_http_respond_status(j->res, KCP_EUNAVAILABLE,
                                c->role != KCP_RAFT_LEADER ? "leadership changed during the join"
                                                           : "the join did not complete in time");
        j->res = NULL;
        return true;
    }
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_CHANGE};
    if (j->old_id) {
        ev.change.type = KCP_RAFT_REMOVE;
        ev.change.id = j->old_id;
    } else {
        ev.change.type = KCP_RAFT_ADD_LEARNER;
        ev.change.id = j->new_id;
        ev.change.address = j->member;
    }
    int rc = cluster_step(c, &ev);
    if (rc == KCP_ECONFLICT)
        return false; /* a change is pending: try again on the next tick */
    if (rc != 0 && !(rc == KCP_ENOTFOUND && j->old_id)) {
        kcp_http_respond_status(j->res, rc, kcp_error_message(rc));
        j->res = NULL;
        return true;
    }
    if (j->old_id) {
        kcp_log(KCP_LOG_INFO, "cluster", "%s rejoins: its old membership is removed first", j->name);
        j->old_id = 0;
        return false;
    }
    kcp_log(KCP_LOG_INFO, "cluster", "%s joins as a learner", j->member);
    join_answer(j);
    return true;
}

void cluster_joins_retry(struct kcp_cluster *c)
{
    uint64_t now = cluster_now(c);
    for (struct cl_join **pp = &c->joins; *pp;) {
        struct cl_join *j = *pp;
        if (join_advance(j, now)) {
            *pp = j->next;
            free(j);
        } else {
            pp = &j->next;
        }
    }
}

void cluster_joins_free(struct kcp_cluster *c)
{
    while (c->joins) {
        struct cl_join *j = c->joins;
        c->joins = j->next;
        if (j->res)
            kcp_http_respond_status(j->res, KCP_EUNAVAILABLE, "shutting down");
        free(j);
    }
}

void cluster_join_handle(struct kcp_cluster *c, struct kcp_http_request *req,
                         struct kcp_http_response *res)
{
    char want[65];
    json_error_t err;
    json_t *o = json_loadb(req->body, req->body_len, 0, &err);
    const char *secret = NULL, *name = NULL, *address = NULL;
    if (!o || json_unpack(o, "{s:s, s:s, s:s}", "secret", &secret, "name", &name, "address",
                          &address) != 0) {
        kcp_http_respond_status(res, KCP_EBADREQUEST, "want {secret, name, address}");
        goto done;
    }
    if (read_secret(c->data_dir, false, want) != 0 || !secret_ok(secret, want)) {
        kcp_log(KCP_LOG_WARN, "cluster", "a join as %s was refused: wrong token", name);
        kcp_http_respond_status(res, KCP_EFORBIDDEN, "the join token is not valid");
        goto done;
    }
    struct sockaddr_storage sa;
    if (!name_ok(name) || kcp_net_parse_addr(address, &sa) != 0) {
        kcp_http_respond_status(res, KCP_EBADREQUEST,
                                "name must be a DNS label and address a numeric HOST:PORT");
        goto done;
    }
    if (c->role != KCP_RAFT_LEADER) {
        struct cl_peer *l = cluster_peer_find(c, c->leader_id);
        char *msg = kcp_sprintf("not the leader; the leader is at %s", l ? l->addr : "(unknown)");
        kcp_http_respond_status(res, KCP_EUNAVAILABLE, msg);
        free(msg);
        goto done;
    }
    if (strcmp(name, c->name) == 0) {
        kcp_http_respond_status(res, KCP_EEXIST, "that is this server's own name");
        goto done;
    }
    struct cl_join *j = kcp_calloc(1, sizeof(*j));
    j->c = c;
    j->res = res;
    snprintf(j->name, sizeof(j->name), "%s", name);
    snprintf(j->member, sizeof(j->member), "%s@%s", name, address);
    j->deadline_ms = cluster_now(c) + JOIN_TIMEOUT_MS;
    struct kcp_raft_status st;
    kcp_raft_status(c->raft, &st);
    do {
        j->new_id = kcp_rng_next(&c->loop->rng);
    } while (j->new_id == 0 || (st.config && kcp_raft_config_find(st.config, j->new_id)));
    for (uint32_t i = 0; st.config && i < st.config->n; i++) {
        char n[128], a[128];
        if (cluster_member_parse(st.config->servers[i].address, n, sizeof(n), a, sizeof(a)) == 0 &&
            strcmp(n, name) == 0)
            j->old_id = st.config->servers[i].id;
    }
    kcp_http_on_close(res, join_on_close, j);
    if (join_advance(j, cluster_now(c))) {
        free(j);
        goto done;
    }
    j->next = c->joins;
    c->joins = j;
done:
    json_decref(o);
}
