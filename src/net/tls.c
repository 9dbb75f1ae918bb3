/* Per-connection TLS: mbedTLS over the connection's buffers, handshake, peer identity. */
#include "net_int.h"

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509.h>

#include <stdlib.h>
#include <string.h>

void tls_log_error(const char *what, const char *who, int ret)
{
    char msg[160];
    mbedtls_strerror(ret, msg, sizeof(msg));
    KCP_LOG_V(1, "net", "%s %s: %s (-0x%04x)", what, who, msg, (unsigned)-ret);
}

/* mbedTLS's bio: ciphertext comes from the connection's input buffer... */
static int tls_on_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct kcp_conn *c = ctx;
    size_t avail = c->in.len - c->in_off;
    if (avail == 0)
        return c->peer_eof ? MBEDTLS_ERR_SSL_CONN_EOF : MBEDTLS_ERR_SSL_WANT_READ;
    size_t n = avail < len ? avail : len;
    memcpy(buf, c->in.data + c->in_off, n);
    c->in_off += n;
    return (int)n;
}

/* ...and goes to its output queue, which never refuses (the backlog is bounded above us). */
static int tls_on_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct kcp_conn *c = ctx;
    if (c->state == CONN_CLOSING)
        return MBEDTLS_ERR_NET_CONN_RESET;
    conn_queue_out(c, buf, len);
    return (int)len;
}

/*
 * Called for each certificate of the peer's chain with what is wrong with it; data names the
 * peer's side ("client" or "server") for the log. With authmode OPTIONAL (the server) mbedTLS
 * would go on past a bad chain; failing here makes it a fatal handshake error instead, so an
 * untrusted certificate never reaches the application.
 */
int tls_on_verify(void *data, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    const char *side = data;
    if (*flags == 0)
        return 0;
    if (kcp_log_verbosity() >= 1) {
        char info[256], subject[256];
        mbedtls_x509_crt_verify_info(info, sizeof(info), "", *flags);
        mbedtls_x509_dn_gets(subject, sizeof(subject), &crt->subject);
        size_t n = strlen(info);
        while (n && info[n - 1] == '\n')
            info[--n] = '\0';
        kcp_log(KCP_LOG_INFO, "net", "%s certificate \"%s\" (depth %d) rejected: %s", side, subject,
                depth, info);
    }
    return MBEDTLS_ERR_X509_FATAL_ERROR;
}

int tls_conn_setup(struct kcp_conn *c)
{
    const mbedtls_ssl_config *conf;
    int r;
    if (c->client_cfg) {
        conf = &c->client_cfg->conf;
    } else {
        c->gen = tls_config_acquire(c->tls_cfg);
        conf = &c->gen->conf;
    }
    mbedtls_ssl_init(&c->ssl);
    c->ssl_ready = true;
    if ((r = mbedtls_ssl_setup(&c->ssl, conf)) != 0) {
        tls_log_error("TLS setup", "", r);
        return KCP_ECRYPTO;
    }
    /*
     * A client checks no host name: peers are addressed by IP and the CA is the cluster's own.
     * Said explicitly, because mbedTLS 3.6.3 and later refuse to verify a server otherwise.
     */
    if (c->client_cfg && (r = mbedtls_ssl_set_hostname(&c->ssl, NULL)) != 0) {
        tls_log_error("TLS setup", "", r);
        return KCP_ECRYPTO;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, tls_on_send, tls_on_recv, NULL);
    return 0;
}

static void identity_free(struct kcp_peer_identity *id)
{
    if (!id)
        return;
    free(id->user);
    for (size_t i = 0; i < id->ngroups; i++)
        free(id->groups[i]);
    free(id->groups);
    free(id);
}

void tls_conn_free(struct kcp_conn *c)
{
    identity_free(c->identity);
    c->identity = NULL;
    if (c->ssl_ready)
        mbedtls_ssl_free(&c->ssl);
    c->ssl_ready = false;
    if (c->gen)
        tls_gen_release(c->gen);
    c->gen = NULL;
    if (c->client_cfg)
        tls_client_config_release(c->client_cfg);
    c->client_cfg = NULL;
}

/*
 * The Kubernetes x509 authenticator's mapping: user from the subject CN, groups from every O.
 * No CN means no identity (anonymous), as upstream. On a client connection the same mapping
 * names the server.
 */
static struct kcp_peer_identity *identity_from_cert(const mbedtls_x509_crt *crt)
{
    struct kcp_peer_identity *id = kcp_calloc(1, sizeof(*id));
    for (const mbedtls_x509_name *n = &crt->subject; n; n = n->next) {
        if (!n->oid.p)
            continue;
        char *v = kcp_strndup((const char *)n->val.p, n->val.len);
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
            free(id->user);
            id->user = v;
        } else if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_ORGANIZATION, &n->oid) == 0) {
            id->groups = kcp_realloc(id->groups, (id->ngroups + 1) * sizeof(char *));
            id->groups[id->ngroups++] = v;
        } else {
            free(v);
        }
    }
    if (!id->user || !id->user[0]) {
        identity_free(id);
        return NULL;
    }
    return id;
}

void tls_handshake_step(struct kcp_conn *c)
{
    char peer[80];
    int r = mbedtls_ssl_handshake(&c->ssl);
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
        return;
    if (r != 0) {
        conn_describe_peer(c, peer, sizeof(peer));
        tls_log_error("TLS handshake with", peer, r);
        if (c->state != CONN_CLOSING) /* a failed write may have closed it already */
            conn_drain(c);            /* the alert mbedTLS queued still goes out */
        return;
    }
    const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
    /*
     * Verified but unfit, e.g. no clientAuth usage, which OPTIONAL lets through; or a server
     * with no certificate at all, which REQUIRED already refuses (kept so, whatever the config).
     */
    if ((crt && mbedtls_ssl_get_verify_result(&c->ssl) != 0) || (!crt && c->client_cfg)) {
        conn_describe_peer(c, peer, sizeof(peer));
        KCP_LOG_V(1, "net", "TLS peer %s: certificate rejected (flags 0x%x)", peer,
                  mbedtls_ssl_get_verify_result(&c->ssl));
        mbedtls_ssl_send_alert_message(&c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                       MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
        if (c->state != CONN_CLOSING)
            conn_drain(c);
        return;
    }
    if (crt)
        c->identity = identity_from_cert(crt);
    conn_opened(c);
}

void tls_pump(struct kcp_conn *c)
{
    unsigned char buf[NET_READ_SIZE];
    while (c->state == CONN_OPEN && !c->paused) {
        int r = mbedtls_ssl_read(&c->ssl, buf, sizeof(buf));
        if (r > 0) {
            c->handler->on_data(c, (const char *)buf, (size_t)r);
            continue;
        }
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            return;
        if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_SSL_CONN_EOF) {
            conn_drain(c); /* the peer is done sending; our queued bytes still go out */
            return;
        }
        char peer[80];
        conn_describe_peer(c, peer, sizeof(peer));
        tls_log_error("TLS read from", peer, r);
        conn_close_now(c);
        return;
    }
}

int tls_write(struct kcp_conn *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        int r = mbedtls_ssl_write(&c->ssl, p, len);
        if (r <= 0) {
            /* No renegotiation and a bio that never blocks: any other result is fatal. */
            tls_log_error("TLS write", "", r);
            conn_close_now(c);
            return KCP_ECLOSED;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

void tls_close_notify(struct kcp_conn *c)
{
    mbedtls_ssl_close_notify(&c->ssl);
}
