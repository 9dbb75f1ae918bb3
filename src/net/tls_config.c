/* The TLS server configuration: CA, serving certificate generations, RNG. */
#include "net_int.h"

#include <mbedtls/error.h>

#include <stdlib.h>
#include <unistd.h>

/* Only HTTP/1.1 is offered: Go's client then never tries h2, which the server does not speak. */
static const char *alpn_protocols[] = {"http/1.1", NULL};

int tls_load_error(const char *what, const char *path, int ret)
{
    char msg[160];
    mbedtls_strerror(ret, msg, sizeof(msg));
    kcp_log(KCP_LOG_ERROR, "net", "%s %s: %s", what, path, msg);
    if (ret == MBEDTLS_ERR_PK_FILE_IO_ERROR || ret == MBEDTLS_ERR_X509_FILE_IO_ERROR)
        return KCP_EIO;
    return KCP_ECRYPTO;
}

static void gen_free(struct tls_gen *gen)
{
    mbedtls_ssl_config_free(&gen->conf);
    mbedtls_x509_crt_free(&gen->cert);
    mbedtls_pk_free(&gen->key);
    free(gen);
}

static int gen_new(struct tls_gen **out, struct kcp_tls_config *cfg, const char *cert_path,
                   const char *key_path)
{
    int err = 0, r;
    struct tls_gen *gen = kcp_calloc(1, sizeof(*gen));
    mbedtls_ssl_config_init(&gen->conf);
    mbedtls_x509_crt_init(&gen->cert);
    mbedtls_pk_init(&gen->key);
    gen->refs = 1;

    if ((r = mbedtls_x509_crt_parse_file(&gen->cert, cert_path)) != 0) {
        err = tls_load_error("loading certificate", cert_path, r);
        goto done;
    }
    if ((r = mbedtls_pk_parse_keyfile(&gen->key, key_path, NULL)) != 0) {
        err = tls_load_error("loading key", key_path, r);
        goto done;
    }
    if ((r = mbedtls_pk_check_pair(&gen->cert.pk, &gen->key)) != 0) {
        err = tls_load_error("key does not match certificate", cert_path, r);
        goto done;
    }
    r = mbedtls_ssl_config_defaults(&gen->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT);
    if (r != 0) {
        err = tls_load_error("TLS defaults for", cert_path, r);
        goto done;
    }
    /* TLS 1.2 and up; the default ciphersuites include the ECDHE-ECDSA/RSA GCM ones Go offers. */
    mbedtls_ssl_conf_min_version(&gen->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_rng(&gen->conf, mbedtls_ctr_drbg_random, &cfg->drbg);
    mbedtls_ssl_conf_ca_chain(&gen->conf, &cfg->ca, NULL);
    /* OPTIONAL: no certificate is fine (anonymous); a bad one fails in tls_on_verify. */
    mbedtls_ssl_conf_authmode(&gen->conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
    mbedtls_ssl_conf_verify(&gen->conf, tls_on_verify, "client");
    if ((r = mbedtls_ssl_conf_alpn_protocols(&gen->conf, alpn_protocols)) != 0 ||
        (r = mbedtls_ssl_conf_own_cert(&gen->conf, &gen->cert, &gen->key)) != 0) {
        err = tls_load_error("TLS configuration for", cert_path, r);
        goto done;
    }
    *out = gen;
    gen = NULL;
done:
    if (gen)
        gen_free(gen);
    return err;
}

struct tls_gen *tls_config_acquire(struct kcp_tls_config *cfg)
{
    cfg->cur->refs++;
    return cfg->cur;
}

void tls_gen_release(struct tls_gen *gen)
{
    if (--gen->refs == 0)
        gen_free(gen);
}

int kcp_tls_config_new(struct kcp_tls_config **out, const char *ca_path, const char *cert_path,
                       const char *key_path)
{
    static const char pers[] = "kcp tls";
    int err = 0, r;
    struct kcp_tls_config *cfg = kcp_calloc(1, sizeof(*cfg));
    mbedtls_entropy_init(&cfg->entropy);
    mbedtls_ctr_drbg_init(&cfg->drbg);
    mbedtls_x509_crt_init(&cfg->ca);

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
    if ((err = gen_new(&cfg->cur, cfg, cert_path, key_path)) != 0)
        goto done;
    *out = cfg;
    cfg = NULL;
done:
    if (cfg)
        kcp_tls_config_free(cfg);
    return err;
}

int kcp_tls_config_reload(struct kcp_tls_config *cfg, const char *cert_path, const char *key_path)
{
    struct tls_gen *gen = NULL;
    int err = gen_new(&gen, cfg, cert_path, key_path);
    if (err != 0)
        return err;
    tls_gen_release(cfg->cur);
    cfg->cur = gen;
    kcp_log(KCP_LOG_INFO, "net", "serving certificate reloaded from %s", cert_path);
    return 0;
}

void kcp_tls_config_free(struct kcp_tls_config *cfg)
{
    if (!cfg)
        return;
    if (cfg->cur)
        tls_gen_release(cfg->cur);
    mbedtls_x509_crt_free(&cfg->ca);
    mbedtls_ctr_drbg_free(&cfg->drbg);
    mbedtls_entropy_free(&cfg->entropy);
    free(cfg);
}
