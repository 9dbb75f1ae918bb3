/* The pki file layout of a data dir: paths, and reading, writing and removing PEM pairs. */
#include "pki_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

/* A P-256 key or certificate is a kilobyte or two; anything much larger is not ours. */
#define PKI_FILE_MAX (64 * 1024)

char *pki_dir_path(const char *data_dir)
{
    return kcp_sprintf("%s/pki", data_dir);
}

char *kcp_pki_cert_path(const char *data_dir, const char *name)
{
    return kcp_sprintf("%s/pki/%s.crt", data_dir, name);
}

char *kcp_pki_key_path(const char *data_dir, const char *name)
{
    return kcp_sprintf("%s/pki/%s.key", data_dir, name);
}

char *kcp_pki_kubeconfig_path(const char *data_dir)
{
    return kcp_sprintf("%s/kubeconfig", data_dir);
}

bool kcp_pki_exists(const char *data_dir)
{
    struct stat st;
    char *path = kcp_pki_cert_path(data_dir, "ca");
    bool exists = stat(path, &st) == 0;
    free(path);
    return exists;
}

void pki_pem_free(struct pki_pem *pem)
{
    if (pem->key) {
        mbedtls_platform_zeroize(pem->key, strlen(pem->key));
        free(pem->key);
    }
    free(pem->crt);
    pem->crt = NULL;
    pem->key = NULL;
}

static int read_text(const char *path, char **out)
{
    int rc = kcp_file_read(path, PKI_FILE_MAX, out, NULL);
    return rc == KCP_ETOOLARGE ? KCP_ECRYPTO : rc;
}

int pki_pem_read(struct pki_pem *out, const char *data_dir, const char *name, bool with_key)
{
    int rc = 0;
    struct pki_pem pem = {NULL, NULL};
    char *crt_path = kcp_pki_cert_path(data_dir, name);
    char *key_path = kcp_pki_key_path(data_dir, name);
    if ((rc = read_text(crt_path, &pem.crt)) != 0)
        goto done;
    if (with_key && (rc = read_text(key_path, &pem.key)) != 0)
        goto done;
    *out = pem;
    pem.crt = NULL;
    pem.key = NULL;
done:
    pki_pem_free(&pem);
    free(crt_path);
    free(key_path);
    return rc;
}

int pki_pem_write(const struct pki_pem *pem, const char *data_dir, const char *name)
{
    int rc = 0;
    char *crt_path = kcp_pki_cert_path(data_dir, name);
    char *key_path = kcp_pki_key_path(data_dir, name);
    /* Key first: a crash in between leaves a pair that does not match, which renewal detects
     * and replaces, never a new certificate whose key is lost. */
    if ((rc = kcp_file_write_atomic(key_path, pem->key, strlen(pem->key), 0600)) != 0)
        goto done;
    rc = kcp_file_write_atomic(crt_path, pem->crt, strlen(pem->crt), 0600);
done:
    free(crt_path);
    free(key_path);
    return rc;
}

void pki_pem_remove(const char *data_dir, const char *name)
{
    char *crt_path = kcp_pki_cert_path(data_dir, name);
    char *key_path = kcp_pki_key_path(data_dir, name);
    unlink(crt_path);
    unlink(key_path);
    free(crt_path);
    free(key_path);
}
