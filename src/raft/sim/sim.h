/* Raft simulator: cores on a simulated clock, network and disk, checked after every step. */
#ifndef KCP_RAFT_SIM_H
#define KCP_RAFT_SIM_H

#include <kcp/raft.h>

#include <stdbool.h>
#include <stdint.h>

/*
 * Everything is driven by one seeded PRNG and one event queue ordered by (time, sequence), so
 * a seed replays exactly. Each raft_sim_step() handles one event (a message delivery, a timer,
 * a disk completion, a snapshot read or stage) and then checks the safety properties; the first
 * violation is kept in raft_sim_failure() and stops the simulation. docs/RAFT.md lists the checks.
 */

#define RAFT_SIM_MAX_NODES 9 /* ids 1..9 */

struct raft_sim;

struct raft_sim_options {
    uint64_t seed;
    unsigned voters;              /* founding voters, ids 1..voters */
    struct kcp_raft_options raft; /* template: id and seed are set per server */
    uint32_t delay_min_ms, delay_max_ms;
    uint32_t drop_permille, dup_permille;
    uint32_t disk_min_ms, disk_max_ms;
    uint64_t compact_every; /* 0: never compact on its own; else when applied - snapshot >= it */
    bool trace;             /* one line per event on stderr */
};
void raft_sim_options_default(struct raft_sim_options *out, unsigned voters, uint64_t seed);

struct raft_sim *raft_sim_new(const struct raft_sim_options *o);
void raft_sim_free(struct raft_sim *s);

/* Handles the next event; false when the queue is empty or a check failed. */
bool raft_sim_step(struct raft_sim *s);
/* Steps until the simulated clock passes now + ms (or a failure). */
void raft_sim_run(struct raft_sim *s, uint64_t ms);
/* Steps until pred holds (true) or ms pass (false). */
bool raft_sim_run_until(struct raft_sim *s, bool (*pred)(struct raft_sim *s, void *arg), void *arg,
                        uint64_t ms);
const char *raft_sim_failure(const struct raft_sim *s);
/* Records a failure from outside (a scenario's own assertion, a liveness bound). */
void raft_sim_fail(struct raft_sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t raft_sim_now(const struct raft_sim *s);
uint64_t raft_sim_steps(const struct raft_sim *s);
/* The simulation's PRNG, for drivers that want their choices in the same replayable stream. */
uint64_t raft_sim_rand(struct raft_sim *s, uint64_t n);

/* ---- servers ---- */
bool raft_sim_exists(const struct raft_sim *s, uint64_t id);
bool raft_sim_alive(const struct raft_sim *s, uint64_t id);
/* Crash: the core is dropped; writes not yet reported persisted may be lost (a random suffix). */
void raft_sim_kill(struct raft_sim *s, uint64_t id);
/* Restart from what the disk and the state machine hold. */
void raft_sim_revive(struct raft_sim *s, uint64_t id);
/* A new, empty server (not in any configuration) in a free slot: its id, or 0 when full. */
uint64_t raft_sim_add_server(struct raft_sim *s);
/* Drops a server that is dead or outside the configuration, freeing its slot. */
void raft_sim_destroy(struct raft_sim *s, uint64_t id);
struct kcp_raft *raft_sim_core(struct raft_sim *s, uint64_t id); /* NULL when dead */
/* The live leader with the highest term, or 0. */
uint64_t raft_sim_leader(const struct raft_sim *s);
/* The leader's latest configuration (or any live server's when there is no leader). */
const struct kcp_raft_config *raft_sim_config(const struct raft_sim *s);

/* ---- network ---- */
void raft_sim_link(struct raft_sim *s, uint64_t from, uint64_t to, bool up); /* one direction */
void raft_sim_isolate(struct raft_sim *s, uint64_t id); /* both directions, from everyone */
/* Splits the servers in two sides by the bits of mask (bit id-1 set: side B). */
void raft_sim_partition(struct raft_sim *s, uint32_t mask);
void raft_sim_heal(struct raft_sim *s);
void raft_sim_set_faults(struct raft_sim *s, uint32_t drop_permille, uint32_t dup_permille,
                         uint32_t delay_min_ms, uint32_t delay_max_ms);
/* Messages for which filter returns true are dropped at send time (scenarios). */
typedef bool (*raft_sim_filter_cb)(const struct kcp_raft_msg *m, void *arg);
void raft_sim_set_filter(struct raft_sim *s, raft_sim_filter_cb cb, void *arg);

/* ---- clients ---- */
/* Proposes a fresh value at id; out_value and out_index (may be NULL) name it. Returns the
 * core's rc. */
int raft_sim_propose(struct raft_sim *s, uint64_t id, uint64_t *out_value, uint64_t *out_index);
/* Starts a read at id; out_token names it. */
int raft_sim_read(struct raft_sim *s, uint64_t id, uint64_t *out_token);
/* A read's result once it has one: true, with index and status. */
bool raft_sim_read_result(const struct raft_sim *s, uint64_t token, uint64_t *index, int *status);
int raft_sim_change(struct raft_sim *s, uint64_t at, enum kcp_raft_change_type type, uint64_t id);
int raft_sim_transfer(struct raft_sim *s, uint64_t at, uint64_t target);
int raft_sim_compact(struct raft_sim *s, uint64_t id);
/* Whether a proposed value was acknowledged (applied with its index and term at the proposer). */
bool raft_sim_acked(const struct raft_sim *s, uint64_t value);

/* ---- observations ---- */
struct raft_sim_stats {
    uint64_t elections, proposals, acked, reads, reads_ok, installs, compactions, messages, dropped,
        crashes, changes, transfers;
};
void raft_sim_stats(const struct raft_sim *s, struct raft_sim_stats *out);
/* Applied index and the value applied at index on a server's state machine (0 when none). */
uint64_t raft_sim_applied(const struct raft_sim *s, uint64_t id);
uint64_t raft_sim_value_at(const struct raft_sim *s, uint64_t id, uint64_t index);
/* One line per server on stderr: role, term, log, commit, applied, configuration. */
void raft_sim_dump(const struct raft_sim *s);
/* Liveness: every live member of the leader's configuration applied a fresh write. */
bool raft_sim_converged(struct raft_sim *s, void *arg);
/* Checks after healing: all acknowledged values on every member's state machine. */
void raft_sim_check_final(struct raft_sim *s);

#endif
