/* kcp cluster: Raft on the daemon's loop — durable log, peer transport, join, members. */
#ifndef KCP_CLUSTER_H
#define KCP_CLUSTER_H

#include <kcp/http.h>
#include <kcp/loop.h>
#include <kcp/store.h>

#include <stdbool.h>
#include <stdint.h>

/*
 * Every server runs Raft, a lone one too: the store's proposer becomes the Raft log, so a write
 * takes one path everywhere (docs/RAFT.md, "In the daemon"). The cluster installs itself as the
 * store's proposer and registers the /raft/v1/ routes on the HTTP server:
 *   POST /raft/v1/msgs      Raft messages from a peer (client certificate of group kcp:peers)
 *   POST /raft/v1/propose   a follower's write forwarded to the leader (kcp:peers)
 *   GET  /raft/v1/ca        the cluster CA certificate (anonymous: a joiner pins it by hash)
 *   POST /raft/v1/join      a new server asks to join (anonymous; proves the token's secret)
 *   GET  /raft/v1/members   NAME ADDRESS ROLE lines (any authenticated client)
 *   POST /raft/v1/members/remove?name=NAME   removes a member (system:masters; leader only)
 */
struct kcp_cluster;

struct kcp_cluster_config {
    struct kcp_loop *loop;        /* borrowed */
    struct kcp_store *store;      /* borrowed; must outlive the cluster */
    struct kcp_http_server *http; /* borrowed; routes added by open, before it starts */
    const char *data_dir;         /* Raft state lives in DIR/raft */
    const char *node_name;
    const char *address;  /* HOST:PORT the other servers dial: the --listen address */
    uint64_t join_id;     /* non-zero: this server was admitted by a leader under this id */
    bool force_new_cluster; /* make this server the only member, keeping its data */
    uint64_t snapshot_entries; /* a snapshot every this many applied entries (0: 10,000) */
    uint32_t election_ms; /* 0: the default (1000 ms) */
    uint32_t heartbeat_ms;
};

/*
 * Opens DIR/raft and starts the core. A data dir without Raft state founds a one-member
 * cluster (keeping what the store holds), unless join_id is set: then the server waits for the
 * leader to send it the log. KCP_EIO on a disk error.
 */
int kcp_cluster_open(struct kcp_cluster **out, const struct kcp_cluster_config *cfg);
/*
 * Hands leadership to another voter when this server leads (so that a SIGTERM costs no
 * election timeout), stops the transport and the log, then calls cb. Run the loop until then.
 */
void kcp_cluster_close(struct kcp_cluster *c, void (*cb)(void *data), void *data);

/*
 * The first step of a shutdown: a leader hands leadership to the most up-to-date voter (the
 * cluster then needs no election timeout). Does nothing on a follower or a lone server.
 */
void kcp_cluster_step_down(struct kcp_cluster *c);

/* A leader is known and this server's store has applied what it committed when learnt. */
bool kcp_cluster_ready(const struct kcp_cluster *c);
bool kcp_cluster_is_leader(const struct kcp_cluster *c);

/*
 * Linearizable read barrier (ReadIndex, §6.4): cb(data, 0) once this server's store reflects
 * every write committed before the call; KCP_EUNAVAILABLE (no leader) or KCP_ETIMEOUT otherwise.
 * cb never fires synchronously.
 */
typedef void (*kcp_cluster_barrier_cb)(void *data, int status);
void kcp_cluster_barrier(struct kcp_cluster *c, kcp_cluster_barrier_cb cb, void *data);

/*
 * The barrier before a write, which reads current state and then proposes an entry. On a
 * leader whose term's first entry is committed it crosses no network: once this server's store
 * reflects the commit index of the call, cb(data, KCP_CLUSTER_BARRIER_LOCAL). That state holds
 * every write acknowledged before the call unless a newer leader exists that this one has not
 * heard of; an entry proposed from it is safe even then (it never commits, and every entry's
 * preconditions are decided at apply), but an answer derived from the state alone is not:
 * confirm it with kcp_cluster_barrier first. Elsewhere, kcp_cluster_barrier (status 0).
 */
#define KCP_CLUSTER_BARRIER_LOCAL 1
void kcp_cluster_write_barrier(struct kcp_cluster *c, kcp_cluster_barrier_cb cb, void *data);

/* Leadership changed: cb(data, true) when this server became leader, false when it stopped. */
typedef void (*kcp_cluster_leader_cb)(void *data, bool leader);
void kcp_cluster_on_leadership(struct kcp_cluster *c, kcp_cluster_leader_cb cb, void *data);

struct kcp_cluster_stats {
    uint64_t id, term, leader_id;
    bool leader;
    uint64_t commit, applied, last_index, first_index, snapshot_index;
    uint64_t members, voters;
    uint64_t proposals_waiting; /* client writes not yet applied */
    uint64_t log_fsyncs, log_bytes_written, log_batches;
    bool failed;
};
void kcp_cluster_stats(const struct kcp_cluster *c, struct kcp_cluster_stats *out);

/* The join token's secret file under DIR/pki (created by kcp_cluster_token), and the token. */
#define KCP_CLUSTER_TOKEN_PREFIX "kcp1."
/*
 * Prints into *out a new string "kcp1.<sha256 of ca.crt, hex>.<secret>", creating the secret
 * (32 random bytes, hex, file mode 0600) on first use. KCP_ENOTFOUND without a cluster.
 */
int kcp_cluster_token(const char *data_dir, char **out);

#endif
