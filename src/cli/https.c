/* A small blocking HTTPS client for the CLI: one request to DIR's API server as the admin. */
#include "cli_int.h"

#include <kcp/base.h>
#include <kcp/pki.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#define MAX_RESPONSE (8u << 20) /* an object is at most 1.5 MiB; a Status is small */

/* "https://127.0.0.1:6443" or "https://[::1]:6443" from DIR/kubeconfig: numeric, no resolver
 * (the binary is static). */
static int server_addr(const char *data_dir, struct sockaddr_storage *out, socklen_t *out_len)
{
    char *path = kcp_pki_kubeconfig_path(data_dir), *text = NULL;
    size_t len = 0;
    int rc = kcp_file_read(path, 1u << 20, &text, &len);
    free(path);
    if (rc != 0)
        return rc;
    rc = KCP_EINVAL;
    const char *p = strstr(text, "server: https://");
    if (!p)
        goto done;
    p += strlen("server: https://");
    char host[64] = "";
    const char *hs = p, *he;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he)
            goto done;
        p = he + 1;
    } else {
        he = strchr(p, ':');
        if (!he)
            goto done;
        p = he;
    }
    if (*p != ':' || (size_t)(he - hs) >= sizeof(host))
        goto done;
    memcpy(host, hs, (size_t)(he - hs));
    int port = atoi(p + 1);
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *out_len = sizeof(*v4);
        rc = 0;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *out_len = sizeof(*v6);
        rc = 0;
    }
done:
    free(text);
    return rc;
}

static int fd_send(void *ctx, const unsigned char *buf, size_t len)
{
    ssize_t n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL);
    return n < 0 ? (errno == EINTR ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_NET_SEND_FAILED)
                 : (int)n;
}

static int fd_recv(void *ctx, unsigned char *buf, size_t len)
{
    ssize_t n = recv(*(int *)ctx, buf, len, 0);
    return n < 0 ? (errno == EINTR ? MBEDTLS_ERR_SSL_WANT_READ : MBEDTLS_ERR_NET_RECV_FAILED)
                 : (int)n;
}

/* Splits a raw HTTP/1.1 response (read to EOF) into status and body, undoing chunking. */
static int parse_response(const char *raw, size_t len, int *out_status, struct kcp_buf *out_body)
{
    const char *hend = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(raw + i, "\r\n\r\n", 4) == 0) {
            hend = raw + i;
            break;
        }
    if (!hend || len < 12 || memcmp(raw, "HTTP/1.1 ", 9) != 0)
        return KCP_EIO;
    *out_status = atoi(raw + 9);
    const char *body = hend + 4, *end = raw + len;
    bool chunked = false;
    for (const char *p = raw; p < hend; p++)
        if ((*p == 'T' || *p == 't') && strncasecmp(p, "transfer-encoding: chunked", 26) == 0)
            chunked = true;
    if (!chunked) {
        kcp_buf_append(out_body, body, (size_t)(end - body));
        return 0;
    }
    while (body < end) {
        char *e = NULL;
        unsigned long n = strtoul(body, &e, 16);
        const char *crlf = e ? strstr(e, "\r\n") : NULL;
        if (!crlf || n > (size_t)(end - crlf - 2))
            return KCP_EIO;
        if (n == 0)
            break;
        kcp_buf_append(out_body, crlf + 2, n);
        body = crlf + 2 + n + 2;
    }
    return 0;
}

int cli_https_request(const char *data_dir, const char *method, const char *path, const char *body,
                      size_t body_len, int *out_status, struct kcp_buf *out_body)
{
    struct cli_https_target t = {0};
    char *ca_path = kcp_pki_cert_path(data_dir, "ca");
    char *crt_path = kcp_pki_cert_path(data_dir, "admin");
    char *key_path = kcp_pki_key_path(data_dir, "admin");
    int rc = server_addr(data_dir, &t.sa, &t.sa_len);
    if (rc != 0) {
        fprintf(stderr, "Error: no numeric https server address in %s/kubeconfig\n", data_dir);
    } else {
        t.ca_path = ca_path;
        t.cert_path = crt_path;
        t.key_path = key_path;
        rc = cli_https_do(&t, method, path, body, body_len, out_status, out_body);
    }
    free(ca_path);
    free(crt_path);
    free(key_path);
    return rc;
}

int cli_https_do(const struct cli_https_target *t, const char *method, const char *path,
                 const char *body, size_t body_len, int *out_status, struct kcp_buf *out_body)
{
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    struct kcp_buf req = KCP_BUF_INIT, resp = KCP_BUF_INIT;
    int fd = -1, rc = KCP_EIO;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_ssl_init(&ssl);
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509_crt_init(&cert);
    mbedtls_pk_init(&key);
    rc = KCP_ECRYPTO;
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0) != 0 ||
        (t->ca_path && mbedtls_x509_crt_parse_file(&ca, t->ca_path) != 0) ||
        (t->cert_path && mbedtls_x509_crt_parse_file(&cert, t->cert_path) != 0) ||
        (t->key_path && mbedtls_pk_parse_keyfile(&key, t->key_path, NULL) != 0)) {
        fprintf(stderr, "Error: cannot load the certificates (%s)\n",
                t->cert_path ? t->cert_path : t->ca_path ? t->ca_path : "none");
        goto done;
    }
    if (mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        goto done;
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    /* Without a CA the server is not verified: only for fetching a CA that the caller then
     * checks against a pinned hash (joining). */
    if (t->ca_path)
        mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
    mbedtls_ssl_conf_authmode(&conf,
                              t->ca_path ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_NONE);
    if ((t->cert_path && mbedtls_ssl_conf_own_cert(&conf, &cert, &key) != 0) ||
        mbedtls_ssl_setup(&ssl, &conf) != 0)
        goto done;
    rc = KCP_EUNAVAILABLE;
    fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&t->sa, t->sa_len) != 0) {
        fprintf(stderr, "Error: cannot connect to the API server: %s\n", strerror(errno));
        goto done;
    }
    /* The serving certificate names the node's addresses; the CA is what we check. */
    mbedtls_ssl_set_bio(&ssl, &fd, fd_send, fd_recv, NULL);
    int r;
    while ((r = mbedtls_ssl_handshake(&ssl)) != 0)
        if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE) {
            fprintf(stderr, "Error: TLS handshake with the API server failed (-0x%04x)\n", -r);
            goto done;
        }
    kcp_buf_printf(&req,
                   "%s %s HTTP/1.1\r\nHost: kcp\r\nUser-Agent: kcp-cli\r\n"
                   "Accept: application/json\r\nConnection: close\r\n",
                   method, path);
    if (body)
        kcp_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    kcp_buf_puts(&req, "\r\n");
    if (body)
        kcp_buf_append(&req, body, body_len);
    for (size_t off = 0; off < req.len;) {
        r = mbedtls_ssl_write(&ssl, (const unsigned char *)req.data + off, req.len - off);
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (r <= 0)
            goto done;
        off += (size_t)r;
    }
    for (;;) {
        unsigned char buf[16384];
        r = mbedtls_ssl_read(&ssl, buf, sizeof(buf));
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_NET_CONN_RESET)
            break;
        if (r < 0 || resp.len + (size_t)r > MAX_RESPONSE)
            goto done;
        kcp_buf_append(&resp, buf, (size_t)r);
    }
    rc = parse_response(resp.data ? resp.data : "", resp.len, out_status, out_body);
done:
    if (fd >= 0)
        close(fd);
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&cert);
    mbedtls_pk_free(&key);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    kcp_buf_free(&req);
    kcp_buf_free(&resp);
    return rc;
}
