/* kcp raft: a sans-IO Raft core driven by kcp_raft_step(), and its wire format. */
#ifndef KCP_RAFT_H
#define KCP_RAFT_H

#include <kcp/base.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The core never touches a clock, a socket, a file or rand(): the caller (src/raft/io_uv.c in
 * the daemon, src/raft/sim/ in tests) feeds it events and carries out the update each step
 * returns. docs/RAFT.md describes the design; the Raft references are to Ongaro's dissertation
 * ("Consensus: Bridging Theory and Practice", 2014) unless they say "paper".
 *
 * Node ids are non-zero; 0 means "none" wherever an id is expected.
 */

#define KCP_RAFT_MAX_SERVERS 16   /* members of one configuration, voters and learners */
#define KCP_RAFT_ADDR_MAX 256     /* bytes of a server address, NUL included */
#define KCP_RAFT_MAX_PROPOSE 1024 /* payloads in one propose event */

struct kcp_raft;

/* A byte range. In an event it is borrowed for the call; ownership rules are per field. */
struct kcp_raft_buf {
    void *base;
    size_t len;
};

enum kcp_raft_role {
    KCP_RAFT_FOLLOWER,
    KCP_RAFT_PRECANDIDATE, /* running a PreVote round (§9.6); term not yet incremented */
    KCP_RAFT_CANDIDATE,
    KCP_RAFT_LEADER,
};
const char *kcp_raft_role_name(enum kcp_raft_role role);

enum kcp_raft_entry_type {
    KCP_RAFT_ENTRY_NORMAL = 1, /* a proposal: opaque to the core */
    KCP_RAFT_ENTRY_NOOP = 2,   /* appended by each new leader at the start of its term (§6.4) */
    KCP_RAFT_ENTRY_CONFIG = 3, /* an encoded struct kcp_raft_config (kcp_raft_config_encode) */
};

struct kcp_raft_entry {
    uint64_t term;
    uint64_t index;
    enum kcp_raft_entry_type type;
    struct kcp_raft_buf data;
};

/* Membership (§4.1): voters count for elections and commitment, learners only receive the log. */
enum kcp_raft_server_role { KCP_RAFT_VOTER = 1, KCP_RAFT_LEARNER = 2 };

struct kcp_raft_server {
    uint64_t id;
    enum kcp_raft_server_role role;
    char address[KCP_RAFT_ADDR_MAX]; /* opaque to the core; NUL-terminated */
};

struct kcp_raft_config {
    uint32_t n;
    struct kcp_raft_server servers[KCP_RAFT_MAX_SERVERS];
};
/* The server with that id, or NULL. */
const struct kcp_raft_server *kcp_raft_config_find(const struct kcp_raft_config *c, uint64_t id);
/*
 * Appends the wire form of c (a configuration entry's payload, see "Bootstrap" below) to out.
 * Decode validates ids (non-zero, distinct), roles and address lengths: KCP_EBADREQUEST.
 */
void kcp_raft_config_encode(const struct kcp_raft_config *c, struct kcp_buf *out);
int kcp_raft_config_decode(struct kcp_raft_config *out, const void *data, size_t len);

/* What must survive a crash besides the log: written before any message of the same update. */
struct kcp_raft_hard_state {
    uint64_t term;
    uint64_t vote;   /* who this server voted for in term, or 0 */
    uint64_t commit; /* a hint, never past the durable log: reloading a lower value is safe */
};

/* The last entry a snapshot covers and the configuration as of that entry. */
struct kcp_raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    const struct kcp_raft_config *config; /* borrowed; see each use */
};

/* ------------------------------------------------------------------------------------------ */
/* Messages between servers. The transport encodes them with kcp_raft_msg_encode().            */

enum kcp_raft_msg_type {
    KCP_RAFT_MSG_APPEND = 1,  /* AppendEntries (§3.5) */
    KCP_RAFT_MSG_APPEND_RESP, /* success: index = match; reject: index = prev, hint */
    KCP_RAFT_MSG_VOTE,        /* RequestVote (§3.4) */
    KCP_RAFT_MSG_VOTE_RESP,
    KCP_RAFT_MSG_PREVOTE, /* §9.6; term is the sender's term + 1 */
    KCP_RAFT_MSG_PREVOTE_RESP,
    KCP_RAFT_MSG_SNAPSHOT, /* one InstallSnapshot chunk (§5.1, Figure 5.3) */
    KCP_RAFT_MSG_SNAPSHOT_RESP,
    KCP_RAFT_MSG_TIMEOUT_NOW, /* leadership transfer (§3.10) */
    KCP_RAFT_MSG_READ_INDEX,  /* a follower's read, forwarded to the leader (§6.4) */
    KCP_RAFT_MSG_READ_INDEX_RESP,
    KCP_RAFT_MSG_HEARTBEAT, /* empty AppendEntries without log matching; carries seq */
    KCP_RAFT_MSG_HEARTBEAT_RESP,
};
#define KCP_RAFT_MSG_TYPE_MAX KCP_RAFT_MSG_HEARTBEAT_RESP
const char *kcp_raft_msg_type_name(enum kcp_raft_msg_type type);

struct kcp_raft_msg {
    enum kcp_raft_msg_type type;
    uint64_t from;
    uint64_t to;
    uint64_t term;
    union {
        struct kcp_raft_msg_append {
            uint64_t prev_index, prev_term, commit;
            size_t n_entries;
            const struct kcp_raft_entry *entries; /* index = prev_index + 1 + i */
        } append;
        struct kcp_raft_msg_append_resp {
            bool reject;
            uint64_t index; /* success: last index known to match; reject: the prev_index */
            uint64_t hint;  /* reject: the follower's guess at the last index that matches */
        } append_resp;
        struct kcp_raft_msg_vote {
            uint64_t last_index, last_term;
            bool transfer; /* sent because of TimeoutNow: ignore the leader lease (§3.10) */
        } vote;            /* VOTE and PREVOTE */
        struct kcp_raft_msg_vote_resp {
            bool granted;
        } vote_resp; /* VOTE_RESP and PREVOTE_RESP */
        struct kcp_raft_msg_snapshot {
            uint64_t index, term; /* the snapshot's last entry */
            uint64_t offset;
            bool last;
            const struct kcp_raft_config *config; /* configuration as of index */
            struct kcp_raft_buf data;
        } snapshot;
        struct kcp_raft_msg_snapshot_resp {
            uint64_t index;  /* the snapshot's index */
            uint64_t offset; /* the next byte the follower expects */
            bool done;       /* installed: the follower's log now starts after index */
        } snapshot_resp;
        struct kcp_raft_msg_read_index {
            uint64_t token;
        } read_index;
        struct kcp_raft_msg_read_index_resp {
            uint64_t token;
            uint64_t index;
            bool ok; /* false: the receiver is not (or no longer) leader */
        } read_index_resp;
        struct kcp_raft_msg_heartbeat {
            uint64_t commit; /* min(leader commit, follower's match): safe to adopt */
            uint64_t seq;    /* ReadIndex round (§6.4) */
        } heartbeat;
        struct kcp_raft_msg_heartbeat_resp {
            uint64_t seq;
        } heartbeat_resp;
    };
};

/*
 * Appends the encoded message to out: little-endian fixed-width integers, a version byte, and
 * lengths for everything variable. An APPEND message's entries are encoded, a SNAPSHOT's data too.
 */
void kcp_raft_msg_encode(const struct kcp_raft_msg *m, struct kcp_buf *out);
/*
 * Decodes data into out. Entry payloads and snapshot data point into data (which must outlive
 * out); the entry array and the configuration are allocated and released by kcp_raft_msg_free.
 * Malformed input of any kind gives KCP_EBADREQUEST and leaves nothing to free.
 */
int kcp_raft_msg_decode(struct kcp_raft_msg *out, const void *data, size_t len);
void kcp_raft_msg_free(struct kcp_raft_msg *m);

/* ------------------------------------------------------------------------------------------ */
/* Events in.                                                                                 */

enum kcp_raft_event_type {
    /*
     * The first event, exactly once, with what the disk holds: hard state, snapshot metadata
     * (or NULL), log entries (contiguous, the first at most snapshot index + 1, or 1 without a
     * snapshot) and the state machine's applied index (>= snapshot index). Everything is copied.
     */
    KCP_RAFT_EV_START = 1,
    KCP_RAFT_EV_TICK,      /* time passed (now_ms); call at the update's next_deadline_ms */
    KCP_RAFT_EV_RECEIVE,   /* a message for this server; borrowed for the call */
    KCP_RAFT_EV_PERSISTED, /* entries of earlier updates are durable up to (index, term) */
    /*
     * The last chunk of a snapshot handed out in update.chunks is durable (staged): the core
     * answers with update.install.
     */
    KCP_RAFT_EV_SNAPSHOT_PERSISTED,
    /*
     * Append payloads as entries (leader only). On success the core owns every payload base
     * (it must come from kcp_malloc and is released with free()) and update.proposed_index
     * and proposed_term name the first; the caller acknowledges a client when an entry with
     * that index *and* term is applied. An error leaves the payloads with the caller.
     */
    KCP_RAFT_EV_PROPOSE,
    KCP_RAFT_EV_CHANGE,   /* membership change (leader only, one at a time, §4.1) */
    KCP_RAFT_EV_TRANSFER, /* leadership transfer to target, 0 = the most up-to-date voter */
    KCP_RAFT_EV_READ,     /* linearizable read with a caller token (§6.4) */
    /*
     * The state machine has a snapshot at index (<= applied): the core records the snapshot
     * metadata and drops log entries, keeping compact_trailing entries before index.
     */
    KCP_RAFT_EV_COMPACT,
    /* The bytes of a snapshot chunk the core asked for in update.snapshot_reads (leader). */
    KCP_RAFT_EV_SNAPSHOT_CHUNK,
};

enum kcp_raft_change_type {
    KCP_RAFT_ADD_LEARNER = 1, /* a new server that receives the log but does not vote */
    KCP_RAFT_PROMOTE,         /* learner to voter; only once it is caught up */
    KCP_RAFT_REMOVE,          /* voter or learner, the leader itself included (§4.2.2) */
};

struct kcp_raft_event {
    enum kcp_raft_event_type type;
    /* Monotonic milliseconds, on every event; a value below the last one seen is ignored. */
    uint64_t now_ms;
    union {
        struct {
            struct kcp_raft_hard_state hard_state;
            const struct kcp_raft_snapshot_meta *snapshot;
            const struct kcp_raft_entry *entries;
            size_t n_entries;
            uint64_t applied;
        } start;
        struct {
            const struct kcp_raft_msg *msg;
        } receive;
        struct {
            uint64_t index, term;
        } persisted; /* also SNAPSHOT_PERSISTED */
        struct {
            struct kcp_raft_buf *payloads;
            size_t n;
        } propose;
        struct {
            enum kcp_raft_change_type type;
            uint64_t id;
            const char *address; /* ADD_LEARNER; shorter than KCP_RAFT_ADDR_MAX */
        } change;
        struct {
            uint64_t target;
        } transfer;
        struct {
            uint64_t token;
        } read;
        struct {
            uint64_t index;
        } compact;
        struct kcp_raft_ev_chunk {
            uint64_t to, index, offset;
            struct kcp_raft_buf data; /* borrowed for the call */
            bool last;
            int status; /* < 0: the snapshot at index is gone; the core starts over */
        } snapshot_chunk;
    };
};

/* ------------------------------------------------------------------------------------------ */
/* The update out.                                                                            */

/* Snapshot bytes received from the leader, to stage in order (offset 0 starts over). */
struct kcp_raft_snapshot_chunk {
    uint64_t index, term, offset;
    struct kcp_raft_buf data;
    bool last;
};

/* A chunk of the local snapshot at index the core wants to send: answer with SNAPSHOT_CHUNK. */
struct kcp_raft_snapshot_read {
    uint64_t to, index, offset;
    size_t max_len;
};

/* A read's outcome: status 0 and the index to wait for (applied >= index), or a KCP_E* code. */
struct kcp_raft_read_result {
    uint64_t token;
    uint64_t index;
    int status;
};

/*
 * Everything in an update is owned by the core and valid until the next kcp_raft_step() or
 * kcp_raft_free() on the same core; copy what must live longer. The caller carries it out in
 * this order:
 *  1. hard_state: write it; when hard_state_sync, it must be durable before step 4.
 *  2. install: replace the state machine with the staged snapshot, record install_meta and
 *     delete the whole log, durably, before step 4 (and after earlier entry writes finished).
 *  3. entries: delete entries >= truncate_from (when non-zero), append entries; may complete
 *     later, in order with earlier writes; then step PERSISTED with the last (index, term).
 *  4. msgs: send (best effort: loss, duplication and reordering are all tolerated).
 *  5. committed: apply in index order. Each entry is reported once per core.
 *  6. chunks: stage; when the last is durable, step SNAPSHOT_PERSISTED. snapshot_reads: read
 *     and step SNAPSHOT_CHUNK for each.
 *  7. compacted: record snapshot (the caller's snapshot at snapshot.index), then entries below
 *     log_first may be deleted.
 *  8. reads, role, caught_up: notify; arm a timer for next_deadline_ms.
 */
struct kcp_raft_update {
    bool hard_state_changed;
    bool hard_state_sync; /* term or vote changed */
    struct kcp_raft_hard_state hard_state;

    bool install;
    struct kcp_raft_snapshot_meta install_meta;

    uint64_t truncate_from;
    const struct kcp_raft_entry *entries;
    size_t n_entries;

    const struct kcp_raft_msg *msgs;
    size_t n_msgs;

    const struct kcp_raft_entry *committed;
    size_t n_committed;

    const struct kcp_raft_snapshot_chunk *chunks;
    size_t n_chunks;
    const struct kcp_raft_snapshot_read *snapshot_reads;
    size_t n_snapshot_reads;

    bool compacted;
    struct kcp_raft_snapshot_meta snapshot;
    uint64_t log_first;

    const struct kcp_raft_read_result *reads;
    size_t n_reads;

    /* PROPOSE and CHANGE: where the (first) new entry went. */
    uint64_t proposed_index, proposed_term;

    /* Role or leader changed in this step; leader_id is also the hint after KCP_EUNAVAILABLE. */
    bool role_changed;
    enum kcp_raft_role role;
    uint64_t leader_id;
    uint64_t term;

    /* Learners that became caught up in this step (leader): candidates for KCP_RAFT_PROMOTE. */
    const uint64_t *caught_up;
    size_t n_caught_up;

    uint64_t next_deadline_ms; /* step a TICK then; UINT64_MAX: nothing pending */
};

/* ------------------------------------------------------------------------------------------ */

struct kcp_raft_options {
    uint64_t id;
    uint64_t seed;                /* randomized election timeouts; mix in the id */
    uint32_t election_timeout_ms; /* randomized in [t, 2t) (§3.4) */
    uint32_t heartbeat_ms;
    bool pre_vote;
    bool check_quorum;          /* leader steps down without a majority; followers keep a lease */
    uint32_t max_inflight;      /* AppendEntries in flight to one follower when pipelining */
    uint32_t max_batch_entries; /* entries in one AppendEntries */
    size_t max_batch_bytes;
    size_t snapshot_chunk_bytes;
    uint64_t compact_trailing; /* entries kept before a snapshot's index for slow followers */
    uint64_t catchup_margin;   /* a learner is caught up when match + margin >= commit */
    uint32_t read_timeout_ms;  /* pending reads fail with KCP_ETIMEOUT after this */
    uint32_t max_pending_reads;
};
/* Defaults: 1000 ms election timeout, 100 ms heartbeat, PreVote and CheckQuorum on, ... */
void kcp_raft_options_default(struct kcp_raft_options *out, uint64_t id);

/* A new core; its first event must be KCP_RAFT_EV_START. Options are copied. */
int kcp_raft_new(struct kcp_raft **out, const struct kcp_raft_options *opts);
void kcp_raft_free(struct kcp_raft *r);

/*
 * Feeds one event. Returns 0, or a negative KCP_E* code when the event is refused, in which
 * case the core's state did not change and out holds only leader_id and next_deadline_ms:
 *  KCP_EUNAVAILABLE  not the leader (PROPOSE, CHANGE, TRANSFER), no known leader (READ), or a
 *                    leadership transfer in progress
 *  KCP_ECONFLICT     a configuration change is pending, or the leader has not yet committed
 *                    an entry of its term (§4.1), or the learner is not caught up
 *  KCP_EINVAL        malformed event (bad ids, START twice or not first, compact past applied)
 *  KCP_EEXIST / KCP_ENOTFOUND / KCP_ETOOMANY  membership: id present / absent / too many
 * Messages with stale terms or for another server are ignored (return 0), never errors.
 */
int kcp_raft_step(struct kcp_raft *r, const struct kcp_raft_event *ev, struct kcp_raft_update *out);

struct kcp_raft_status {
    uint64_t id;
    enum kcp_raft_role role;
    uint64_t term, vote, leader_id;
    uint64_t commit, applied, persisted;
    uint64_t first_index, last_index, last_term;
    uint64_t snapshot_index, snapshot_term;
    const struct kcp_raft_config *config; /* latest, committed or not; borrowed until next step */
    uint64_t config_index;
};
void kcp_raft_status(const struct kcp_raft *r, struct kcp_raft_status *out);

/* Term of the entry at index: KCP_ENOTFOUND when compacted away or past the end. */
int kcp_raft_term_at(const struct kcp_raft *r, uint64_t index, uint64_t *out);

/* The leader's view of a member. KCP_EUNAVAILABLE when not leader, KCP_ENOTFOUND if unknown. */
struct kcp_raft_progress {
    uint64_t match, next;
    bool active;    /* heard from within the current CheckQuorum period */
    bool caught_up; /* match + catchup_margin >= commit */
};
int kcp_raft_progress_get(const struct kcp_raft *r, uint64_t id, struct kcp_raft_progress *out);

/*
 * Bootstrap: a new cluster's founding servers all START with hard state {term 1, vote 0,
 * commit 1} and one entry {term 1, index 1, KCP_RAFT_ENTRY_CONFIG, encoded configuration}; a
 * server that will be added later starts with nothing and waits to be contacted.
 */

#endif
