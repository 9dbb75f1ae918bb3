/* A blocking TCP/TLS client for tests, run on its own thread against a server on the loop. */
#ifndef KCP_TEST_CLIENT_H
#define KCP_TEST_CLIENT_H

#include <kcp/base.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct test_client {
    int fd;
    bool tls;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    struct kcp_buf rbuf; /* bytes read past the last parsed response */
};

/*
 * Connects to 127.0.0.1:port with a 5 s receive timeout. With ca_pem, speaks TLS (server name
 * "localhost", ALPN http/1.1) and presents cert/key when given. Returns 0, -1 when the TCP
 * connection fails, or the mbedTLS error of the handshake. test_client_close in every case.
 */
int test_client_connect(struct test_client *c, int port, const char *ca_pem, const char *cert_pem,
                        const char *key_pem);
int test_client_write(struct test_client *c, const void *data, size_t len);
/* Returns bytes read, 0 at the peer's close, -1 on error or timeout. */
ssize_t test_client_read(struct test_client *c, void *buf, size_t len);
/* Reads until the peer closes (appends to out); -1 on error or timeout. */
int test_client_read_all(struct test_client *c, struct kcp_buf *out);
void test_client_close(struct test_client *c);

struct test_response {
    int status;
    struct kcp_buf headers; /* "name: value\n" lines, names lower-cased */
    struct kcp_buf body;    /* de-chunked */
    bool keep_alive;
};
/* Reads and parses n responses (llhttp); 0 or -1. Free each with test_response_free. */
int test_client_read_responses(struct test_client *c, struct test_response *out, size_t n);
/* Value of a response header (name lower-case) copied into buf, or NULL. */
const char *test_response_header(const struct test_response *r, const char *name, char *buf,
                                 size_t size);
void test_response_free(struct test_response *r);

#endif
