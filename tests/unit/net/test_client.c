/* A blocking TCP/TLS client for tests, with llhttp parsing the responses. */
#include "test_client.h"

#include <llhttp.h>
#include <mbedtls/net_sockets.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char *alpn[] = {"http/1.1", NULL};

static int raw_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct test_client *c = ctx;
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                     : MBEDTLS_ERR_NET_SEND_FAILED;
    return (int)n;
}

static int raw_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct test_client *c = ctx;
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n < 0)
        return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
    return (int)n;
}

int test_client_connect(struct test_client *c, int port, const char *ca_pem, const char *cert_pem,
                        const char *key_pem)
{
    memset(c, 0, sizeof(*c));
    mbedtls_entropy_init(&c->entropy);
    mbedtls_ctr_drbg_init(&c->drbg);
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_ssl_init(&c->ssl);
    mbedtls_x509_crt_init(&c->ca);
    mbedtls_x509_crt_init(&c->cert);
    mbedtls_pk_init(&c->key);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    if (!ca_pem)
        return 0;
    c->tls = true;
    int r;
    if ((r = mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy, NULL, 0)) ||
        (r = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT,
                                         MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT)) ||
        (r = mbedtls_x509_crt_parse(&c->ca, (const unsigned char *)ca_pem, strlen(ca_pem) + 1)))
        return r;
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
    mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_alpn_protocols(&c->conf, alpn);
    if (cert_pem) {
        if ((r = mbedtls_x509_crt_parse(&c->cert, (const unsigned char *)cert_pem,
                                        strlen(cert_pem) + 1)) ||
            (r = mbedtls_pk_parse_key(&c->key, (const unsigned char *)key_pem, strlen(key_pem) + 1,
                                      NULL, 0)) ||
            (r = mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, &c->key)))
            return r;
    }
    if ((r = mbedtls_ssl_setup(&c->ssl, &c->conf)) ||
        (r = mbedtls_ssl_set_hostname(&c->ssl, "localhost")))
        return r;
    mbedtls_ssl_set_bio(&c->ssl, c, raw_send, raw_recv, NULL);
    while ((r = mbedtls_ssl_handshake(&c->ssl)) != 0)
        if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE)
            return r;
    return 0;
}

int test_client_write(struct test_client *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n;
        if (c->tls) {
            int r = mbedtls_ssl_write(&c->ssl, p, len);
            if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
                continue;
            n = r;
        } else {
            n = send(c->fd, p, len, MSG_NOSIGNAL);
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t test_client_read(struct test_client *c, void *buf, size_t len)
{
    if (!c->tls) {
        ssize_t n = recv(c->fd, buf, len, 0);
        return n < 0 ? -1 : n;
    }
    int r = mbedtls_ssl_read(&c->ssl, buf, len);
    if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return 0;
    return r < 0 ? -1 : r;
}

int test_client_read_all(struct test_client *c, struct kcp_buf *out)
{
    char buf[16384];
    if (c->rbuf.len) {
        kcp_buf_append(out, c->rbuf.data, c->rbuf.len);
        kcp_buf_reset(&c->rbuf);
    }
    for (;;) {
        ssize_t n = test_client_read(c, buf, sizeof(buf));
        if (n == 0)
            return 0;
        if (n < 0)
            return -1;
        kcp_buf_append(out, buf, (size_t)n);
    }
}

void test_client_close(struct test_client *c)
{
    if (c->tls)
        mbedtls_ssl_close_notify(&c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    mbedtls_ssl_free(&c->ssl);
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_x509_crt_free(&c->ca);
    mbedtls_x509_crt_free(&c->cert);
    mbedtls_pk_free(&c->key);
    mbedtls_ctr_drbg_free(&c->drbg);
    mbedtls_entropy_free(&c->entropy);
    kcp_buf_free(&c->rbuf);
}

struct parse_state {
    struct test_response *cur;
    bool done;
};

static int rp_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct parse_state *st = p->data;
    for (size_t i = 0; i < len; i++) {
        char ch = (char)tolower((unsigned char)at[i]);
        kcp_buf_append(&st->cur->headers, &ch, 1);
    }
    return 0;
}

static int rp_on_header_field_complete(llhttp_t *p)
{
    struct parse_state *st = p->data;
    kcp_buf_puts(&st->cur->headers, ": ");
    return 0;
}

static int rp_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct parse_state *st = p->data;
    kcp_buf_append(&st->cur->headers, at, len);
    return 0;
}

static int rp_on_header_value_complete(llhttp_t *p)
{
    struct parse_state *st = p->data;
    kcp_buf_puts(&st->cur->headers, "\n");
    return 0;
}

static int rp_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct parse_state *st = p->data;
    kcp_buf_append(&st->cur->body, at, len);
    return 0;
}

static int rp_on_message_complete(llhttp_t *p)
{
    struct parse_state *st = p->data;
    st->cur->status = p->status_code;
    st->cur->keep_alive = llhttp_should_keep_alive(p);
    st->done = true;
    return HPE_PAUSED;
}

int test_client_read_responses(struct test_client *c, struct test_response *out, size_t n)
{
    llhttp_settings_t settings;
    llhttp_t parser;
    struct parse_state st = {0};
    llhttp_settings_init(&settings);
    settings.on_header_field = rp_on_header_field;
    settings.on_header_field_complete = rp_on_header_field_complete;
    settings.on_header_value = rp_on_header_value;
    settings.on_header_value_complete = rp_on_header_value_complete;
    settings.on_body = rp_on_body;
    settings.on_message_complete = rp_on_message_complete;
    memset(out, 0, n * sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        llhttp_init(&parser, HTTP_RESPONSE, &settings);
        parser.data = &st;
        st.cur = &out[i];
        st.done = false;
        for (;;) {
            if (c->rbuf.len) {
                llhttp_errno_t e = llhttp_execute(&parser, c->rbuf.data, c->rbuf.len);
                size_t used = c->rbuf.len;
                if (e == HPE_PAUSED)
                    used = (size_t)(llhttp_get_error_pos(&parser) - c->rbuf.data);
                else if (e != HPE_OK)
                    return -1;
                memmove(c->rbuf.data, c->rbuf.data + used, c->rbuf.len - used);
                c->rbuf.len -= used;
                if (st.done)
                    break;
            }
            char buf[16384];
            ssize_t r = test_client_read(c, buf, sizeof(buf));
            if (r == 0 && llhttp_finish(&parser) == HPE_OK && st.done)
                break;
            if (r <= 0)
                return -1;
            kcp_buf_append(&c->rbuf, buf, (size_t)r);
        }
    }
    return 0;
}

const char *test_response_header(const struct test_response *r, const char *name, char *buf,
                                 size_t size)
{
    size_t nlen = strlen(name);
    const char *p = r->headers.data;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        if (!eol)
            break;
        if ((size_t)(eol - p) > nlen + 2 && memcmp(p, name, nlen) == 0 && p[nlen] == ':') {
            snprintf(buf, size, "%.*s", (int)(eol - p - nlen - 2), p + nlen + 2);
            return buf;
        }
        p = eol + 1;
    }
    return NULL;
}

void test_response_free(struct test_response *r)
{
    kcp_buf_free(&r->headers);
    kcp_buf_free(&r->body);
}
