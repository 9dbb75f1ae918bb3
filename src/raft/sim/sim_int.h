/* Raft simulator internals: events, simulated servers with their disks, and checker state. */
#ifndef KCP_RAFT_SIM_INT_H
#define KCP_RAFT_SIM_INT_H

#include "sim.h"

#include <kcp/base.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sim_ev_kind {
    SIM_DELIVER,     /* a: encoded message in bytes */
    SIM_TIMER,       /* gen: timer generation */
    SIM_DISK,        /* gen: incarnation; a: write id */
    SIM_SNAP_READ,   /* gen: incarnation; a: to, b: index, c: offset, d: max */
    SIM_SNAP_STAGED, /* gen: incarnation; a: index, b: term */
    SIM_COMPACT,     /* gen: incarnation */
};

struct sim_ev {
    uint64_t time, seq; /* order of delivery: by time, then by when it was queued */
    enum sim_ev_kind kind;
    uint64_t node, gen;
    uint64_t a, b, c, d;
    uint8_t *bytes;
    size_t len;
};

/* An entry as the simulated disk holds it, with its chain hash (hash of the log up to it). */
struct sim_entry {
    uint64_t term;
    enum kcp_raft_entry_type type;
    uint8_t *data;
    size_t len;
    uint64_t hash;
};

/* One log write of an update: queued on the disk, durable when its SIM_DISK event fires. */
struct sim_write {
    uint64_t id;
    uint64_t truncate_from;
    struct sim_entry *e;
    size_t n;
    uint64_t first_index;
    bool on_disk; /* already applied to the durable log (an install flushed it) */
};

struct sim_mentry {
    uint64_t term, hash;
};

struct sim_node {
    uint64_t id;
    bool exists, alive;
    struct kcp_raft *r;
    uint64_t incarnation, timer_gen, deadline;
    enum kcp_raft_role role;
    uint64_t term;
    bool compact_queued;
    /* durable: hard state, log, snapshot */
    struct kcp_raft_hard_state hs;
    struct sim_entry *log;
    size_t log_n, log_cap;
    uint64_t log_first;
    bool has_snap;
    uint64_t snap_index, snap_term, snap_hash;
    struct kcp_raft_config snap_config;
    uint8_t *snap_data;
    size_t snap_len;
    /* the state machine: value applied at each index; durable like an LMDB store */
    uint64_t *sm;
    size_t sm_cap;
    uint64_t sm_applied;
    /* staged snapshot chunks */
    uint8_t *stage;
    size_t stage_len, stage_cap;
    uint64_t stage_index, stage_term;
    /* log writes not yet reported persisted, oldest first */
    struct sim_write *writes;
    size_t n_writes, cap_writes;
    uint64_t next_write, disk_free_at;
    /* mirror of the core's in-memory log (terms and chain hashes) for the checks */
    struct sim_mentry *m;
    size_t m_n, m_cap;
    uint64_t m_first, m_snap_index, m_snap_term, m_snap_hash;
};

struct sim_prop {
    uint64_t node, incarnation, index, term, value;
};

struct sim_read {
    uint64_t node, incarnation, token, required;
    bool done;
    uint64_t index;
    int status;
};

struct sim_acked {
    uint64_t value, index;
};

/* Open-addressing map (index, term) -> chain hash: the Log Matching witness. */
struct sim_lm {
    uint64_t *k_index, *k_term, *v;
    size_t cap, n;
};

struct raft_sim {
    struct raft_sim_options o;
    uint64_t rng, now, seq, steps;
    struct sim_ev *heap;
    size_t n_ev, cap_ev;
    struct sim_node nodes[RAFT_SIM_MAX_NODES + 1]; /* by id; slot 0 unused */
    bool link[RAFT_SIM_MAX_NODES + 1][RAFT_SIM_MAX_NODES + 1];
    raft_sim_filter_cb filter;
    void *filter_arg;
    bool failed;
    char failure[1024];
    struct raft_sim_stats stats;

    /* checker */
    uint64_t *leader_of;                  /* by term */
    uint64_t *commit_of, *commit_hash_of; /* by term: highest commit a leader of it reported */
    size_t cap_terms;
    uint64_t *values, *vhash; /* by index: value and chain hash applied anywhere (0: none) */
    size_t cap_values;
    uint64_t max_commit;
    struct sim_lm lm;

    /* clients */
    struct sim_prop *props;
    size_t n_props, cap_props;
    struct sim_read *reads;
    size_t n_reads, cap_reads;
    struct sim_acked *acked;
    size_t n_acked, cap_acked;
    uint64_t acked_max, next_value, next_token;
    uint64_t probe_value, probe_index, probe_term, probe_leader;
};

#define SIM_GROW(arr, n, cap)                                                                      \
    do {                                                                                           \
        if ((n) >= (cap)) {                                                                        \
            size_t _c = (cap) ? 2 * (cap) : 16;                                                    \
            while (_c <= (n))                                                                      \
                _c *= 2;                                                                           \
            (arr) = kcp_realloc((arr), _c * sizeof(*(arr)));                                       \
            memset((arr) + (cap), 0, (_c - (cap)) * sizeof(*(arr)));                               \
            (cap) = _c;                                                                            \
        }                                                                                          \
    } while (0)

/* sim.c */
void sim_push(struct raft_sim *s, const struct sim_ev *ev);
uint64_t sim_delay(struct raft_sim *s, uint32_t lo, uint32_t hi);
/* Steps one event into a server's core and carries out the update; false if it refused. */
int sim_node_step(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_event *ev);

/* sim_node.c */
void sim_node_update(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_update *u);
void sim_node_disk_done(struct raft_sim *s, struct sim_node *n, uint64_t write_id);
void sim_node_crash_disk(struct raft_sim *s, struct sim_node *n);
void sim_node_start(struct raft_sim *s, struct sim_node *n);
void sim_node_snap_read(struct raft_sim *s, struct sim_node *n, const struct sim_ev *ev);
void sim_node_free(struct sim_node *n);
uint64_t sim_mirror_hash(const struct sim_node *n, uint64_t index, bool *known);
uint64_t sim_chain(uint64_t prev, uint64_t term, uint64_t value);
uint64_t sim_value(enum kcp_raft_entry_type type, const void *data, size_t len);

/* sim_check.c */
void sim_check_append(struct raft_sim *s, struct sim_node *n, uint64_t index, uint64_t term,
                      uint64_t hash);
void sim_check_apply(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_entry *e);
void sim_check_snapshot(struct raft_sim *s, struct sim_node *n, const uint64_t *values,
                        uint64_t index, uint64_t hash);
void sim_check_hard_state(struct raft_sim *s, struct sim_node *n,
                          const struct kcp_raft_hard_state *hs);
void sim_check_commit(struct raft_sim *s, struct sim_node *n);
void sim_check_role(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_update *u);
void sim_check_reads(struct raft_sim *s, struct sim_node *n, const struct kcp_raft_update *u);
void sim_check_core(struct raft_sim *s, struct sim_node *n);
void sim_check_free(struct raft_sim *s);

#endif
