/* kcp pki: the cluster CA, server and client certificates, renewal, and the admin kubeconfig. */
#ifndef KCP_PKI_H
#define KCP_PKI_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Layout under DIR/pki (every file mode 0600, the directory 0700):
 *   ca.crt ca.key            ECDSA P-256 cluster CA, 10 years
 *   server.crt server.key    serving certificate, 1 year, SANs of struct kcp_pki_params
 *   admin.crt admin.key      client certificate CN=kcp-admin, O=system:masters, 1 year
 * DIR/kubeconfig: cluster, user and context all named "kcp", certificates embedded as base64
 * data so the file works when copied elsewhere.
 */
struct kcp_pki_params {
    const char *data_dir;  /* DIR */
    const char *node_name; /* DNS SAN and CN of the server certificate */
    const char *listen_host; /* numeric IP (or name) of --listen; becomes an IP or DNS SAN */
    int listen_port;       /* written into the kubeconfig's server URL */
    int64_t now;           /* wall-clock seconds (from the injected clock) */
};

/* Leaf certificates live this long and are renewed when less than the threshold remains. */
#define KCP_PKI_LEAF_DAYS 365
#define KCP_PKI_RENEW_DAYS 90
#define KCP_PKI_CA_DAYS 3650

/* True when DIR/pki/ca.crt exists: the data dir holds a cluster. */
bool kcp_pki_exists(const char *data_dir);

/*
 * Creates the CA, server and admin certificates and the kubeconfig in an empty data dir.
 * Returns KCP_EEXIST if a CA is already there (nothing is changed), KCP_EIO/KCP_ECRYPTO on
 * failure (partial files are removed).
 */
int kcp_pki_init(const struct kcp_pki_params *p);

/*
 * Renews every leaf certificate with less than KCP_PKI_RENEW_DAYS left at p->now (or one
 * whose SANs no longer cover p's node name and listen host), signing with the existing CA.
 * Sets *out_renewed to the number of certificates rewritten. The kubeconfig is rewritten
 * when the admin certificate is. Missing CA: KCP_ENOTFOUND.
 */
int kcp_pki_renew(const struct kcp_pki_params *p, int *out_renewed);

/* Seconds until the earliest leaf certificate expires (negative if already expired). */
int kcp_pki_leaf_remaining(const char *data_dir, int64_t now, int64_t *out_seconds);

/* Paths of the files above; the caller frees. name is "ca", "server" or "admin". */
char *kcp_pki_cert_path(const char *data_dir, const char *name);
char *kcp_pki_key_path(const char *data_dir, const char *name);
char *kcp_pki_kubeconfig_path(const char *data_dir);

#endif
