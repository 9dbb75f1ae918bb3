/* Raft core internals: the state behind struct kcp_raft and the functions its files share. */
#ifndef KCP_RAFT_INT_H
#define KCP_RAFT_INT_H

#include <kcp/base.h>
#include <kcp/raft.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_ROLE_NONE (-1) /* before START: the only way out is to FOLLOWER */
/*
 * Terms and indexes at or above this are refused from the network: a real cluster never gets
 * near it, and keeping far from UINT64_MAX means no index arithmetic can wrap.
 */
#define RAFT_LIMIT (UINT64_C(1) << 62)

/* ---- log.c: the in-memory log. Entries [first, first + n) own their payloads. ---- */
struct raft_log {
    struct kcp_raft_entry *e; /* ring-less array; e[head] has index first */
    size_t head, n, cap;
    uint64_t first;
    uint64_t snap_index, snap_term; /* last entry covered by the snapshot; 0 when none */
};

/* ---- progress of one member, kept by the leader ---- */
enum raft_pstate {
    RAFT_PROBE,     /* one AppendEntries at a time until the follower's log matches */
    RAFT_REPLICATE, /* pipelined: next advances optimistically, up to max_inflight */
    RAFT_SNAPSHOT,  /* streaming a snapshot; no AppendEntries */
};

struct raft_progress {
    uint64_t id;
    uint64_t match, next;
    enum raft_pstate state;
    bool paused;     /* PROBE: an AppendEntries is out and unanswered */
    bool active;     /* heard from since the last CheckQuorum round */
    bool caught_up;  /* caught-up signal already reported (learners) */
    uint64_t hb_seq; /* highest ReadIndex round acknowledged */
    /* REPLICATE: last index of each AppendEntries in flight, oldest first */
    uint64_t *inflight;
    size_t in_head, in_count;
    /* SNAPSHOT */
    uint64_t snap_index, snap_term;
    struct kcp_raft_config *snap_config;
    uint64_t snap_offset;   /* offset of the chunk being read or sent */
    uint64_t snap_sent_end; /* offset after the last chunk sent; 0 before any */
    bool snap_reading;      /* a snapshot_read is out to the caller */
    bool snap_last_sent;
    uint64_t snap_sent_ms;
};

/* ---- readindex.c ---- */
struct raft_read {
    uint64_t token;
    uint64_t from;  /* leader: who asked (self for local reads); follower: unused */
    uint64_t index; /* leader: max(commit when asked, term start) */
    uint64_t seq;   /* leader: heartbeat round that must be acknowledged by a quorum */
    uint64_t deadline_ms;
};

/* ---- what the current step is building; reset at the start of each step ---- */
struct raft_out {
    struct kcp_raft_entry *entries;
    size_t n_entries, cap_entries;
    struct kcp_raft_msg *msgs;
    size_t *msg_entry_off; /* APPEND entries live in msg_entries at this offset until finish */
    size_t n_msgs, cap_msgs;
    struct kcp_raft_entry *msg_entries;
    size_t n_msg_entries, cap_msg_entries;
    struct kcp_raft_entry *committed;
    size_t cap_committed;
    struct kcp_raft_snapshot_chunk *chunks;
    size_t n_chunks, cap_chunks;
    struct kcp_raft_snapshot_read *sreads;
    size_t n_sreads, cap_sreads;
    struct kcp_raft_read_result *reads;
    size_t n_reads, cap_reads;
    uint64_t *caught_up;
    size_t n_caught_up, cap_caught_up;
    uint64_t truncate_from;
    uint64_t proposed_index; /* PROPOSE and CHANGE: the first new entry */
    bool install;
    struct kcp_raft_snapshot_meta install_meta;
    bool compacted;
    bool read_broadcast; /* a ReadIndex round must start before the step ends */
};

struct kcp_raft {
    struct kcp_raft_options o;
    uint64_t id;
    uint64_t rng;
    int role; /* enum kcp_raft_role or RAFT_ROLE_NONE */

    uint64_t term, vote, leader_id;
    uint64_t commit;    /* highest index known committed */
    uint64_t applied;   /* highest index handed out to apply (or covered by a snapshot) */
    uint64_t persisted; /* highest index of the current log known durable */

    struct raft_log log;
    struct kcp_raft_config config; /* latest configuration in the log (§4.1) */
    uint64_t config_index;
    struct kcp_raft_config snap_config; /* configuration as of log.snap_index */

    uint64_t now;
    uint64_t election_deadline, heartbeat_deadline, quorum_deadline;
    uint64_t leader_seen; /* when the current leader was last heard from (lease, §4.2.3) */

    /* (pre)candidate: who answered */
    uint64_t votes_for[KCP_RAFT_MAX_SERVERS], votes_against[KCP_RAFT_MAX_SERVERS];
    size_t n_for, n_against;

    /* leader */
    struct raft_progress *prs;
    size_t n_prs;
    uint64_t noop_index;  /* first entry of this term; commitment of it gates reads and changes */
    uint64_t commit_sent; /* highest commit index sent to the followers (raft_notify_commit) */
    uint64_t transfer_target, transfer_deadline;
    bool transfer_sent;

    /* follower: acknowledgements of AppendEntries wait for durability */
    uint64_t ack_index; /* highest index the current leader's messages showed to match */
    uint64_t ack_sent;

    /* follower: snapshot being received */
    bool recv_active, install_pending;
    uint64_t recv_index, recv_term, recv_offset;
    struct kcp_raft_config recv_config;

    /* reads: the leader's waiting for a quorum round, or a follower's forwarded ones */
    struct raft_read *reads;
    size_t n_reads, cap_reads;
    uint64_t read_seq;

    /* last reported, to compute the update's diffs */
    struct kcp_raft_hard_state hs_reported;
    int role_reported;
    uint64_t leader_reported;

    /* payloads and copies released at the start of the next step (update validity) */
    void **deferred;
    size_t n_deferred, cap_deferred;

    struct raft_out out;
};

/* core.c */
void raft_become(struct kcp_raft *r, int role);
void raft_become_follower(struct kcp_raft *r, uint64_t term, uint64_t leader);
uint64_t raft_random(struct kcp_raft *r, uint64_t lo, uint64_t hi);
void raft_defer_free(struct kcp_raft *r, void *p);
struct kcp_raft_msg *raft_msg(struct kcp_raft *r, enum kcp_raft_msg_type type, uint64_t to);
void raft_out_entry(struct kcp_raft *r, const struct kcp_raft_entry *e);
void raft_out_truncate(struct kcp_raft *r, uint64_t from);
void raft_out_read(struct kcp_raft *r, uint64_t token, uint64_t index, int status);
void raft_out_caught_up(struct kcp_raft *r, uint64_t id);
bool raft_in_lease(const struct kcp_raft *r);
/* Number of voters in the latest configuration and whether id is one of them. */
size_t raft_voters(const struct kcp_raft *r);
bool raft_is_voter(const struct kcp_raft *r, uint64_t id);

/* log.c */
void raft_log_init(struct raft_log *l);
void raft_log_close(struct kcp_raft *r);
uint64_t raft_log_last_index(const struct raft_log *l);
uint64_t raft_log_last_term(const struct raft_log *l);
int raft_log_term(const struct raft_log *l, uint64_t index, uint64_t *out);
const struct kcp_raft_entry *raft_log_get(const struct raft_log *l, uint64_t index);
/* Appends e (index must be last + 1); the log takes ownership of e->data. */
void raft_log_append(struct raft_log *l, const struct kcp_raft_entry *e);
void raft_log_truncate(struct kcp_raft *r, uint64_t from);
/* Drops entries below first (payloads deferred). */
void raft_log_drop_before(struct kcp_raft *r, uint64_t first);
/* Drops everything and restarts the log after a snapshot at (index, term). */
void raft_log_reset(struct kcp_raft *r, uint64_t index, uint64_t term);
/* §3.6.1 (paper §5.4.1): is a log ending at (last_index, last_term) as up-to-date as ours? */
bool raft_log_up_to_date(const struct raft_log *l, uint64_t last_index, uint64_t last_term);

/* election.c */
void raft_election_reset_timer(struct kcp_raft *r);
void raft_election_tick(struct kcp_raft *r);
void raft_election_start(struct kcp_raft *r, bool pre_vote, bool transfer);
void raft_election_recv_vote(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_election_recv_vote_resp(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_election_recv_timeout_now(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_become_leader(struct kcp_raft *r);
int raft_transfer(struct kcp_raft *r, uint64_t target);
void raft_transfer_check(struct kcp_raft *r, struct raft_progress *p);

/* replication.c */
struct raft_progress *raft_progress_find(struct kcp_raft *r, uint64_t id);
void raft_progress_reset(struct kcp_raft *r);
void raft_progress_sync(struct kcp_raft *r);
void raft_progress_free(struct kcp_raft *r);
void raft_replicate_tick(struct kcp_raft *r);
void raft_send_append(struct kcp_raft *r, struct raft_progress *p, bool allow_empty);
void raft_broadcast_append(struct kcp_raft *r);
void raft_broadcast_heartbeat(struct kcp_raft *r, uint64_t seq);
int raft_propose(struct kcp_raft *r, const struct kcp_raft_event *ev);
uint64_t raft_append_local(struct kcp_raft *r, enum kcp_raft_entry_type type,
                           struct kcp_raft_buf data);
void raft_recv_append(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_recv_append_resp(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_recv_heartbeat(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_recv_heartbeat_resp(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_persisted(struct kcp_raft *r, uint64_t index, uint64_t term);
void raft_maybe_commit(struct kcp_raft *r);
/* At the end of a step: followers learn a commit index that moved (replication.c). */
void raft_notify_commit(struct kcp_raft *r);
void raft_collect_committed(struct kcp_raft *r, struct kcp_raft_update *out);
bool raft_progress_caught_up(const struct kcp_raft *r, const struct raft_progress *p);

/* membership.c */
void raft_config_refresh(struct kcp_raft *r);
int raft_config_at(struct kcp_raft *r, uint64_t index, struct kcp_raft_config *out);
void raft_config_appended(struct kcp_raft *r, const struct kcp_raft_entry *e);
void raft_config_committed(struct kcp_raft *r);
int raft_change(struct kcp_raft *r, const struct kcp_raft_event *ev);

/* snapshot.c */
void raft_snapshot_start(struct kcp_raft *r, struct raft_progress *p);
void raft_snapshot_stop(struct kcp_raft *r, struct raft_progress *p);
int raft_snapshot_chunk(struct kcp_raft *r, const struct kcp_raft_event *ev);
void raft_recv_snapshot(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_recv_snapshot_resp(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_snapshot_persisted(struct kcp_raft *r, uint64_t index, uint64_t term);
void raft_snapshot_tick(struct kcp_raft *r, struct raft_progress *p);
int raft_compact(struct kcp_raft *r, uint64_t index);

/* readindex.c */
int raft_read(struct kcp_raft *r, uint64_t token);
void raft_recv_read_index(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_recv_read_index_resp(struct kcp_raft *r, const struct kcp_raft_msg *m);
void raft_reads_advance(struct kcp_raft *r);
void raft_reads_fail_all(struct kcp_raft *r, int status);
void raft_reads_tick(struct kcp_raft *r);
uint64_t raft_reads_deadline(const struct kcp_raft *r);

#endif
