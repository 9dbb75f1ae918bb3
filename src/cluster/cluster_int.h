/* Internal to the cluster module: the Raft driver, its proposals and reads, peers, routes. */
#ifndef KCP_CLUSTER_INT_H
#define KCP_CLUSTER_INT_H

#include <kcp/base.h>
#include <kcp/cluster.h>
#include <kcp/net.h>
#include <kcp/raft.h>

#include <uv.h>

#include "logstore.h"

/* A client's write waits this long for its entry to be applied, then gets 504 Timeout. */
#define CLUSTER_PROPOSE_TIMEOUT_MS 10000
/* A linearizable read waits this long for a leader's answer. */
#define CLUSTER_READ_TIMEOUT_MS 5000
/* Housekeeping: retries of queued work, deadlines, promotions. */
#define CLUSTER_TICK_MS 50
/* A forwarded write and a batch of messages are one HTTP request each; bodies stay below the
 * HTTP server's 3 MiB limit. */
#define CLUSTER_MAX_POST_BYTES (2u << 20)
/* A peer connection with this much unsent is not written to: Raft tolerates the loss. */
#define CLUSTER_MAX_PEER_BACKLOG (8u << 20)
#define CLUSTER_REDIAL_MS 300
/* A snapshot is taken, and the log compacted, every this many applied entries (default). */
#define CLUSTER_SNAPSHOT_EVERY 10000
/* Client writes waiting to be applied (the store's own queue is behind this one). */
#define CLUSTER_MAX_PROPOSALS 10000
/*
 * The Raft log is the durable copy of every applied entry, so the store publishes entries at
 * once and commits LMDB (fully synced) only this often (kcp_store_set_deferred); a restart
 * applies the entries after its last commit again from the log.
 */
#define CLUSTER_STORE_SYNC_MS 1000

/*
 * Payload of a Raft NORMAL entry: version byte 1, the proposing server's id and its sequence
 * number (both little-endian u64), then the encoded store entry. The tag lets the proposer find
 * the client waiting for an entry however it reached the log (directly or forwarded).
 */
#define CLUSTER_TAG_LEN 17

/* A client's write waiting to be applied. */
struct cl_prop {
    uint64_t seq;
    struct kcp_store_req *req;
    uint64_t deadline_ms;
    void *payload; /* not yet handed to a leader (no leader known); else NULL */
    size_t len;
    bool forwarded; /* sent to the leader: a lost connection fails it */
    uint64_t via;   /* the peer it was forwarded to */
    struct cl_prop *next;
};

/* A linearizable read waiting for ReadIndex and then for the store. */
struct cl_read {
    uint64_t token;
    kcp_cluster_barrier_cb cb;
    void *data;
    uint64_t deadline_ms;
    bool asked;     /* READ stepped and accepted; waiting for its result */
    bool has_index; /* the leader answered: wait until applied >= index */
    bool local;     /* a write barrier answered from the leader's own commit index, */
    uint64_t term;  /* ... in this term */
    uint64_t index;
    uint64_t need_rev; /* store revision to wait for, once applied >= index */
    int status;        /* set when done; reported from the kick */
    bool done;
    struct cl_read *next;
};

/* An outgoing HTTP request on a peer connection, answered in order. */
enum cl_post_kind { CL_POST_MSGS, CL_POST_PROPOSE };
struct cl_post {
    enum cl_post_kind kind;
    uint64_t seq; /* PROPOSE */
    struct cl_post *next;
};

struct cl_peer {
    struct kcp_cluster *c;
    uint64_t id;
    char name[128];
    char addr[128];
    struct kcp_conn *conn; /* NULL: not connected */
    bool seen;             /* still in the configuration (roster sync) */
    uint64_t next_dial_ms;
    struct kcp_buf out;  /* frames of the next POST /raft/v1/msgs */
    struct kcp_buf in;   /* response bytes not yet parsed */
    struct cl_post *posts, **posts_tail;
    struct cl_peer *next;
};

struct cl_join; /* join.c: a join being carried out by the leader */

/* A chunk of a local snapshot the core asked for (answered after the update). */
struct cl_snap_read {
    struct kcp_raft_snapshot_read rd;
    struct cl_snap_read *next;
};

struct kcp_cluster {
    struct kcp_loop *loop;
    struct kcp_store *store;
    struct kcp_http_server *http;
    char *data_dir;
    char *name;
    char *address;
    uint64_t id;
    struct kcp_raft *raft;
    struct cl_logstore *log;
    struct kcp_tls_client_config *tls;
    struct kcp_store_proposer proposer;

    uv_timer_t deadline; /* the core's next_deadline_ms */
    uv_timer_t tick;     /* housekeeping */
    uv_idle_t kick;      /* finished reads are reported from here, never synchronously */
    bool kick_active;
    bool persist_due; /* log writes completed: step PERSISTED with the last from the kick */
    uint64_t persist_index, persist_term;
    int handles_open;

    enum kcp_raft_role role;
    uint64_t leader_id;
    uint64_t term;
    uint64_t applied;     /* last committed index handed to apply, any entry type */
    uint64_t last_normal; /* last NORMAL entry handed to the store */
    bool stepping;        /* inside kcp_raft_step + carrying out: no re-entry */
    bool closing;
    bool transferring; /* stepping down before a stop */
    bool failed; /* the log could not be written: no more writes */

    uint64_t next_seq;
    struct cl_prop *props, **props_tail; /* oldest first */
    size_t nprops;
    uint64_t next_token;
    struct cl_read *reads;

    struct cl_peer *peers;
    uint64_t promote[KCP_RAFT_MAX_SERVERS];
    size_t npromote;
    struct cl_join *joins;

    /* Snapshots (snapshot.c). */
    uint64_t snap_every;
    uint64_t snap_index;                     /* the latest local snapshot: raft/snap-<index> */
    uint64_t snap_want_index, snap_want_rev; /* one to take once the store has the revision */
    struct cl_snap_read *snap_reads, **snap_reads_tail;
    bool deferring;
    bool staged; /* a received snapshot is durable in raft/incoming: step SNAPSHOT_PERSISTED */
    uint64_t staged_index, staged_term;
    bool installing; /* waiting for the store to drain, then installing: no messages in/out */
    bool install_recording;     /* the log store's record of it is not durable yet */
    bool install_pending_store; /* the store does not hold it yet (waiting for it to drain) */
    uint64_t install_index, install_term;
    struct kcp_raft_config install_config;

    kcp_cluster_leader_cb leader_cb;
    void *leader_data;
    void (*close_cb)(void *data);
    void *close_data;
};

/* node.c: the driver. Steps the core and carries out its update; returns the step's code. */
int cluster_step(struct kcp_cluster *c, struct kcp_raft_event *ev);
/* Proposals: the store's proposer, and what to do when a leader appears or time passes. */
void cluster_proposer_init(struct kcp_cluster *c);
void cluster_props_retry(struct kcp_cluster *c);
void cluster_props_fail_via(struct kcp_cluster *c, uint64_t peer, int status);
void cluster_props_fail_seq(struct kcp_cluster *c, uint64_t seq, int status);
void cluster_props_expire(struct kcp_cluster *c, uint64_t now);
void cluster_props_fail_all(struct kcp_cluster *c, int status);
/* A forwarded proposal from a follower (leader side): 0 or the step's error. */
int cluster_propose_payload(struct kcp_cluster *c, const void *payload, size_t len);
/* Reads: ask the core again, check what the store has applied, report what is done. */
void cluster_reads_retry(struct kcp_cluster *c);
void cluster_reads_check(struct kcp_cluster *c);
void cluster_kick(struct kcp_cluster *c);
uint64_t cluster_now(const struct kcp_cluster *c);

/* snapshot.c */
void cluster_snapshot_tick(struct kcp_cluster *c);
void cluster_snapshot_update(struct kcp_cluster *c, const struct kcp_raft_update *u);
void cluster_snapshot_deferred(struct kcp_cluster *c);
void cluster_install_try(struct kcp_cluster *c);
int cluster_install_file(struct kcp_cluster *c, uint64_t index);
void cluster_snapshot_free(struct kcp_cluster *c);

/* Brings the peers in line with the core's latest configuration. */
void cluster_roster_sync(struct kcp_cluster *c);

/* peer.c: the transport. */
void cluster_peers_sync(struct kcp_cluster *c, const struct kcp_raft_config *cfg);
void cluster_peer_send(struct kcp_cluster *c, const struct kcp_raft_msg *m);
/* Sends a forwarded write to the leader; KCP_EUNAVAILABLE when it cannot be sent now. */
int cluster_peer_forward(struct kcp_cluster *c, uint64_t leader, uint64_t seq, const void *payload,
                         size_t len);
void cluster_peers_flush(struct kcp_cluster *c);
void cluster_peers_dial(struct kcp_cluster *c);
void cluster_peers_free(struct kcp_cluster *c);
struct cl_peer *cluster_peer_find(struct kcp_cluster *c, uint64_t id);
/* A sender not (yet) in our configuration, from its "Kcp-Member: ID NAME@ADDR" header. */
void cluster_peer_learn(struct kcp_cluster *c, const char *header);

/* "name@host:port" <-> parts (parts copied into fixed buffers; KCP_EINVAL if too long). */
int cluster_member_parse(const char *member, char *name, size_t name_cap, char *addr,
                         size_t addr_cap);

/* routes.c: /raft/v1/ on the HTTP server. join.c: the leader's side of a join. */
void cluster_routes(struct kcp_cluster *c);
void cluster_joins_retry(struct kcp_cluster *c);
void cluster_joins_free(struct kcp_cluster *c);
struct kcp_http_request;
struct kcp_http_response;
void cluster_join_handle(struct kcp_cluster *c, struct kcp_http_request *req,
                         struct kcp_http_response *res);

#endif
