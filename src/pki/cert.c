/* Issuing certificates with mbedTLS: keys, serials, validity, the three profiles and their SANs. */
#include "pki_internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/platform_util.h>

/* The first address of the Service network: what the "kubernetes" Service's ClusterIP is. */
#define PKI_SERVICE_IP "10.43.0.1"
/* Clocks of clients and nodes disagree; a certificate is valid from this long before "now". */
#define PKI_SKEW_SECONDS 3600
#define PKI_DNS_MAX 253
#define PKI_SAN_MAX 16

/* Appends one DER element written backwards (mbedTLS' asn1write convention) to len. */
#define ASN1_ADD(len, expr)                                                                        \
    do {                                                                                           \
        int n_ = (expr);                                                                           \
        if (n_ < 0)                                                                                \
            return KCP_ECRYPTO;                                                                    \
        (len) += (size_t)n_;                                                                       \
    } while (0)

int pki_rng_init(struct pki_rng *rng)
{
    static const char personalization[] = "kcp-pki";
    mbedtls_entropy_init(&rng->entropy);
    mbedtls_ctr_drbg_init(&rng->drbg);
    if (mbedtls_ctr_drbg_seed(&rng->drbg, mbedtls_entropy_func, &rng->entropy,
                              (const unsigned char *)personalization,
                              sizeof(personalization) - 1) != 0)
        return KCP_ECRYPTO;
    return 0;
}

void pki_rng_free(struct pki_rng *rng)
{
    mbedtls_ctr_drbg_free(&rng->drbg);
    mbedtls_entropy_free(&rng->entropy);
}

void pki_pair_init(struct pki_pair *pair)
{
    mbedtls_x509_crt_init(&pair->crt);
    mbedtls_pk_init(&pair->key);
}

void pki_pair_free(struct pki_pair *pair)
{
    mbedtls_x509_crt_free(&pair->crt);
    mbedtls_pk_free(&pair->key);
}

int pki_pair_parse(struct pki_pair *out, const struct pki_pem *pem)
{
    const unsigned char *crt = (const unsigned char *)pem->crt;
    const unsigned char *key = (const unsigned char *)pem->key;
    /* mbedTLS recognises PEM only when the terminating NUL is counted in the length. */
    if (mbedtls_x509_crt_parse(&out->crt, crt, strlen(pem->crt) + 1) != 0)
        return KCP_ECRYPTO;
    if (!key)
        return 0;
    if (mbedtls_pk_parse_key(&out->key, key, strlen(pem->key) + 1, NULL, 0) != 0)
        return KCP_ECRYPTO;
    if (mbedtls_pk_check_pair(&out->crt.pk, &out->key) != 0)
        return KCP_ECRYPTO;
    return 0;
}

int64_t pki_not_after(const mbedtls_x509_crt *crt)
{
    const mbedtls_x509_time *t = &crt->valid_to;
    struct tm tm = {0};
    tm.tm_year = t->year - 1900;
    tm.tm_mon = t->mon - 1;
    tm.tm_mday = t->day;
    tm.tm_hour = t->hour;
    tm.tm_min = t->min;
    tm.tm_sec = t->sec;
    return (int64_t)timegm(&tm);
}

/* mbedtls_x509write_crt_set_validity takes UTC as "YYYYMMDDhhmmss". */
static int format_time(char out[16], int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if ((int64_t)tt != t || !gmtime_r(&tt, &tm) || tm.tm_year + 1900 < 1000 ||
        tm.tm_year + 1900 > 9999)
        return KCP_EINVAL;
    /* The year check keeps %Y at four digits, as mbedTLS requires. */
    return strftime(out, 16, "%Y%m%d%H%M%S", &tm) == 14 ? 0 : KCP_EINVAL;
}

static bool valid_dns_name(const char *s)
{
    /* RFC 1123 host names, the shape of Kubernetes node names: what a client can match, and
     * nothing that a subject string ("CN=...") would need to escape. */
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > PKI_DNS_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (c != '-' || label == 0))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0 && s[len - 1] != '-';
}

/* Parses a numeric IPv4 or IPv6 address into out; returns its length, or 0 for a name. */
static size_t parse_ip(const char *host, unsigned char out[16])
{
    if (inet_pton(AF_INET, host, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, host, out) == 1)
        return 16;
    return 0;
}

int pki_params_check(const struct kcp_pki_params *p)
{
    unsigned char ip[16];
    if (!p->data_dir || !*p->data_dir || !p->node_name || !valid_dns_name(p->node_name))
        return KCP_EINVAL;
    if (p->listen_host && *p->listen_host && !parse_ip(p->listen_host, ip) &&
        !valid_dns_name(p->listen_host))
        return KCP_EINVAL;
    if (p->listen_port < 1 || p->listen_port > 65535)
        return KCP_EINVAL;
    return 0;
}

/* One GeneralName of subjectAltName (RFC 5280 §4.2.1.6): dNSName [2] or iPAddress [7]. */
struct san {
    int tag;
    size_t len;
    unsigned char data[PKI_DNS_MAX];
};

struct san_list {
    size_t n;
    struct san e[PKI_SAN_MAX];
};

static void san_add(struct san_list *l, int tag, const void *data, size_t len)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct san *s = &l->e[i];
        if (s->tag == tag && s->len == len &&
            (tag == MBEDTLS_X509_SAN_DNS_NAME ? strncasecmp((const char *)s->data, data, len)
                                              : memcmp(s->data, data, len)) == 0)
            return;
    }
    assert(l->n < PKI_SAN_MAX); /* server_sans adds at most nine */
    struct san *s = &l->e[l->n++];
    s->tag = tag;
    s->len = len;
    memcpy(s->data, data, len);
}

static void san_add_host(struct san_list *l, const char *host)
{
    static const unsigned char unspecified[16];
    unsigned char ip[16];
    size_t len = parse_ip(host, ip);
    if (!len)
        san_add(l, MBEDTLS_X509_SAN_DNS_NAME, host, strlen(host));
    /* 0.0.0.0 and :: mean "every interface": no client dials them, the kubeconfig says
     * 127.0.0.1 instead. */
    else if (memcmp(ip, unspecified, len) != 0)
        san_add(l, MBEDTLS_X509_SAN_IP_ADDRESS, ip, len);
}

/* Every name clients reach the apiserver by: the node, loopback, the in-cluster Service. */
static void server_sans(struct san_list *l, const struct kcp_pki_params *p)
{
    static const char *const names[] = {"localhost", "kubernetes", "kubernetes.default",
                                        "kubernetes.default.svc",
                                        "kubernetes.default.svc.cluster.local"};
    l->n = 0;
    san_add(l, MBEDTLS_X509_SAN_DNS_NAME, p->node_name, strlen(p->node_name));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        san_add(l, MBEDTLS_X509_SAN_DNS_NAME, names[i], strlen(names[i]));
    san_add_host(l, "127.0.0.1");
    san_add_host(l, PKI_SERVICE_IP);
    if (p->listen_host && *p->listen_host)
        san_add_host(l, p->listen_host);
}

/* x509write in mbedTLS 2.28 cannot write iPAddress names, so the extension is built here. */
static int set_subject_alt_name(mbedtls_x509write_cert *crt, const struct san_list *l)
{
    unsigned char buf[PKI_SAN_MAX * (PKI_DNS_MAX + 4) + 8];
    unsigned char *p = buf + sizeof(buf);
    size_t len = 0;
    for (size_t i = l->n; i-- > 0;) {
        const struct san *s = &l->e[i];
        ASN1_ADD(len, mbedtls_asn1_write_raw_buffer(&p, buf, s->data, s->len));
        ASN1_ADD(len, mbedtls_asn1_write_len(&p, buf, s->len));
        ASN1_ADD(len, mbedtls_asn1_write_tag(
                          &p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | (unsigned char)s->tag));
    }
    ASN1_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
    ASN1_ADD(len,
             mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    if (mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                            MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, p,
                                            len) != 0)
        return KCP_ECRYPTO;
    return 0;
}

/* Nor has it an extendedKeyUsage setter (RFC 5280 §4.2.1.12: SEQUENCE OF KeyPurposeId). */
static int set_ext_key_usage(mbedtls_x509write_cert *crt, bool server_auth, bool client_auth)
{
    unsigned char buf[32];
    unsigned char *p = buf + sizeof(buf);
    size_t len = 0;
    if (client_auth)
        ASN1_ADD(len, mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_CLIENT_AUTH,
                                             MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)));
    if (server_auth)
        ASN1_ADD(len, mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_SERVER_AUTH,
                                             MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
    ASN1_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
    ASN1_ADD(len,
             mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    if (mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                            MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0, p,
                                            len) != 0)
        return KCP_ECRYPTO;
    return 0;
}

static int random_serial(mbedtls_mpi *out, struct pki_rng *rng)
{
    unsigned char b[16];
    if (mbedtls_ctr_drbg_random(&rng->drbg, b, sizeof(b)) != 0)
        return KCP_ECRYPTO;
    /* Positive (RFC 5280 §4.1.2.2; Go rejects negative serials), and with the next bit set the
     * DER INTEGER is always exactly 16 octets. */
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    return mbedtls_mpi_read_binary(out, b, sizeof(b)) == 0 ? 0 : KCP_ECRYPTO;
}

static int generate_key(mbedtls_pk_context *key, struct pki_rng *rng)
{
    if (mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key), mbedtls_ctr_drbg_random,
                            &rng->drbg) != 0)
        return KCP_ECRYPTO;
    return 0;
}

/* Extensions by kind. The server certificate also authenticates as a client so that peers
 * of a multi-node cluster can present it to each other. */
static int set_profile(mbedtls_x509write_cert *crt, enum pki_kind kind,
                       const struct kcp_pki_params *p)
{
    struct san_list sans;
    int rc;
    switch (kind) {
    case PKI_CA:
        /* Path length 0: this CA signs leaves only. */
        if (mbedtls_x509write_crt_set_basic_constraints(crt, 1, 0) != 0 ||
            mbedtls_x509write_crt_set_key_usage(crt, MBEDTLS_X509_KU_KEY_CERT_SIGN |
                                                         MBEDTLS_X509_KU_CRL_SIGN) != 0)
            return KCP_ECRYPTO;
        return 0;
    case PKI_SERVER:
        if (mbedtls_x509write_crt_set_basic_constraints(crt, 0, -1) != 0 ||
            mbedtls_x509write_crt_set_key_usage(crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE |
                                                         MBEDTLS_X509_KU_KEY_ENCIPHERMENT) != 0)
            return KCP_ECRYPTO;
        server_sans(&sans, p);
        if ((rc = set_ext_key_usage(crt, true, true)) != 0)
            return rc;
        return set_subject_alt_name(crt, &sans);
    case PKI_ADMIN:
    case PKI_PEER:
        if (mbedtls_x509write_crt_set_basic_constraints(crt, 0, -1) != 0 ||
            mbedtls_x509write_crt_set_key_usage(crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0)
            return KCP_ECRYPTO;
        return set_ext_key_usage(crt, false, true);
    }
    return KCP_EINVAL;
}

int pki_issue(struct pki_pem *out, struct pki_rng *rng, enum pki_kind kind,
              const struct kcp_pki_params *p, struct pki_pair *ca)
{
    int rc = 0;
    char *subject = NULL;
    char issuer[256], not_before[16], not_after[16];
    unsigned char crt_pem[8192], key_pem[1024];
    int64_t days = kind == PKI_CA ? KCP_PKI_CA_DAYS : KCP_PKI_LEAF_DAYS;
    mbedtls_pk_context key;
    mbedtls_x509write_cert crt;
    mbedtls_mpi serial;
    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&crt);
    mbedtls_mpi_init(&serial);

    if ((rc = format_time(not_before, p->now - PKI_SKEW_SECONDS)) != 0 ||
        (rc = format_time(not_after, p->now + days * 86400)) != 0)
        goto done;
    if ((rc = generate_key(&key, rng)) != 0 || (rc = random_serial(&serial, rng)) != 0)
        goto done;
    if (kind == PKI_CA)
        subject = kcp_strdup("CN=kcp-ca");
    else if (kind == PKI_SERVER)
        subject = kcp_sprintf("CN=%s", p->node_name);
    else if (kind == PKI_PEER)
        subject = kcp_sprintf("O=%s,CN=%s%s", KCP_PKI_PEER_GROUP, KCP_PKI_PEER_PREFIX, p->node_name);
    else
        subject = kcp_strdup("O=system:masters,CN=kcp-admin");
    /* Go finds a certificate's parent by comparing its issuer with the CA's subject byte for
     * byte; both are written by mbedTLS from the same string. */
    if (ca && mbedtls_x509_dn_gets(issuer, sizeof(issuer), &ca->crt.subject) < 0) {
        rc = KCP_ECRYPTO;
        goto done;
    }

    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, &key);
    mbedtls_x509write_crt_set_issuer_key(&crt, ca ? &ca->key : &key);
    if (mbedtls_x509write_crt_set_subject_name(&crt, subject) != 0 ||
        mbedtls_x509write_crt_set_issuer_name(&crt, ca ? issuer : subject) != 0 ||
        mbedtls_x509write_crt_set_serial(&crt, &serial) != 0 ||
        mbedtls_x509write_crt_set_validity(&crt, not_before, not_after) != 0 ||
        mbedtls_x509write_crt_set_subject_key_identifier(&crt) != 0 ||
        (ca && mbedtls_x509write_crt_set_authority_key_identifier(&crt) != 0)) {
        rc = KCP_ECRYPTO;
        goto done;
    }
    if ((rc = set_profile(&crt, kind, p)) != 0)
        goto done;
    if (mbedtls_x509write_crt_pem(&crt, crt_pem, sizeof(crt_pem), mbedtls_ctr_drbg_random,
                                  &rng->drbg) != 0 ||
        mbedtls_pk_write_key_pem(&key, key_pem, sizeof(key_pem)) != 0) {
        rc = KCP_ECRYPTO;
        goto done;
    }
    out->crt = kcp_strdup((const char *)crt_pem);
    out->key = kcp_strdup((const char *)key_pem);
done:
    mbedtls_platform_zeroize(key_pem, sizeof(key_pem));
    mbedtls_pk_free(&key);
    mbedtls_x509write_crt_free(&crt);
    mbedtls_mpi_free(&serial);
    free(subject);
    return rc;
}

/* The value of extension oid in crt. mbedTLS 2.28 drops iPAddress names when it parses
 * subjectAltName, so coverage is checked against the raw extension. */
static bool find_extension(const mbedtls_x509_crt *crt, const char *oid, size_t oid_len,
                           unsigned char **out, size_t *out_len)
{
    unsigned char *p = crt->v3_ext.p, *end = p + crt->v3_ext.len;
    size_t len;
    if (!p ||
        mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return false;
    end = p + len;
    while (p < end) {
        int critical;
        size_t id_len;
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
            return false;
        unsigned char *ext_end = p + len;
        if (mbedtls_asn1_get_tag(&p, ext_end, &id_len, MBEDTLS_ASN1_OID) != 0)
            return false;
        unsigned char *id = p;
        p += id_len;
        if (mbedtls_asn1_get_bool(&p, ext_end, &critical) == MBEDTLS_ERR_ASN1_OUT_OF_DATA ||
            mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0)
            return false;
        if (id_len == oid_len && memcmp(id, oid, oid_len) == 0) {
            *out = p;
            *out_len = len;
            return true;
        }
        p = ext_end;
    }
    return false;
}

static bool san_present(unsigned char *p, unsigned char *end, const struct san *want)
{
    size_t len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
        return false;
    end = p + len;
    while (p < end) {
        int tag = *p++;
        if (mbedtls_asn1_get_len(&p, end, &len) != 0)
            return false;
        if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | want->tag) && len == want->len &&
            (want->tag == MBEDTLS_X509_SAN_DNS_NAME
                 ? strncasecmp((const char *)p, (const char *)want->data, len)
                 : memcmp(p, want->data, len)) == 0)
            return true;
        p += len;
    }
    return false;
}

bool pki_server_covers(const mbedtls_x509_crt *crt, const struct kcp_pki_params *p)
{
    struct san_list want;
    unsigned char *ext;
    size_t ext_len;
    if (!find_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                        MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), &ext, &ext_len))
        return false;
    server_sans(&want, p);
    for (size_t i = 0; i < want.n; i++)
        if (!san_present(ext, ext + ext_len, &want.e[i]))
            return false;
    return true;
}
