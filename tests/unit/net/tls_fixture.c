/* Test PKI made with mbedTLS (the pki module is not used, so these tests stand alone). */
#include "tls_fixture.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEM_MAX 4096
#define CA_NAME "CN=kcp-test-ca,O=kcp"

/* DER of the extension values: SAN {IP 127.0.0.1, DNS localhost}; EKU serverAuth/clientAuth. */
static const unsigned char san_der[] = {0x30, 0x11, 0x87, 0x04, 0x7f, 0x00, 0x00, 0x01, 0x82, 0x09,
                                        'l',  'o',  'c',  'a',  'l',  'h',  'o',  's',  't'};
static const unsigned char eku_server[] = {0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06,
                                           0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
static const unsigned char eku_client[] = {0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06,
                                           0x01, 0x05, 0x05, 0x07, 0x03, 0x02};

struct gen {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    int serial;
};

static int make_key(struct gen *g, mbedtls_pk_context *key)
{
    int r;
    if ((r = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))) != 0)
        return r;
    return mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key),
                               mbedtls_ctr_drbg_random, &g->drbg);
}

enum kind { KIND_CA, KIND_SERVER, KIND_CLIENT };

/*
 * mbedtls_x509write_crt_set_subject_name keeps one value per attribute type, but a client
 * certificate carries several O (groups): the extra ones are linked in by hand.
 */
static void add_organization(mbedtls_x509write_cert *crt, const char *o)
{
    mbedtls_asn1_named_data *n = calloc(1, sizeof(*n));
    n->oid.tag = MBEDTLS_ASN1_OID;
    n->oid.len = MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORGANIZATION);
    n->oid.p = malloc(n->oid.len);
    memcpy(n->oid.p, MBEDTLS_OID_AT_ORGANIZATION, n->oid.len);
    n->val.tag = MBEDTLS_ASN1_UTF8_STRING;
    n->val.len = strlen(o);
    n->val.p = malloc(n->val.len);
    memcpy(n->val.p, o, n->val.len);
    n->next = crt->subject;
    crt->subject = n;
}

static int make_cert(struct gen *g, enum kind kind, const char *subject, mbedtls_pk_context *key,
                     mbedtls_pk_context *issuer_key, char **out_pem)
{
    mbedtls_x509write_cert crt;
    mbedtls_mpi serial;
    int r;
    unsigned char *pem = calloc(1, PEM_MAX);
    mbedtls_x509write_crt_init(&crt);
    mbedtls_mpi_init(&serial);
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, key);
    mbedtls_x509write_crt_set_issuer_key(&crt, issuer_key);
    if ((r = mbedtls_x509write_crt_set_subject_name(&crt, subject)) != 0 ||
        (r = mbedtls_x509write_crt_set_issuer_name(&crt, kind == KIND_CA ? subject : CA_NAME)) ||
        (r = mbedtls_mpi_lset(&serial, ++g->serial)) != 0 ||
        (r = mbedtls_x509write_crt_set_serial(&crt, &serial)) != 0 ||
        (r = mbedtls_x509write_crt_set_validity(&crt, "20200101000000", "20491231235959")) != 0 ||
        (r = mbedtls_x509write_crt_set_basic_constraints(&crt, kind == KIND_CA, -1)) != 0 ||
        (r = mbedtls_x509write_crt_set_subject_key_identifier(&crt)) != 0 ||
        (r = mbedtls_x509write_crt_set_authority_key_identifier(&crt)) != 0)
        goto done;
    if (kind == KIND_CA) {
        r = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_KEY_CERT_SIGN |
                                                          MBEDTLS_X509_KU_CRL_SIGN);
    } else {
        r = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
        if (r == 0)
            r = mbedtls_x509write_crt_set_extension(
                &crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0,
                kind == KIND_SERVER ? eku_server : eku_client, sizeof(eku_server));
    }
    if (r == 0 && kind == KIND_CLIENT)
        add_organization(&crt, "dev");
    if (r == 0 && kind == KIND_SERVER)
        r = mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                                                san_der, sizeof(san_der));
    if (r != 0)
        goto done;
    r = mbedtls_x509write_crt_pem(&crt, pem, PEM_MAX, mbedtls_ctr_drbg_random, &g->drbg);
done:
    mbedtls_x509write_crt_free(&crt);
    mbedtls_mpi_free(&serial);
    if (r == 0)
        *out_pem = (char *)pem;
    else
        free(pem);
    return r;
}

static char *key_pem(mbedtls_pk_context *key)
{
    unsigned char *pem = calloc(1, PEM_MAX);
    if (mbedtls_pk_write_key_pem(key, pem, PEM_MAX) != 0) {
        free(pem);
        return NULL;
    }
    return (char *)pem;
}

static int write_file(char *path, size_t size, const char *dir, const char *name, const char *s)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp || !s)
        return -1;
    fputs(s, fp);
    return fclose(fp) == 0 ? 0 : -1;
}

int tls_fixture_init(struct tls_fixture *f)
{
    struct gen g;
    mbedtls_pk_context ca_key, srv_key, srv2_key, cli_key, rogue_ca_key, rogue_key, rogue_srv_key;
    char *srv_pem = NULL, *srv2_pem = NULL, *srv_key_pem = NULL, *srv2_key_pem = NULL;
    char *rogue_srv_pem = NULL, *rogue_srv_key_pem = NULL;
    int r;
    memset(f, 0, sizeof(*f));
    memset(&g, 0, sizeof(g));
    mbedtls_pk_context *keys[] = {&ca_key,       &srv_key,   &srv2_key,     &cli_key,
                                  &rogue_ca_key, &rogue_key, &rogue_srv_key};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        mbedtls_pk_init(keys[i]);
    mbedtls_entropy_init(&g.entropy);
    mbedtls_ctr_drbg_init(&g.drbg);
    if ((r = mbedtls_ctr_drbg_seed(&g.drbg, mbedtls_entropy_func, &g.entropy, NULL, 0)) != 0)
        goto done;
    if ((r = make_key(&g, &ca_key)) || (r = make_key(&g, &srv_key)) ||
        (r = make_key(&g, &srv2_key)) || (r = make_key(&g, &cli_key)) ||
        (r = make_key(&g, &rogue_ca_key)) || (r = make_key(&g, &rogue_key)) ||
        (r = make_key(&g, &rogue_srv_key)))
        goto done;
    if ((r = make_cert(&g, KIND_CA, CA_NAME, &ca_key, &ca_key, &f->ca_pem)) ||
        (r = make_cert(&g, KIND_SERVER, "CN=kcp-server", &srv_key, &ca_key, &srv_pem)) ||
        (r = make_cert(&g, KIND_SERVER, "CN=kcp-renewed", &srv2_key, &ca_key, &srv2_pem)) ||
        (r = make_cert(&g, KIND_CLIENT, "CN=alice,O=system:masters", &cli_key, &ca_key,
                       &f->client_cert_pem)) ||
        (r = make_cert(&g, KIND_CLIENT, "CN=alice,O=system:masters", &rogue_key, &rogue_ca_key,
                       &f->rogue_cert_pem)) ||
        (r = make_cert(&g, KIND_SERVER, "CN=kcp-server", &rogue_srv_key, &rogue_ca_key,
                       &rogue_srv_pem)))
        goto done;
    srv_key_pem = key_pem(&srv_key);
    srv2_key_pem = key_pem(&srv2_key);
    f->client_key_pem = key_pem(&cli_key);
    f->rogue_key_pem = key_pem(&rogue_key);
    rogue_srv_key_pem = key_pem(&rogue_srv_key);
    snprintf(f->dir, sizeof(f->dir), "/tmp/kcp-tls-XXXXXX");
    r = -1;
    if (!mkdtemp(f->dir))
        goto done;
    if (write_file(f->ca_path, sizeof(f->ca_path), f->dir, "ca.crt", f->ca_pem) ||
        write_file(f->cert_path, sizeof(f->cert_path), f->dir, "server.crt", srv_pem) ||
        write_file(f->key_path, sizeof(f->key_path), f->dir, "server.key", srv_key_pem) ||
        write_file(f->cert2_path, sizeof(f->cert2_path), f->dir, "server2.crt", srv2_pem) ||
        write_file(f->key2_path, sizeof(f->key2_path), f->dir, "server2.key", srv2_key_pem) ||
        write_file(f->client_cert_path, sizeof(f->client_cert_path), f->dir, "client.crt",
                   f->client_cert_pem) ||
        write_file(f->client_key_path, sizeof(f->client_key_path), f->dir, "client.key",
                   f->client_key_pem) ||
        write_file(f->rogue_server_cert_path, sizeof(f->rogue_server_cert_path), f->dir,
                   "rogue-server.crt", rogue_srv_pem) ||
        write_file(f->rogue_server_key_path, sizeof(f->rogue_server_key_path), f->dir,
                   "rogue-server.key", rogue_srv_key_pem))
        goto done;
    r = 0;
done:
    free(srv_pem);
    free(srv2_pem);
    free(srv_key_pem);
    free(srv2_key_pem);
    free(rogue_srv_pem);
    free(rogue_srv_key_pem);
    mbedtls_pk_free(&ca_key);
    mbedtls_pk_free(&srv_key);
    mbedtls_pk_free(&srv2_key);
    mbedtls_pk_free(&cli_key);
    mbedtls_pk_free(&rogue_ca_key);
    mbedtls_pk_free(&rogue_key);
    mbedtls_pk_free(&rogue_srv_key);
    mbedtls_ctr_drbg_free(&g.drbg);
    mbedtls_entropy_free(&g.entropy);
    return r;
}

void tls_fixture_cleanup(struct tls_fixture *f)
{
    const char *paths[] = {f->ca_path,
                           f->cert_path,
                           f->key_path,
                           f->cert2_path,
                           f->key2_path,
                           f->client_cert_path,
                           f->client_key_path,
                           f->rogue_server_cert_path,
                           f->rogue_server_key_path};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (paths[i][0])
            unlink(paths[i]);
    if (f->dir[0])
        rmdir(f->dir);
    free(f->ca_pem);
    free(f->client_cert_pem);
    free(f->client_key_pem);
    free(f->rogue_cert_pem);
    free(f->rogue_key_pem);
    memset(f, 0, sizeof(*f));
}
