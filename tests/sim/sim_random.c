/* sim.random: seeded random Raft schedules (faults, clients, membership), then heal and liveness.
 */
#include "sim.h"

#include <kcp/base.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Environment:
 *   KCP_SEED=<seed>          run only that schedule (replays a failure exactly)
 *   KCP_SIM_TRACE=1          print every message of the schedule(s)
 *   KCP_SIM_SCHEDULES=<n>    how many schedules (default 10000)
 *   KCP_SIM_BASE_SEED=<s>    first seed (default 1); schedule i uses seed s + i
 *   KCP_SIM_SECONDS=<t>      stop starting new schedules after t seconds (soak runs)
 *   KCP_SIM_STEPS=<n>        chaos steps per schedule (default 400)
 */

#define LIVENESS_MS 10000 /* after healing: a leader that commits, on every member, within this */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static uint64_t pick_alive(struct raft_sim *s, bool alive)
{
    uint64_t ids[RAFT_SIM_MAX_NODES], n = 0;
    for (uint64_t id = 1; id <= RAFT_SIM_MAX_NODES; id++)
        if (raft_sim_exists(s, id) && raft_sim_alive(s, id) == alive)
            ids[n++] = id;
    return n ? ids[raft_sim_rand(s, n)] : 0;
}

/* Any live server that believes it leads, stale ones included. */
static uint64_t pick_leader(struct raft_sim *s)
{
    uint64_t ids[RAFT_SIM_MAX_NODES], n = 0;
    for (uint64_t id = 1; id <= RAFT_SIM_MAX_NODES; id++) {
        struct kcp_raft_status st;
        if (!raft_sim_alive(s, id))
            continue;
        kcp_raft_status(raft_sim_core(s, id), &st);
        if (st.role == KCP_RAFT_LEADER)
            ids[n++] = id;
    }
    return n ? ids[raft_sim_rand(s, n)] : 0;
}

static void membership(struct raft_sim *s)
{
    uint64_t l = raft_sim_leader(s);
    if (!l)
        return;
    const struct kcp_raft_config *c = raft_sim_config(s);
    unsigned voters = 0;
    for (uint32_t i = 0; i < c->n; i++)
        voters += c->servers[i].role == KCP_RAFT_VOTER;
    switch (raft_sim_rand(s, 3)) {
    case 0: {
        uint64_t id = raft_sim_add_server(s);
        if (id)
            raft_sim_change(s, l, KCP_RAFT_ADD_LEARNER, id);
        break;
    }
    case 1:
        for (uint32_t i = 0; i < c->n; i++)
            if (c->servers[i].role == KCP_RAFT_LEARNER) {
                raft_sim_change(s, l, KCP_RAFT_PROMOTE, c->servers[i].id);
                break;
            }
        break;
    default: {
        /* The leader itself included (§4.2.2); at least two voters stay. */
        const struct kcp_raft_server *v = &c->servers[raft_sim_rand(s, c->n)];
        if (v->role == KCP_RAFT_LEARNER || voters > 2)
            raft_sim_change(s, l, KCP_RAFT_REMOVE, v->id);
        break;
    }
    }
}

/*
 * A crash armed to go off a few events later, aimed at a leader right after a proposal or right
 * after its election: it lands between "committed" and "durable", or while the new leader is
 * still copying earlier terms' entries (where Figure 8 lives).
 */
struct armed {
    uint64_t victim, at, last_leader;
};

static void chaos(struct raft_sim *s, struct armed *arm, uint64_t step)
{
    uint64_t r = raft_sim_rand(s, 1000), id;
    if (arm->victim && step >= arm->at) {
        raft_sim_kill(s, arm->victim);
        arm->victim = 0;
    }
    id = raft_sim_leader(s);
    if (id && id != arm->last_leader && !arm->victim && !raft_sim_rand(s, 4)) {
        arm->victim = id;
        arm->at = step + 1 + raft_sim_rand(s, 12);
    }
    arm->last_leader = id;
    if (r < 60) {
        id = raft_sim_rand(s, 4) ? raft_sim_leader(s) : pick_alive(s, true);
        if (id && raft_sim_propose(s, id, NULL, NULL) == 0 && !arm->victim &&
            !raft_sim_rand(s, 8)) {
            arm->victim = id;
            arm->at = step + 1 + raft_sim_rand(s, 12);
        }
    } else if (r < 75) {
        /* Half the reads go to a leader, perhaps a deposed one that has not noticed yet. */
        id = raft_sim_rand(s, 2) ? pick_leader(s) : 0;
        if (id || (id = pick_alive(s, true)))
            raft_sim_read(s, id, NULL);
    } else if (r < 80) {
        /* Half the crashes hit the leader: that is where uncommitted history piles up. */
        id = raft_sim_rand(s, 2) ? raft_sim_leader(s) : 0;
        raft_sim_kill(s, id ? id : pick_alive(s, true));
    } else if (r < 88) {
        raft_sim_revive(s, pick_alive(s, false));
    } else if (r < 91) {
        uint32_t mask = (uint32_t)raft_sim_rand(s, 1u << RAFT_SIM_MAX_NODES);
        if ((id = raft_sim_leader(s)) && raft_sim_rand(s, 2)) {
            /* The leader with at most one follower: it keeps accepting what cannot commit. */
            mask = 1u << (id - 1);
            if (raft_sim_rand(s, 2))
                mask |= 1u << raft_sim_rand(s, RAFT_SIM_MAX_NODES);
        }
        raft_sim_partition(s, mask);
    } else if (r < 93) {
        uint64_t a = 1 + raft_sim_rand(s, RAFT_SIM_MAX_NODES),
                 b = 1 + raft_sim_rand(s, RAFT_SIM_MAX_NODES);
        raft_sim_link(s, a, b, false); /* asymmetric: a no longer reaches b */
    } else if (r < 98) {
        raft_sim_heal(s);
    } else if (r < 100) {
        /* One draw per statement: argument order is unspecified, and a replay must not depend
         * on the compiler. */
        uint32_t lo = (uint32_t)raft_sim_rand(s, 10);
        uint32_t hi = lo + (uint32_t)raft_sim_rand(s, 60);
        uint32_t drop = (uint32_t)raft_sim_rand(s, 250);
        uint32_t dup = (uint32_t)raft_sim_rand(s, 100);
        raft_sim_set_faults(s, drop, dup, lo, hi);
    } else if (r < 104) {
        membership(s);
    } else if (r < 107) {
        if ((id = raft_sim_leader(s)))
            raft_sim_transfer(s, id, raft_sim_rand(s, 2) ? 0 : 1 + raft_sim_rand(s, 5));
    } else {
        raft_sim_step(s);
    }
}

struct totals {
    struct raft_sim_stats st;
    uint64_t steps, sim_ms;
};

static void add_stats(struct raft_sim_stats *a, const struct raft_sim_stats *b)
{
    a->elections += b->elections;
    a->proposals += b->proposals;
    a->acked += b->acked;
    a->reads += b->reads;
    a->reads_ok += b->reads_ok;
    a->installs += b->installs;
    a->compactions += b->compactions;
    a->messages += b->messages;
    a->dropped += b->dropped;
    a->crashes += b->crashes;
    a->changes += b->changes;
    a->transfers += b->transfers;
}

static int schedule(uint64_t seed, uint64_t chaos_steps, bool trace, struct totals *t)
{
    struct raft_sim_options o;
    uint64_t mixed = seed * 0x9e3779b97f4a7c15ULL;
    raft_sim_options_default(&o, (mixed >> 40) % 2 ? 5 : 3, seed);
    o.trace = trace;
    o.drop_permille = (uint32_t)((mixed >> 8) % 150);
    o.dup_permille = (uint32_t)((mixed >> 16) % 60);
    o.compact_every = (mixed >> 24) % 3 ? 4 + (mixed >> 28) % 16 : 0;
    /* Small batches and pipelines let a leader's older entries reach a majority before its own. */
    static const uint32_t batch[] = {1, 2, 3, 8}, inflight[] = {1, 2, 4, 16};
    o.raft.max_batch_entries = batch[(mixed >> 32) % 4];
    o.raft.max_inflight = inflight[(mixed >> 34) % 4];
    /* Slow disks widen the window between "appended" and "durable" that crashes fall into. */
    static const uint32_t disk[] = {8, 8, 40, 120};
    o.disk_max_ms = disk[(mixed >> 36) % 4];
    /* Mostly the defaults, but the options must be safe off too (without PreVote, RequestVote's
     * own up-to-date check is the only one). */
    o.raft.pre_vote = (mixed >> 38) % 4 != 0;
    o.raft.check_quorum = (mixed >> 44) % 4 != 0;
    struct raft_sim *s = raft_sim_new(&o);
    struct armed armed = {0, 0, 0};
    for (uint64_t i = 0; i < chaos_steps && !raft_sim_failure(s); i++)
        chaos(s, &armed, i);
    /* Heal: everyone back, a clean network; then a leader must commit on every member. */
    for (uint64_t id = 1; id <= RAFT_SIM_MAX_NODES; id++)
        raft_sim_revive(s, id);
    raft_sim_heal(s);
    raft_sim_set_faults(s, 0, 0, 1, 15);
    uint64_t healed = raft_sim_now(s);
    if (!raft_sim_run_until(s, raft_sim_converged, NULL, LIVENESS_MS))
        raft_sim_fail(s, "liveness: no leader committing on every member %d ms after healing",
                      LIVENESS_MS);
    raft_sim_check_final(s);
    const char *f = raft_sim_failure(s);
    int rc = 0;
    if (f) {
        fprintf(stderr, "sim.random: seed %llu FAILED: %s\n", (unsigned long long)seed, f);
        raft_sim_dump(s);
        fprintf(stderr, "sim.random: replay with KCP_SEED=%llu (KCP_SIM_TRACE=1 for a trace)\n",
                (unsigned long long)seed);
        rc = 1;
    }
    struct raft_sim_stats st;
    raft_sim_stats(s, &st);
    add_stats(&t->st, &st);
    t->steps += raft_sim_steps(s);
    t->sim_ms += raft_sim_now(s) - healed;
    raft_sim_free(s);
    return rc;
}

int main(void)
{
    bool trace = env_u64("KCP_SIM_TRACE", 0) != 0;
    uint64_t steps = env_u64("KCP_SIM_STEPS", 400);
    uint64_t count = env_u64("KCP_SIM_SCHEDULES", 10000);
    uint64_t base = env_u64("KCP_SIM_BASE_SEED", 1);
    uint64_t seconds = env_u64("KCP_SIM_SECONDS", 0);
    const char *one = getenv("KCP_SEED");
    if (one && *one) {
        base = strtoull(one, NULL, 0);
        count = 1;
    }
    struct totals t;
    memset(&t, 0, sizeof(t));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t done = 0;
    int rc = 0;
    for (; done < count; done++) {
        if (schedule(base + done, steps, trace, &t)) {
            rc = 1;
            done++;
            break;
        }
        if (seconds && (done & 63) == 63) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((uint64_t)(t1.tv_sec - t0.tv_sec) >= seconds) {
                done++;
                break;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("sim.random: %llu schedules from seed %llu in %.1f s (%.0f/s), %llu steps; "
           "elections %llu, proposals %llu, acked %llu, reads %llu/%llu, installs %llu, "
           "compactions %llu, crashes %llu, changes %llu, transfers %llu, messages %llu "
           "(dropped %llu); mean heal-to-converged %.0f ms\n",
           (unsigned long long)done, (unsigned long long)base, secs, done / (secs > 0 ? secs : 1),
           (unsigned long long)t.steps, (unsigned long long)t.st.elections,
           (unsigned long long)t.st.proposals, (unsigned long long)t.st.acked,
           (unsigned long long)t.st.reads_ok, (unsigned long long)t.st.reads,
           (unsigned long long)t.st.installs, (unsigned long long)t.st.compactions,
           (unsigned long long)t.st.crashes, (unsigned long long)t.st.changes,
           (unsigned long long)t.st.transfers, (unsigned long long)t.st.messages,
           (unsigned long long)t.st.dropped, done ? (double)t.sim_ms / (double)done : 0.0);
    return rc;
}
