/* Inside the pki module: randomness, issuing, PEM files and the kubeconfig writer. */
#ifndef KCP_PKI_INTERNAL_H
#define KCP_PKI_INTERNAL_H

#include <kcp/base.h>
#include <kcp/pki.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

/* Key material and serials come from the system entropy source through a CTR_DRBG. */
struct pki_rng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};
/* Seeds rng; pki_rng_free must be called even when this fails (KCP_ECRYPTO). */
int pki_rng_init(struct pki_rng *rng);
void pki_rng_free(struct pki_rng *rng);

/* A certificate and its private key as NUL-terminated PEM text, owned; free wipes the key. */
struct pki_pem {
    char *crt;
    char *key;
};
void pki_pem_free(struct pki_pem *pem);

/* A parsed certificate and key: the CA when signing. */
struct pki_pair {
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
};
void pki_pair_init(struct pki_pair *pair);
void pki_pair_free(struct pki_pair *pair);
/* Parses pem (pem->key may be NULL: certificate only). A key that does not belong to the
 * certificate is an error like any unparsable input: KCP_ECRYPTO. */
int pki_pair_parse(struct pki_pair *out, const struct pki_pem *pem);

/* Which certificate to issue; each kind has a fixed profile (subject, usages, lifetime). */
enum pki_kind { PKI_CA, PKI_SERVER, PKI_ADMIN, PKI_PEER };

/* The validated parameters: KCP_EINVAL unless the node name and listen host are DNS names or
 * (the host) numeric addresses, and the port is a port. */
int pki_params_check(const struct kcp_pki_params *p);

/*
 * Creates a new P-256 key and a certificate of kind for it, valid from p->now minus an hour of
 * clock skew. ca signs it; ca is NULL only for PKI_CA, which signs itself. out is filled only
 * on success (caller frees with pki_pem_free). Errors: KCP_ECRYPTO, KCP_EINVAL (clock).
 */
int pki_issue(struct pki_pem *out, struct pki_rng *rng, enum pki_kind kind,
              const struct kcp_pki_params *p, struct pki_pair *ca);

/* True when the server certificate names everything p asks of it (see pki_issue). */
bool pki_server_covers(const mbedtls_x509_crt *crt, const struct kcp_pki_params *p);

/* A certificate's notAfter in seconds since the epoch. */
int64_t pki_not_after(const mbedtls_x509_crt *crt);

/* DIR/pki, which holds every key; the caller frees. */
char *pki_dir_path(const char *data_dir);
/* Reads DIR/pki/NAME.crt and, if with_key, NAME.key. KCP_ENOTFOUND when either is missing,
 * KCP_EIO, KCP_ECRYPTO when a file is too large to be ours. out is filled only on success. */
int pki_pem_read(struct pki_pem *out, const char *data_dir, const char *name, bool with_key);
/* Writes NAME.key then NAME.crt, mode 0600, each atomically. */
int pki_pem_write(const struct pki_pem *pem, const char *data_dir, const char *name);
/* Removes NAME.crt and NAME.key if present. */
void pki_pem_remove(const char *data_dir, const char *name);

/* Writes DIR/kubeconfig (mode 0600) for the admin pair, trusting ca_crt (PEM). */
int pki_kubeconfig_write(const struct kcp_pki_params *p, const char *ca_crt,
                         const struct pki_pem *admin);

#endif
