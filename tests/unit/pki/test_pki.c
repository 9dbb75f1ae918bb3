/* Unit tests of the pki module: files and modes, certificate contents, chains, renewal. */
#include <kcp/base.h>
#include <kcp/pki.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/base64.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>

/* 2026-01-01T00:00:00Z: the injected clock, so that no test depends on the system's. */
#define NOW INT64_C(1767225600)
#define DAY INT64_C(86400)

static const char *const pki_files[] = {"pki/ca.crt",     "pki/ca.key",    "pki/server.crt",
                                        "pki/server.key", "pki/admin.crt", "pki/admin.key",
                                        "kubeconfig"};
#define NFILES (sizeof(pki_files) / sizeof(pki_files[0]))

struct fixture {
    char dir[64];
    struct kcp_pki_params p;
};

static int setup_empty(void **state)
{
    struct fixture *f = kcp_calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kcp-test-pki-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->p.data_dir = f->dir;
    f->p.node_name = "node-1";
    f->p.listen_host = "192.168.1.10";
    f->p.listen_port = 6443;
    f->p.now = NOW;
    *state = f;
    return 0;
}

static int setup_init(void **state)
{
    if (setup_empty(state) != 0)
        return -1;
    struct fixture *f = *state;
    return kcp_pki_init(&f->p) == 0 ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static char *path_of(const struct fixture *f, const char *rel)
{
    return kcp_sprintf("%s/%s", f->dir, rel);
}

/* noinline: gcc 12 reports false dangling-pointer and uninitialised warnings once cmocka's
 * asserts are inlined here. */
__attribute__((noinline)) static char *slurp(const struct fixture *f, const char *rel, size_t *out_len)
{
    char *path = path_of(f, rel), *data = NULL;
    assert_int_equal(kcp_file_read(path, 1 << 20, &data, out_len), 0);
    free(path);
    return data;
}

__attribute__((noinline)) static void load_crt(mbedtls_x509_crt *crt, const struct fixture *f, const char *name)
{
    char *path = kcp_pki_cert_path(f->dir, name);
    mbedtls_x509_crt_init(crt);
    assert_int_equal(mbedtls_x509_crt_parse_file(crt, path), 0);
    free(path);
}

static int64_t epoch(const mbedtls_x509_time *t)
{
    struct tm tm = {0};
    tm.tm_year = t->year - 1900;
    tm.tm_mon = t->mon - 1;
    tm.tm_mday = t->day;
    tm.tm_hour = t->hour;
    tm.tm_min = t->min;
    tm.tm_sec = t->sec;
    return (int64_t)timegm(&tm);
}

static int64_t not_after(const struct fixture *f, const char *name)
{
    mbedtls_x509_crt crt;
    load_crt(&crt, f, name);
    int64_t t = epoch(&crt.valid_to);
    mbedtls_x509_crt_free(&crt);
    return t;
}

/* The value of a subject attribute (oid) in crt, or NULL. */
static char *subject_attr(const mbedtls_x509_crt *crt, const char *oid, size_t oid_len)
{
    for (const mbedtls_x509_name *n = &crt->subject; n; n = n->next)
        if (n->oid.len == oid_len && memcmp(n->oid.p, oid, oid_len) == 0)
            return kcp_strndup((const char *)n->val.p, n->val.len);
    return NULL;
}

/*
 * Whether the subjectAltName extension holds a GeneralName [tag] equal to data. Walks the raw
 * extensions independently of the module, since mbedTLS 2.28 does not list iPAddress names.
 */
static bool has_san(const mbedtls_x509_crt *crt, int tag, const void *data, size_t len)
{
    static const unsigned char san_oid[] = {0x06, 0x03, 0x55, 0x1d, 0x11};
    unsigned char *p = crt->v3_ext.p, *end = p + crt->v3_ext.len;
    size_t n;
    int critical;
    p = memmem(p, crt->v3_ext.len, san_oid, sizeof(san_oid));
    assert_non_null(p);
    p += sizeof(san_oid);
    mbedtls_asn1_get_bool(&p, end, &critical);
    assert_int_equal(mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_OCTET_STRING), 0);
    assert_int_equal(
        mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE), 0);
    end = p + n;
    while (p < end) {
        int t = *p++;
        assert_int_equal(mbedtls_asn1_get_len(&p, end, &n), 0);
        if (t == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | tag) && n == len && memcmp(p, data, n) == 0)
            return true;
        p += n;
    }
    return false;
}

static bool has_dns(const mbedtls_x509_crt *crt, const char *name)
{
    return has_san(crt, MBEDTLS_X509_SAN_DNS_NAME, name, strlen(name));
}

static bool has_ip(const mbedtls_x509_crt *crt, const char *ip)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, ip, b) == 1)
        return has_san(crt, MBEDTLS_X509_SAN_IP_ADDRESS, b, 4);
    assert_int_equal(inet_pton(AF_INET6, ip, b), 1);
    return has_san(crt, MBEDTLS_X509_SAN_IP_ADDRESS, b, 16);
}

static bool has_eku(const mbedtls_x509_crt *crt, const char *oid, size_t oid_len)
{
    for (const mbedtls_x509_sequence *s = &crt->ext_key_usage; s && s->buf.p; s = s->next)
        if (s->buf.len == oid_len && memcmp(s->buf.p, oid, oid_len) == 0)
            return true;
    return false;
}

static int ignore_time(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    (void)ctx;
    (void)crt;
    (void)depth;
    *flags &= ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE);
    return 0;
}

static void test_init_files_and_modes(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    char *pki = path_of(f, "pki");
    assert_true(kcp_pki_exists(f->dir));
    assert_int_equal(stat(pki, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    for (size_t i = 0; i < NFILES; i++) {
        char *path = path_of(f, pki_files[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        free(path);
    }
    free(pki);
}

static void test_init_twice_changes_nothing(void **state)
{
    struct fixture *f = *state;
    char *before[NFILES];
    size_t len[NFILES];
    for (size_t i = 0; i < NFILES; i++)
        before[i] = slurp(f, pki_files[i], &len[i]);
    f->p.node_name = "other-node";
    assert_int_equal(kcp_pki_init(&f->p), KCP_EEXIST);
    for (size_t i = 0; i < NFILES; i++) {
        size_t n;
        char *after = slurp(f, pki_files[i], &n);
        assert_int_equal(n, len[i]);
        assert_memory_equal(after, before[i], n);
        free(after);
        free(before[i]);
    }
}

static void test_init_rejects_bad_params(void **state)
{
    struct fixture *f = *state;
    f->p.node_name = "node_1,O=x";
    assert_int_equal(kcp_pki_init(&f->p), KCP_EINVAL);
    f->p.node_name = "node-1";
    f->p.listen_port = 0;
    assert_int_equal(kcp_pki_init(&f->p), KCP_EINVAL);
    assert_false(kcp_pki_exists(f->dir));
}

static void test_init_failure_removes_files(void **state)
{
    struct fixture *f = *state;
    /* A directory where the kubeconfig goes: the write fails after the leaves are on disk. */
    char *kubeconfig = path_of(f, "kubeconfig");
    assert_int_equal(mkdir(kubeconfig, 0700), 0);
    assert_int_equal(kcp_pki_init(&f->p), KCP_EIO);
    assert_false(kcp_pki_exists(f->dir));
    for (size_t i = 0; i + 1 < NFILES; i++) {
        char *path = path_of(f, pki_files[i]);
        assert_int_equal(access(path, F_OK), -1);
        free(path);
    }
    free(kubeconfig);
}

static void test_server_sans(void **state)
{
    struct fixture *f = *state;
    static const char *const dns[] = {"node-1",
                                      "localhost",
                                      "kubernetes",
                                      "kubernetes.default",
                                      "kubernetes.default.svc",
                                      "kubernetes.default.svc.cluster.local"};
    mbedtls_x509_crt crt;
    load_crt(&crt, f, "server");
    for (size_t i = 0; i < sizeof(dns) / sizeof(dns[0]); i++)
        assert_true(has_dns(&crt, dns[i]));
    assert_true(has_ip(&crt, "127.0.0.1"));
    assert_true(has_ip(&crt, "10.43.0.1"));
    assert_true(has_ip(&crt, "192.168.1.10"));
    assert_false(has_dns(&crt, "192.168.1.10"));
    /* mbedTLS' own parser agrees on the DNS names. */
    size_t n = 0;
    for (const mbedtls_x509_sequence *s = &crt.subject_alt_names; s && s->buf.p; s = s->next)
        if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME))
            n++;
    assert_int_equal(n, 6);
    char *cn = subject_attr(&crt, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN));
    assert_string_equal(cn, "node-1");
    assert_true(has_eku(&crt, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
    assert_false(crt.ca_istrue);
    free(cn);
    mbedtls_x509_crt_free(&crt);
}

/* kind: 'i' an IP SAN, 'd' a DNS SAN, 0 none (a wildcard address is no name to dial). */
static void check_listen_host(const char *host, char kind, const char *url)
{
    void *state = NULL;
    assert_int_equal(setup_empty(&state), 0);
    struct fixture *f = state;
    f->p.listen_host = host;
    assert_int_equal(kcp_pki_init(&f->p), 0);
    mbedtls_x509_crt crt;
    load_crt(&crt, f, "server");
    if (kind == 'i')
        assert_true(has_ip(&crt, host));
    else if (kind == 'd')
        assert_true(has_dns(&crt, host));
    else
        assert_false(has_ip(&crt, host));
    mbedtls_x509_crt_free(&crt);
    char *kubeconfig = slurp(f, "kubeconfig", NULL);
    char *line = kcp_sprintf("    server: %s\n", url);
    assert_non_null(strstr(kubeconfig, line));
    free(line);
    free(kubeconfig);
    teardown(&state);
}

static void test_listen_hosts(void **state)
{
    (void)state;
    check_listen_host("fd00::1", 'i', "https://[fd00::1]:6443");
    check_listen_host("api.example.com", 'd', "https://api.example.com:6443");
    check_listen_host("0.0.0.0", 0, "https://127.0.0.1:6443");
    check_listen_host("::", 0, "https://127.0.0.1:6443");
}

static void test_admin_subject(void **state)
{
    struct fixture *f = *state;
    mbedtls_x509_crt crt;
    load_crt(&crt, f, "admin");
    char *cn = subject_attr(&crt, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN));
    char *o = subject_attr(&crt, MBEDTLS_OID_AT_ORGANIZATION,
                           MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORGANIZATION));
    assert_string_equal(cn, "kcp-admin");
    assert_string_equal(o, "system:masters");
    assert_true(has_eku(&crt, MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)));
    assert_false(has_eku(&crt, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
    free(cn);
    free(o);
    mbedtls_x509_crt_free(&crt);
}

static void test_chain_and_serials(void **state)
{
    struct fixture *f = *state;
    static const char *const leaves[] = {"server", "admin", "peer"};
    mbedtls_x509_crt ca;
    load_crt(&ca, f, "ca");
    assert_true(ca.ca_istrue);
    assert_int_equal(ca.version, 3);
    assert_true(mbedtls_x509_crt_check_key_usage(&ca, MBEDTLS_X509_KU_KEY_CERT_SIGN) == 0);
    assert_int_equal(epoch(&ca.valid_to), NOW + KCP_PKI_CA_DAYS * DAY);
    for (size_t i = 0; i < 3; i++) {
        mbedtls_x509_crt leaf;
        uint32_t flags = 0;
        load_crt(&leaf, f, leaves[i]);
        assert_int_equal(mbedtls_x509_crt_verify(&leaf, &ca, NULL, NULL, &flags, ignore_time, NULL),
                         0);
        assert_int_equal(flags, 0);
        /* Go pairs a certificate with its issuer by comparing these bytes. */
        assert_int_equal(leaf.issuer_raw.len, ca.subject_raw.len);
        assert_memory_equal(leaf.issuer_raw.p, ca.subject_raw.p, ca.subject_raw.len);
        assert_int_equal(leaf.version, 3);
        assert_int_equal(leaf.sig_md, MBEDTLS_MD_SHA256);
        assert_int_equal(leaf.serial.len, 16);
        assert_int_equal(leaf.serial.p[0] & 0x80, 0);
        assert_int_equal(epoch(&leaf.valid_from), NOW - 3600);
        assert_int_equal(epoch(&leaf.valid_to), NOW + KCP_PKI_LEAF_DAYS * DAY);
        mbedtls_x509_crt_free(&leaf);
    }
    mbedtls_x509_crt_free(&ca);
}

static void test_kubeconfig(void **state)
{
    struct fixture *f = *state;
    char *kubeconfig = slurp(f, "kubeconfig", NULL);
    static const char *const lines[] = {"apiVersion: v1\n",
                                        "kind: Config\n",
                                        "current-context: kcp\n",
                                        "    cluster: kcp\n",
                                        "    user: kcp\n",
                                        "- name: kcp\n",
                                        "    server: https://192.168.1.10:6443\n"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        assert_non_null(strstr(kubeconfig, lines[i]));
    /* Each *-data field decodes to the file it embeds. */
    static const struct {
        const char *field, *file;
    } embedded[] = {{"certificate-authority-data: ", "pki/ca.crt"},
                {"client-certificate-data: ", "pki/admin.crt"},
                {"client-key-data: ", "pki/admin.key"}};
    for (size_t i = 0; i < sizeof(embedded) / sizeof(embedded[0]); i++) {
        char *at = strstr(kubeconfig, embedded[i].field);
        assert_non_null(at);
        at += strlen(embedded[i].field);
        size_t b64_len = strcspn(at, "\n"), n = 0, want_len;
        unsigned char decoded[4096];
        assert_int_equal(
            mbedtls_base64_decode(decoded, sizeof(decoded), &n, (const unsigned char *)at, b64_len),
            0);
        char *want = slurp(f, embedded[i].file, &want_len);
        assert_int_equal(n, want_len);
        assert_memory_equal(decoded, want, n);
        free(want);
    }
    assert_non_null(strstr(kubeconfig, "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0t")); /* SEC1 */
    free(kubeconfig);
}

static void test_renew_when_due(void **state)
{
    struct fixture *f = *state;
    int renewed = -1;
    int64_t server_before = not_after(f, "server"), admin_before = not_after(f, "admin");
    char *ca_before = slurp(f, "pki/ca.crt", NULL),
         *kubeconfig_before = slurp(f, "kubeconfig", NULL);
    f->p.now = NOW + 300 * DAY;
    assert_int_equal(kcp_pki_renew(&f->p, &renewed), 0);
    assert_int_equal(renewed, 3); /* server, admin and peer */
    assert_true(not_after(f, "server") > server_before);
    assert_true(not_after(f, "admin") > admin_before);
    assert_int_equal(not_after(f, "server"), f->p.now + KCP_PKI_LEAF_DAYS * DAY);
    char *ca_after = slurp(f, "pki/ca.crt", NULL), *kubeconfig_after = slurp(f, "kubeconfig", NULL);
    assert_string_equal(ca_after, ca_before);
    assert_string_not_equal(kubeconfig_after, kubeconfig_before);
    /* The renewed pair still chains to the CA. */
    mbedtls_x509_crt ca, leaf;
    uint32_t flags = 0;
    load_crt(&ca, f, "ca");
    load_crt(&leaf, f, "admin");
    assert_int_equal(mbedtls_x509_crt_verify(&leaf, &ca, NULL, NULL, &flags, ignore_time, NULL), 0);
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&leaf);
    /* And a second pass finds nothing to do. */
    assert_int_equal(kcp_pki_renew(&f->p, &renewed), 0);
    assert_int_equal(renewed, 0);
    free(ca_before);
    free(ca_after);
    free(kubeconfig_before);
    free(kubeconfig_after);
}

static void test_renew_not_due(void **state)
{
    struct fixture *f = *state;
    int renewed = -1;
    char *before = slurp(f, "pki/server.crt", NULL);
    f->p.now = NOW + 10 * DAY;
    assert_int_equal(kcp_pki_renew(&f->p, &renewed), 0);
    assert_int_equal(renewed, 0);
    char *after = slurp(f, "pki/server.crt", NULL);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

static void test_renew_on_new_names(void **state)
{
    struct fixture *f = *state;
    int renewed = -1;
    mbedtls_x509_crt crt;
    f->p.node_name = "node-2";
    assert_int_equal(kcp_pki_renew(&f->p, &renewed), 0);
    assert_int_equal(renewed, 1);
    load_crt(&crt, f, "server");
    assert_true(has_dns(&crt, "node-2"));
    mbedtls_x509_crt_free(&crt);

    f->p.listen_host = "10.0.0.7";
    assert_int_equal(kcp_pki_renew(&f->p, &renewed), 0);
    assert_int_equal(renewed, 1);
    load_crt(&crt, f, "server");
    assert_true(has_ip(&crt, "10.0.0.7"));
    assert_false(has_ip(&crt, "192.168.1.10"));
    mbedtls_x509_crt_free(&crt);
    char *kubeconfig = slurp(f, "kubeconfig", NULL);
    assert_non_null(strstr(kubeconfig, "server: https://10.0.0.7:6443\n"));
    free(kubeconfig);
}

static void test_renew_replaces_broken_leaf(void **state)
{
    struct fixture *f = *state;
    int renewed = -1;
    char *key = kcp_pki_key_path(f->dir, "admin");
    assert_int_equal(unlink(key), 0);
    assert_int_equal(kcp_pki_renew(&f->p, &renewed), 0);
    assert_int_equal(renewed, 1);
    assert_int_equal(access(key, F_OK), 0);
    /* A key that is not the certificate's (a crash between the two writes) is replaced too. */
    char *server_key = slurp(f, "pki/server.key", NULL);
    assert_int_equal(kcp_file_write_atomic(key, server_key, strlen(server_key), 0600), 0);
    assert_int_equal(kcp_pki_renew(&f->p, &renewed), 0);
    assert_int_equal(renewed, 1);
    free(server_key);
    free(key);
}

static void test_renew_without_ca(void **state)
{
    struct fixture *f = *state;
    int renewed = -1;
    assert_int_equal(kcp_pki_renew(&f->p, &renewed), KCP_ENOTFOUND);
    assert_int_equal(renewed, 0);
    int64_t left;
    assert_int_equal(kcp_pki_leaf_remaining(f->dir, NOW, &left), KCP_ENOTFOUND);
}

static void test_leaf_remaining(void **state)
{
    struct fixture *f = *state;
    int64_t left = 0;
    assert_int_equal(kcp_pki_leaf_remaining(f->dir, NOW, &left), 0);
    assert_int_equal(left, KCP_PKI_LEAF_DAYS * DAY);
    assert_int_equal(kcp_pki_leaf_remaining(f->dir, NOW + 400 * DAY, &left), 0);
    assert_true(left == -35 * DAY);
}

static void test_paths(void **state)
{
    (void)state;
    char *a = kcp_pki_cert_path("/d", "ca"), *b = kcp_pki_key_path("/d", "admin"),
         *c = kcp_pki_kubeconfig_path("/d");
    assert_string_equal(a, "/d/pki/ca.crt");
    assert_string_equal(b, "/d/pki/admin.key");
    assert_string_equal(c, "/d/kubeconfig");
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test_setup_teardown(test_init_files_and_modes, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_init_twice_changes_nothing, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_params, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_init_failure_removes_files, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_server_sans, setup_init, teardown),
        cmocka_unit_test(test_listen_hosts),
        cmocka_unit_test_setup_teardown(test_admin_subject, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_chain_and_serials, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_renew_when_due, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_renew_not_due, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_renew_on_new_names, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_renew_replaces_broken_leaf, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_renew_without_ca, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_leaf_remaining, setup_init, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
