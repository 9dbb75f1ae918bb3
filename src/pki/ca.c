/* The cluster CA and the life of the certificates it signs: creation, renewal, time left. */
#include "pki_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define PKI_DAY 86400

static const struct {
    enum pki_kind kind;
    const char *name;
} leaves[] = {{PKI_SERVER, "server"}, {PKI_ADMIN, "admin"}, {PKI_PEER, "peer"}};
enum { LEAF_SERVER, LEAF_ADMIN, LEAF_PEER, LEAF_COUNT };

static void remove_all(const char *data_dir)
{
    char *kubeconfig = kcp_pki_kubeconfig_path(data_dir);
    char *dir = pki_dir_path(data_dir);
    unlink(kubeconfig);
    for (int i = 0; i < LEAF_COUNT; i++)
        pki_pem_remove(data_dir, leaves[i].name);
    pki_pem_remove(data_dir, "ca");
    rmdir(dir); /* only if it is now empty */
    free(kubeconfig);
    free(dir);
}

int kcp_pki_init(const struct kcp_pki_params *p)
{
    int rc = 0;
    bool writing = false;
    char *dir = NULL;
    struct pki_rng rng;
    struct pki_pem ca_pem = {NULL, NULL};
    struct pki_pem pems[LEAF_COUNT] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL}};
    struct pki_pair ca;

    if ((rc = pki_params_check(p)) != 0)
        return rc;
    if (kcp_pki_exists(p->data_dir))
        return KCP_EEXIST;
    pki_pair_init(&ca);
    dir = pki_dir_path(p->data_dir);
    /* Everything is made in memory first: a failure here leaves no trace on disk. */
    if ((rc = pki_rng_init(&rng)) != 0 || (rc = pki_issue(&ca_pem, &rng, PKI_CA, p, NULL)) != 0 ||
        (rc = pki_pair_parse(&ca, &ca_pem)) != 0)
        goto done;
    for (int i = 0; i < LEAF_COUNT; i++)
        if ((rc = pki_issue(&pems[i], &rng, leaves[i].kind, p, &ca)) != 0)
            goto done;

    writing = true;
    /* chmod as well: mkdir honours the umask, and the directory may already exist. */
    if (kcp_mkdir_p(dir, 0700) != 0 || chmod(dir, 0700) != 0) {
        rc = KCP_EIO;
        goto done;
    }
    for (int i = 0; i < LEAF_COUNT; i++)
        if ((rc = pki_pem_write(&pems[i], p->data_dir, leaves[i].name)) != 0)
            goto done;
    if ((rc = pki_kubeconfig_write(p, ca_pem.crt, &pems[LEAF_ADMIN])) != 0)
        goto done;
    /* ca.crt last: until it exists the data dir holds no cluster (kcp_pki_exists), so an init
     * interrupted by a crash simply runs again. */
    if ((rc = pki_pem_write(&ca_pem, p->data_dir, "ca")) != 0)
        goto done;
    kcp_log(KCP_LOG_INFO, "pki", "created CA, server certificate for %s and admin kubeconfig in %s",
            p->node_name, p->data_dir);
done:
    if (rc && writing)
        remove_all(p->data_dir);
    pki_rng_free(&rng);
    pki_pem_free(&ca_pem);
    for (int i = 0; i < LEAF_COUNT; i++)
        pki_pem_free(&pems[i]);
    pki_pair_free(&ca);
    free(dir);
    return rc;
}

static int ignore_time(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    /* Validity is judged against the injected clock, never against the system's. */
    (void)ctx;
    (void)crt;
    (void)depth;
    *flags &= ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE);
    return 0;
}

static bool signed_by(struct pki_pair *leaf, struct pki_pair *ca)
{
    uint32_t flags = 0;
    int rc = mbedtls_x509_crt_verify(&leaf->crt, &ca->crt, NULL, NULL, &flags, ignore_time, NULL);
    return rc == 0;
}

/*
 * Renews leaf i when it is missing, unreadable, not the CA's, expiring, or (the server's) no
 * longer names the node. *pem holds the pair in force afterwards.
 */
static int renew_leaf(struct pki_pem *pem, bool *out_renewed, int i, struct pki_rng *rng,
                      const struct kcp_pki_params *p, struct pki_pair *ca)
{
    int rc = 0;
    char why[64] = "";
    int64_t left;
    struct pki_pair leaf;
    pki_pair_init(&leaf);
    *out_renewed = false;

    rc = pki_pem_read(pem, p->data_dir, leaves[i].name, true);
    if (rc == KCP_ENOTFOUND)
        snprintf(why, sizeof(why), "missing");
    else if (rc == KCP_ECRYPTO)
        snprintf(why, sizeof(why), "unreadable");
    else if (rc)
        goto done;
    else if (pki_pair_parse(&leaf, pem) != 0)
        snprintf(why, sizeof(why), "unreadable, or not the key's");
    else if (!signed_by(&leaf, ca))
        snprintf(why, sizeof(why), "not signed by the CA");
    else if ((left = pki_not_after(&leaf.crt) - p->now) < (int64_t)KCP_PKI_RENEW_DAYS * PKI_DAY)
        snprintf(why, sizeof(why), "%lld days left", (long long)(left / PKI_DAY));
    else if (leaves[i].kind == PKI_SERVER && !pki_server_covers(&leaf.crt, p))
        snprintf(why, sizeof(why), "node name or listen address changed");
    rc = 0;
    if (!why[0])
        goto done;

    pki_pem_free(pem);
    if ((rc = pki_issue(pem, rng, leaves[i].kind, p, ca)) != 0 ||
        (rc = pki_pem_write(pem, p->data_dir, leaves[i].name)) != 0)
        goto done;
    kcp_log(KCP_LOG_INFO, "pki", "renewed %s certificate (%s) for %d days", leaves[i].name, why,
            KCP_PKI_LEAF_DAYS);
    *out_renewed = true;
done:
    pki_pair_free(&leaf);
    return rc;
}

int kcp_pki_renew(const struct kcp_pki_params *p, int *out_renewed)
{
    int rc = 0, renewed = 0;
    int64_t ca_left;
    struct pki_rng rng;
    struct pki_pem ca_pem = {NULL, NULL};
    struct pki_pem pems[LEAF_COUNT] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL}};
    struct pki_pair ca;

    *out_renewed = 0;
    if ((rc = pki_params_check(p)) != 0)
        return rc;
    pki_pair_init(&ca);
    if ((rc = pki_rng_init(&rng)) != 0 ||
        (rc = pki_pem_read(&ca_pem, p->data_dir, "ca", true)) != 0 ||
        (rc = pki_pair_parse(&ca, &ca_pem)) != 0)
        goto done;
    ca_left = pki_not_after(&ca.crt) - p->now;
    if (ca_left < (int64_t)KCP_PKI_LEAF_DAYS * PKI_DAY)
        kcp_log(KCP_LOG_WARN, "pki", "CA expires in %lld days; certificates it signs end with it",
                (long long)(ca_left / PKI_DAY));
    for (int i = 0; i < LEAF_COUNT; i++) {
        bool r;
        if ((rc = renew_leaf(&pems[i], &r, i, &rng, p, &ca)) != 0)
            goto done;
        renewed += r;
    }
    /* The kubeconfig embeds the admin pair and names the server: any change rewrites it. */
    if (renewed)
        rc = pki_kubeconfig_write(p, ca_pem.crt, &pems[LEAF_ADMIN]);
done:
    *out_renewed = renewed;
    pki_rng_free(&rng);
    pki_pem_free(&ca_pem);
    for (int i = 0; i < LEAF_COUNT; i++)
        pki_pem_free(&pems[i]);
    pki_pair_free(&ca);
    return rc;
}

int kcp_pki_leaf_remaining(const char *data_dir, int64_t now, int64_t *out_seconds)
{
    int rc = 0;
    int64_t least = INT64_MAX;
    for (int i = 0; i < LEAF_COUNT && rc == 0; i++) {
        struct pki_pem pem = {NULL, NULL};
        struct pki_pair leaf;
        pki_pair_init(&leaf);
        if ((rc = pki_pem_read(&pem, data_dir, leaves[i].name, false)) == 0 &&
            (rc = pki_pair_parse(&leaf, &pem)) == 0 && pki_not_after(&leaf.crt) - now < least)
            least = pki_not_after(&leaf.crt) - now;
        pki_pem_free(&pem);
        pki_pair_free(&leaf);
    }
    if (rc == 0)
        *out_seconds = least;
    return rc;
}
