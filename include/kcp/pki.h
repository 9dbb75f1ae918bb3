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
 *   peer.crt peer.key        client certificate CN=kcp-peer:NODE, O=kcp:peers, 1 year: how a
 *                            server proves itself to the other servers of its Raft group
 * DIR/kubeconfig: cluster, user and context all named "kcp", certificates embedded as base64
 * data so the file works when copied elsewhere.
 */
struct kcp_pki_params {
    const char *data_dir;  /* DIR */
    const char *node_name; /* DNS SAN and CN of the server certificate */
    /* --listen's host, a numeric IP (no brackets) or a name: an IP or DNS SAN. NULL, "",
     * 0.0.0.0 and :: add none, and the kubeconfig then dials 127.0.0.1. */
    const char *listen_host;
    int listen_port; /* written into the kubeconfig's server URL */
    int64_t now;     /* wall-clock seconds (from the injected clock) */
};

/* The peer certificate's group and common-name prefix; only they may speak Raft. */
#define KCP_PKI_PEER_GROUP "kcp:peers"
#define KCP_PKI_PEER_PREFIX "kcp-peer:"
/* Leaf certificates live this long and are renewed when less than the threshold remains. */
#define KCP_PKI_LEAF_DAYS 365
#define KCP_PKI_RENEW_DAYS 90
#define KCP_PKI_CA_DAYS 3650

/* True when DIR/pki/ca.crt exists: the data dir holds a cluster. */
bool kcp_pki_exists(const char *data_dir);

/*
 * Creates the CA, server and admin certificates and the kubeconfig in an empty data dir.
 * Returns KCP_EEXIST if a CA is already there (nothing is changed), KCP_EINVAL for a node name
 * or listen host that is not a DNS name (or, the host, a numeric address) or a bad port,
 * KCP_EIO/KCP_ECRYPTO on failure (partial files are removed). ca.crt is written last: after
 * a crash part-way, kcp_pki_exists is still false and init can run again.
 */
int kcp_pki_init(const struct kcp_pki_params *p);

/*
 * Renews every leaf certificate with less than KCP_PKI_RENEW_DAYS left at p->now (or one
 * whose SANs no longer cover p's node name and listen host, or that is missing, unreadable,
 * not its key's or not signed by the CA), signing with the existing CA; each gets a new key.
 * Sets *out_renewed to the number of certificates rewritten, also when an error stops it
 * part-way. The kubeconfig is rewritten whenever a certificate is: it embeds the admin pair
 * and names the server. Missing CA: KCP_ENOTFOUND; bad params: KCP_EINVAL.
 */
int kcp_pki_renew(const struct kcp_pki_params *p, int *out_renewed);

/* Seconds until the earliest leaf certificate expires (negative if already expired).
 * KCP_ENOTFOUND if a leaf certificate is missing, KCP_ECRYPTO if one is unreadable. */
int kcp_pki_leaf_remaining(const char *data_dir, int64_t now, int64_t *out_seconds);

/* Paths of the files above; the caller frees. name is "ca", "server", "admin" or "peer". */
char *kcp_pki_cert_path(const char *data_dir, const char *name);
char *kcp_pki_key_path(const char *data_dir, const char *name);
char *kcp_pki_kubeconfig_path(const char *data_dir);

#endif
