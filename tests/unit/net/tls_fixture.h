/* Test PKI made with mbedTLS: a CA, a server and a client certificate, and an impostor CA. */
#ifndef KCP_TEST_TLS_FIXTURE_H
#define KCP_TEST_TLS_FIXTURE_H

#include <stddef.h>

/*
 * Everything is EC P-256. The server certificate has SANs IP:127.0.0.1 and DNS:localhost. The
 * client certificate is CN=alice, O=system:masters, O=dev. The rogue CA has the same name as the
 * real one but its own key, so its client certificate (same subject) and its server certificate
 * (same as the real one's) fail on the signature alone.
 */
struct tls_fixture {
    char dir[64]; /* temporary directory holding the PEM files; removed by cleanup */
    char ca_path[128], cert_path[128], key_path[128];
    char cert2_path[128], key2_path[128]; /* a second serving cert (CN=kcp-renewed) */
    char client_cert_path[128], client_key_path[128];
    char rogue_server_cert_path[128], rogue_server_key_path[128];
    char *ca_pem;
    char *client_cert_pem, *client_key_pem;
    char *rogue_cert_pem, *rogue_key_pem;
};

/* Returns 0 or an mbedTLS error; every string is NUL-terminated PEM. */
int tls_fixture_init(struct tls_fixture *f);
void tls_fixture_cleanup(struct tls_fixture *f);

#endif
