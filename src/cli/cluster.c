/* kcp token, kcp members, and the joining side of `kcp server --join`. */
#include "cli_int.h"

#include <kcp/base.h>
#include <kcp/cluster.h>
#include <kcp/pki.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <mbedtls/sha256.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *data_dir = "/var/lib/kcp";

static const struct kcp_flag dir_flags[] = {
    {"data-dir", 'd', KCP_FLAG_STRING, &data_dir, "/var/lib/kcp",
     "Directory holding the cluster's state."},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static int token_run(int argc, char **argv)
{
    int rc = cli_no_args("token", argc, argv);
    if (rc)
        return rc;
    char *token = NULL;
    if ((rc = kcp_cluster_token(data_dir, &token)) != 0) {
        fprintf(stderr, "Error: %s holds no cluster (%s)\n", data_dir, kcp_error_message(rc));
        return KCP_EXIT_FAIL;
    }
    printf("%s\n", token);
    free(token);
    return KCP_EXIT_OK;
}

const struct kcp_command cli_token_command = {
    .name = "token",
    .short_help = "Print a token that lets another server join this cluster",
    .long_help = "Print a join token: it pins the cluster CA by its SHA-256 hash and carries a\n"
                 "secret (kept in DIR/pki/join-token). Anyone holding it can join a server and\n"
                 "obtains the cluster CA key: treat it like that key.",
    .examples = "  kcp server --join https://10.0.0.1:6443 --token $(kcp token -d /var/lib/kcp) ...",
    .flags = dir_flags,
    .run = token_run,
};

static int members_run(int argc, char **argv)
{
    struct kcp_buf body = KCP_BUF_INIT;
    int status = 0, rc;
    char *path = NULL;
    if (argc == 2 && strcmp(argv[0], "remove") == 0) {
        path = kcp_sprintf("/raft/v1/members/remove?name=%s", argv[1]);
        rc = cli_https_request(data_dir, "POST", path, "", 0, &status, &body);
    } else if (argc == 0) {
        rc = cli_https_request(data_dir, "GET", "/raft/v1/members", NULL, 0, &status, &body);
    } else {
        fprintf(stderr, "Error: usage: kcp members [remove NAME] --data-dir DIR\n");
        return KCP_EXIT_USAGE;
    }
    free(path);
    if (rc == 0 && status / 100 != 2) {
        json_t *o = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
        const char *msg = json_string_value(json_object_get(o, "message"));
        fprintf(stderr, "Error: %s (HTTP %d)\n", msg ? msg : "request failed", status);
        json_decref(o);
        rc = KCP_EIO;
    } else if (rc == 0) {
        fwrite(body.data ? body.data : "", 1, body.len, stdout);
    }
    kcp_buf_free(&body);
    return rc == 0 ? KCP_EXIT_OK : KCP_EXIT_FAIL;
}

const struct kcp_command cli_members_command = {
    .name = "members",
    .short_help = "List the servers of the cluster, or remove one",
    .long_help = "Print one line per server of the cluster: NAME ADDRESS ROLE, where ROLE is\n"
                 "leader, follower or learner. `kcp members remove NAME` removes a server\n"
                 "(ask the leader). Talks to the server of DIR with its admin certificate.",
    .examples = "  kcp members --data-dir /var/lib/kcp\n"
                "  kcp members remove n3 --data-dir /var/lib/kcp",
    .flags = dir_flags,
    .run = members_run,
};

/* ---- joining ----------------------------------------------------------------------------- */

static int parse_url(const char *url, struct cli_https_target *t)
{
    const char *p = url;
    if (strncmp(p, "https://", 8) != 0)
        return KCP_EINVAL;
    p += 8;
    char host[64];
    const char *he;
    if (*p == '[') {
        he = strchr(++p, ']');
        if (!he || he[1] != ':')
            return KCP_EINVAL;
    } else {
        he = strchr(p, ':');
        if (!he)
            return KCP_EINVAL;
    }
    if ((size_t)(he - p) >= sizeof(host))
        return KCP_EINVAL;
    memcpy(host, p, (size_t)(he - p));
    host[he - p] = '\0';
    const char *port_s = strchr(he, ':') + 1;
    int port = atoi(port_s);
    if (port <= 0 || port > 65535)
        return KCP_EINVAL;
    memset(&t->sa, 0, sizeof(t->sa));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&t->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&t->sa;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        t->sa_len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        t->sa_len = sizeof(*v6);
    } else {
        return KCP_EINVAL;
    }
    return 0;
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

/* Fetches the CA anonymously and checks it against the token's hash; writes it to ca_path. */
static int fetch_ca(struct cli_https_target *t, const char *want_hash, const char *ca_path)
{
    struct kcp_buf body = KCP_BUF_INIT;
    int status = 0;
    unsigned char digest[32];
    char got[65];
    int rc = cli_https_do(t, "GET", "/raft/v1/ca", NULL, 0, &status, &body);
    if (rc != 0 || status != 200) {
        fprintf(stderr, "Error: cannot fetch the cluster CA (HTTP %d)\n", status);
        rc = rc ? rc : KCP_EIO;
        goto done;
    }
    mbedtls_sha256_ret((const unsigned char *)body.data, body.len, digest, 0);
    hex(got, digest, sizeof(digest));
    if (strcmp(got, want_hash) != 0) {
        fprintf(stderr, "Error: the server's CA does not match the token (sha256 %s)\n", got);
        rc = KCP_ECRYPTO;
        goto done;
    }
    rc = kcp_file_write_atomic(ca_path, body.data, body.len, 0600);
done:
    kcp_buf_free(&body);
    return rc;
}

int cli_join(const char *url, const char *token, const char *dir, const char *name,
             const char *address, uint64_t *out_id)
{
    struct cli_https_target t = {0};
    struct kcp_buf body = KCP_BUF_INIT;
    json_t *req = NULL, *resp = NULL;
    char *pki = kcp_sprintf("%s/pki", dir);
    char *staged = kcp_sprintf("%s/pki/join-ca.crt", dir);
    char *ca_path = kcp_pki_cert_path(dir, "ca"), *key_path = kcp_pki_key_path(dir, "ca");
    char hash[65] = "";
    const char *secret = NULL;
    int status = 0, rc = KCP_EINVAL;
    size_t plen = strlen(KCP_CLUSTER_TOKEN_PREFIX);
    if (strncmp(token, KCP_CLUSTER_TOKEN_PREFIX, plen) != 0 || strlen(token) != plen + 64 + 1 + 64 ||
        token[plen + 64] != '.') {
        fprintf(stderr, "Error: --token is not a kcp join token (see `kcp token`)\n");
        goto done;
    }
    memcpy(hash, token + plen, 64);
    secret = token + plen + 65;
    if (parse_url(url, &t) != 0) {
        fprintf(stderr, "Error: --join wants https://NUMERIC-HOST:PORT, got %s\n", url);
        goto done;
    }
    if ((rc = kcp_mkdir_p(pki, 0700)) != 0 || (rc = fetch_ca(&t, hash, staged)) != 0)
        goto done;
    t.ca_path = staged; /* from here on the server must prove it belongs to that CA */
    req = json_pack("{s:s, s:s, s:s}", "secret", secret, "name", name, "address", address);
    char *text = json_dumps(req, JSON_COMPACT);
    rc = cli_https_do(&t, "POST", "/raft/v1/join", text, strlen(text), &status, &body);
    free(text);
    if (rc != 0)
        goto done;
    resp = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
    if (status != 200) {
        const char *msg = json_string_value(json_object_get(resp, "message"));
        fprintf(stderr, "Error: the cluster refused the join: %s (HTTP %d)\n",
                msg ? msg : "no reason given", status);
        rc = KCP_EFORBIDDEN;
        goto done;
    }
    const char *id = NULL, *ca = NULL, *key = NULL;
    if (json_unpack(resp, "{s:s, s:s, s:s}", "id", &id, "caCert", &ca, "caKey", &key) != 0 ||
        (*out_id = strtoull(id, NULL, 10)) == 0) {
        fprintf(stderr, "Error: malformed answer to the join\n");
        rc = KCP_EIO;
        goto done;
    }
    /* The key first: ca.crt is what marks the data dir as holding a cluster. */
    if ((rc = kcp_file_write_atomic(key_path, key, strlen(key), 0600)) != 0 ||
        (rc = kcp_file_write_atomic(ca_path, ca, strlen(ca), 0600)) != 0) {
        fprintf(stderr, "Error: cannot write the CA into %s\n", pki);
        goto done;
    }
    rc = 0;
done:
    if (staged)
        unlink(staged);
    json_decref(req);
    json_decref(resp);
    kcp_buf_free(&body);
    free(pki);
    free(staged);
    free(ca_path);
    free(key_path);
    return rc;
}
