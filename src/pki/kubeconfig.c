/* The admin kubeconfig: YAML that kubectl reads as is, certificates and key embedded as base64. */
#include "pki_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

/* Appends s as base64, the form of kubeconfig's *-data fields (the PEM text, not DER). */
static void buf_base64(struct kcp_buf *b, const char *s)
{
    size_t len = strlen(s), written = 0;
    size_t need = 4 * ((len + 2) / 3) + 1;
    kcp_buf_reserve(b, need);
    /* Cannot fail: the buffer has room for the encoding and its NUL. */
    mbedtls_base64_encode((unsigned char *)b->data + b->len, need, &written,
                          (const unsigned char *)s, len);
    b->len += written;
}

/* Where kubectl on this node reaches the apiserver: a wildcard listen address is reached on
 * loopback, and an IPv6 literal needs brackets in a URL (RFC 3986 §3.2.2). */
static void buf_server_url(struct kcp_buf *b, const struct kcp_pki_params *p)
{
    static const unsigned char unspecified[16];
    unsigned char ip[16];
    const char *host = p->listen_host && *p->listen_host ? p->listen_host : "127.0.0.1";
    if (inet_pton(AF_INET, host, ip) == 1 && memcmp(ip, unspecified, 4) == 0)
        host = "127.0.0.1";
    else if (inet_pton(AF_INET6, host, ip) == 1)
        host = memcmp(ip, unspecified, 16) == 0 ? "127.0.0.1" : NULL;
    if (host)
        kcp_buf_printf(b, "https://%s:%d", host, p->listen_port);
    else
        kcp_buf_printf(b, "https://[%s]:%d", p->listen_host, p->listen_port);
}

int pki_kubeconfig_write(const struct kcp_pki_params *p, const char *ca_crt,
                         const struct pki_pem *admin)
{
    struct kcp_buf b = KCP_BUF_INIT;
    char *path = kcp_pki_kubeconfig_path(p->data_dir);
    /* Room for everything up front: growing would leave copies of the key in freed memory. */
    kcp_buf_reserve(&b, 1024 + 2 * (strlen(ca_crt) + strlen(admin->crt) + strlen(admin->key)));
    kcp_buf_puts(&b, "apiVersion: v1\n"
                     "kind: Config\n"
                     "clusters:\n"
                     "- name: kcp\n"
                     "  cluster:\n"
                     "    server: ");
    buf_server_url(&b, p);
    kcp_buf_puts(&b, "\n    certificate-authority-data: ");
    buf_base64(&b, ca_crt);
    kcp_buf_puts(&b, "\n"
                     "users:\n"
                     "- name: kcp\n"
                     "  user:\n"
                     "    client-certificate-data: ");
    buf_base64(&b, admin->crt);
    kcp_buf_puts(&b, "\n    client-key-data: ");
    buf_base64(&b, admin->key);
    kcp_buf_puts(&b, "\n"
                     "contexts:\n"
                     "- name: kcp\n"
                     "  context:\n"
                     "    cluster: kcp\n"
                     "    user: kcp\n"
                     "current-context: kcp\n"
                     "preferences: {}\n");
    int rc = kcp_file_write_atomic(path, b.data, b.len, 0600);
    /* The buffer held the admin key. */
    mbedtls_platform_zeroize(b.data, b.len);
    kcp_buf_free(&b);
    free(path);
    return rc;
}
