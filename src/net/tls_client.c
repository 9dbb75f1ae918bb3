/* The TLS client configuration: the CA a server must chain to, our client certificate, RNG. */
#include "net_int.h"

#include <stdlib.h>

/* The Raft transport speaks HTTP/1.1 to its peers, whose listener offers only that. */
static const char *alpn_protocols[] = {"http/1.1", NULL};

static void client_config_destroy(struct kcp_tls_client_config *cfg)
{
    mbedtls_ssl_config_free(&cfg->conf);
    mbedtls_pk_free(&cfg->key);
    mbedtls_x509_crt_free(&cfg->cert);
    mbedtls_x509_crt_free(&cfg->ca);
    mbedtls_ctr_drbg_free(&cfg->drbg);
    mbedtls_entropy_free(&cfg->entropy);
    free(cfg);
}

struct kcp_tls_client_config *tls_client_config_acquire(struct kcp_tls_client_config *cfg)
{
    cfg->refs++;
    return cfg;
}

void tls_client_config_release(struct kcp_tls_client_config *cfg)
{
    if (--cfg->refs == 0)
        client_config_destroy(cfg);
}

int kcp_tls_client_config_new(struct kcp_tls_client_config **out, const char *ca_path,
                              const char *cert_path, const char *key_path)
{
    static const char pers[] = "kcp tls client";
    int err = 0, r;
    if (!ca_path || !cert_path != !key_path)
        return KCP_EINVAL;
    struct kcp_tls_client_config *cfg = kcp_calloc(1, sizeof(*cfg));
    mbedtls_entropy_init(&cfg->entropy);
    mbedtls_ctr_drbg_init(&cfg->drbg);
    mbedtls_x509_crt_init(&cfg->ca);
    mbedtls_x509_crt_init(&cfg->cert);
    mbedtls_pk_init(&cfg->key);
    mbedtls_ssl_config_init(&cfg->conf);
    cfg->refs = 1;

    r = mbedtls_ctr_drbg_seed(&cfg->drbg, mbedtls_entropy_func, &cfg->entropy,
                              (const unsigned char *)pers, sizeof(pers) - 1);
    if (r != 0) {
        err = tls_load_error("seeding the TLS random generator", "", r);
        goto done;
    }
    if ((r = mbedtls_x509_crt_parse_file(&cfg->ca, ca_path)) != 0) {
        err = tls_load_error("loading CA", ca_path, r);
        goto done;
    }
    if (cert_path) {
        if ((r = mbedtls_x509_crt_parse_file(&cfg->cert, cert_path)) != 0) {
            err = tls_load_error("loading certificate", cert_path, r);
            goto done;
        }
        if ((r = mbedtls_pk_parse_keyfile(&cfg->key, key_path, NULL)) != 0) {
            err = tls_load_error("loading key", key_path, r);
            goto done;
        }
        if ((r = mbedtls_pk_check_pair(&cfg->cert.pk, &cfg->key)) != 0) {
            err = tls_load_error("key does not match certificate", cert_path, r);
            goto done;
        }
    }
    r = mbedtls_ssl_config_defaults(&cfg->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT);
    if (r != 0) {
        err = tls_load_error("TLS client defaults for", ca_path, r);
        goto done;
    }
    mbedtls_ssl_conf_min_version(&cfg->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_rng(&cfg->conf, mbedtls_ctr_drbg_random, &cfg->drbg);
    mbedtls_ssl_conf_ca_chain(&cfg->conf, &cfg->ca, NULL);
    /* REQUIRED: no server certificate, or one the CA did not sign, fails the handshake. */
    mbedtls_ssl_conf_authmode(&cfg->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_verify(&cfg->conf, tls_on_verify, "server");
    if ((r = mbedtls_ssl_conf_alpn_protocols(&cfg->conf, alpn_protocols)) != 0 ||
        (cert_path && (r = mbedtls_ssl_conf_own_cert(&cfg->conf, &cfg->cert, &cfg->key)) != 0)) {
        err = tls_load_error("TLS client configuration for", cert_path ? cert_path : ca_path, r);
        goto done;
    }
    *out = cfg;
    cfg = NULL;
done:
    if (cfg)
        client_config_destroy(cfg);
    return err;
}

void kcp_tls_client_config_free(struct kcp_tls_client_config *cfg)
{
    if (cfg)
        tls_client_config_release(cfg);
}
