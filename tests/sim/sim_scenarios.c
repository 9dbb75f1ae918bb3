/* sim.scenarios: hand-steered Raft situations on the simulator, each checked step by step. */
#include "sim.h"

#include <kcp/base.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ELECTION 150 /* election timeout of raft_sim_options_default */

static struct raft_sim *sim_with(unsigned voters, uint64_t seed,
                                 void (*tweak)(struct raft_sim_options *o))
{
    struct raft_sim_options o;
    raft_sim_options_default(&o, voters, seed);
    o.trace = getenv("KCP_SIM_TRACE") != NULL;
    if (tweak)
        tweak(&o);
    return raft_sim_new(&o);
}

static void ok(struct raft_sim *s)
{
    const char *f = raft_sim_failure(s);
    if (f) {
        raft_sim_dump(s);
        fail_msg("simulation check failed: %s", f);
    }
}

/* Runs until pred; a failed simulation check is reported as such, before the timeout. */
static void until(struct raft_sim *s, bool (*pred)(struct raft_sim *, void *), void *arg,
                  uint64_t ms)
{
    bool met = raft_sim_run_until(s, pred, arg, ms);
    ok(s);
    assert_true(met);
}

static bool has_leader(struct raft_sim *s, void *arg)
{
    uint64_t not = arg ? *(uint64_t *)arg : 0;
    uint64_t l = raft_sim_leader(s);
    return l && l != not ;
}

static uint64_t wait_leader(struct raft_sim *s, uint64_t not )
{
    until(s, has_leader, &not, 20 * ELECTION);
    return raft_sim_leader(s);
}

static struct kcp_raft_status status(struct raft_sim *s, uint64_t id)
{
    struct kcp_raft_status st;
    kcp_raft_status(raft_sim_core(s, id), &st);
    return st;
}

struct acked_arg {
    uint64_t value;
};

static bool is_acked(struct raft_sim *s, void *arg)
{
    return raft_sim_acked(s, ((struct acked_arg *)arg)->value);
}

/* Proposes at the leader and waits until the client is acknowledged; returns the index. */
static uint64_t write_one(struct raft_sim *s)
{
    uint64_t l = wait_leader(s, 0), index;
    struct acked_arg a;
    assert_int_equal(raft_sim_propose(s, l, &a.value, &index), 0);
    until(s, is_acked, &a, 20 * ELECTION);
    return index;
}

struct applied_arg {
    uint64_t id, index;
};

static bool applied_to(struct raft_sim *s, void *arg)
{
    struct applied_arg *a = arg;
    return raft_sim_applied(s, a->id) >= a->index;
}

static void wait_applied(struct raft_sim *s, uint64_t id, uint64_t index)
{
    struct applied_arg a = {id, index};
    until(s, applied_to, &a, 40 * ELECTION);
}

/* ---------------------------------------------------------------------------------------- */

static void basic_election(void **state)
{
    for (unsigned n = 3; n <= 5; n += 2) {
        struct raft_sim *s = sim_with(n, 1, NULL);
        uint64_t l = wait_leader(s, 0);
        unsigned leaders = 0;
        for (uint64_t id = 1; id <= n; id++)
            leaders += status(s, id).role == KCP_RAFT_LEADER;
        assert_int_equal(leaders, 1);
        uint64_t last = 0;
        for (int i = 0; i < 10; i++)
            last = write_one(s);
        for (uint64_t id = 1; id <= n; id++)
            wait_applied(s, id, last);
        assert_int_equal(raft_sim_leader(s), l);
        ok(s);
        raft_sim_free(s);
    }
}

static void leader_crash(void **state)
{
    struct raft_sim *s = sim_with(3, 2, NULL);
    uint64_t l = wait_leader(s, 0);
    write_one(s);
    raft_sim_kill(s, l);
    uint64_t t0 = raft_sim_now(s);
    uint64_t l2 = wait_leader(s, l);
    /* A follower notices within its randomized timeout, [t, 2t), plus a PreVote round. */
    assert_true(raft_sim_now(s) - t0 < 4 * ELECTION);
    uint64_t last = write_one(s);
    raft_sim_revive(s, l);
    wait_applied(s, l, last);
    assert_int_equal(status(s, l).role, KCP_RAFT_FOLLOWER);
    assert_int_equal(status(s, l).leader_id, l2);
    ok(s);
    raft_sim_free(s);
}

/* §3.6 / paper §5.4: a minority leader keeps accepting but cannot commit; on rejoin it truncates.
 */
static void partition_leader(void **state)
{
    struct raft_sim *s = sim_with(5, 3, NULL);
    uint64_t l = wait_leader(s, 0), other = l % 5 + 1;
    write_one(s);
    raft_sim_partition(s, (1u << (l - 1)) | (1u << (other - 1)));
    uint64_t lost, lost_index;
    assert_int_equal(raft_sim_propose(s, l, &lost, &lost_index), 0);
    uint64_t l2 = wait_leader(s, l);
    assert_true(status(s, l2).term > status(s, l).term || status(s, l).role != KCP_RAFT_LEADER);
    uint64_t won = write_one(s);
    raft_sim_run(s, 3 * ELECTION);
    assert_false(raft_sim_acked(s, lost));
    assert_true(status(s, l).commit < lost_index);
    /* CheckQuorum has made the old leader resign by now. */
    assert_int_not_equal(status(s, l).role, KCP_RAFT_LEADER);
    raft_sim_heal(s);
    wait_applied(s, l, won);
    wait_applied(s, other, won);
    /* Its divergent entry at lost_index was replaced by the majority's history. */
    assert_int_equal(raft_sim_value_at(s, l, lost_index), raft_sim_value_at(s, l2, lost_index));
    assert_false(raft_sim_acked(s, lost));
    ok(s);
    raft_sim_free(s);
}

/*
 * Paper Figure 8 / dissertation §3.6.2: an entry of an earlier term stored on a majority is not
 * committed by counting; a leader with a later-term entry at that index can still win and
 * overwrite it. A core that counted would have applied it, and the checks would fail.
 */
struct fig8 {
    struct raft_sim *s;
    int phase;
    uint64_t a, b, e, t1, k;
};

static bool fig8_filter(const struct kcp_raft_msg *m, void *arg)
{
    struct fig8 *f = arg;
    uint64_t t;
    if (m->type != KCP_RAFT_MSG_APPEND)
        return false;
    if (f->phase == 1) /* the majority side's new leader keeps its entry to itself */
        return m->from != f->a && m->from != f->b && m->term > f->t1;
    /*
     * Nothing past k reaches a server that holds X (it would accept it); the others still see
     * those messages, reject them and so get X on its own: X alone reaches a majority.
     */
    if (f->phase == 2 && m->append.n_entries && m->append.prev_index + m->append.n_entries > f->k)
        return raft_sim_alive(f->s, m->to) &&
               kcp_raft_term_at(raft_sim_core(f->s, m->to), f->k, &t) == 0 && t == f->t1;
    return false;
}

static void no_batches(struct raft_sim_options *o)
{
    o->raft.max_batch_entries = 1;
}

static bool majority_leader(struct raft_sim *s, void *arg)
{
    struct fig8 *f = arg;
    uint64_t l = raft_sim_leader(s);
    return l && l != f->a && l != f->b && status(s, l).term > f->t1;
}

static bool ab_leader(struct raft_sim *s, void *arg)
{
    struct fig8 *f = arg;
    for (uint64_t id = 1; id <= 5; id++)
        if ((id == f->a || id == f->b) && raft_sim_alive(s, id) &&
            status(s, id).role == KCP_RAFT_LEADER && status(s, id).term > f->t1 + 1)
            return true;
    return false;
}

static bool stored_on_majority(struct raft_sim *s, void *arg)
{
    struct fig8 *f = arg;
    unsigned n = 0;
    for (uint64_t id = 1; id <= 5; id++) {
        uint64_t t;
        if (raft_sim_alive(s, id) && kcp_raft_term_at(raft_sim_core(s, id), f->k, &t) == 0 &&
            t == f->t1)
            n++;
    }
    return n >= 4;
}

static void figure8(void **state)
{
    struct raft_sim *s = sim_with(5, 4, no_batches);
    struct fig8 f = {.s = s};
    raft_sim_set_filter(s, fig8_filter, &f);
    f.a = wait_leader(s, 0);
    f.b = f.a % 5 + 1;
    write_one(s);
    f.t1 = status(s, f.a).term;
    /* (a) A leads term t1 and stores X at k on itself and B only. */
    raft_sim_partition(s, (1u << (f.a - 1)) | (1u << (f.b - 1)));
    f.phase = 1;
    uint64_t x;
    assert_int_equal(raft_sim_propose(s, f.a, &x, &f.k), 0);
    /* (b) E wins term t2 on the other side and appends its no-op at k, unreplicated. */
    until(s, majority_leader, &f, 20 * ELECTION);
    f.e = raft_sim_leader(s);
    uint64_t t;
    assert_int_equal(kcp_raft_term_at(raft_sim_core(s, f.e), f.k, &t), 0);
    assert_true(t > f.t1);
    /* (c) E disappears; A or B leads term t3 and copies X (and nothing newer) to a majority. */
    raft_sim_heal(s);
    raft_sim_isolate(s, f.e);
    f.phase = 2;
    until(s, ab_leader, &f, 40 * ELECTION);
    uint64_t l3 = status(s, f.a).role == KCP_RAFT_LEADER ? f.a : f.b;
    until(s, stored_on_majority, &f, 20 * ELECTION);
    raft_sim_run(s, 2 * ELECTION);
    assert_true(status(s, l3).commit < f.k); /* stored on 4 of 5, still not committed */
    for (uint64_t id = 1; id <= 5; id++)
        assert_true(raft_sim_applied(s, id) < f.k);
    /* (d) The t3 leader crashes; E (last term t2 > t1) wins with the others and overwrites X. */
    raft_sim_kill(s, l3);
    uint64_t other_ab = l3 == f.a ? f.b : f.a;
    raft_sim_heal(s);
    raft_sim_isolate(s, other_ab);
    f.phase = 3;
    assert_int_equal(wait_leader(s, l3), f.e);
    uint64_t last = write_one(s);
    assert_false(raft_sim_acked(s, x));
    raft_sim_heal(s);
    raft_sim_revive(s, l3);
    for (uint64_t id = 1; id <= 5; id++)
        wait_applied(s, id, last);
    assert_int_equal(raft_sim_value_at(s, l3, f.k), raft_sim_value_at(s, f.e, f.k));
    ok(s);
    raft_sim_free(s);
}

/* §9.6: a follower cut off for a long time does not raise its term and unseat the leader. */
static void no_pre_vote(struct raft_sim_options *o)
{
    o->raft.pre_vote = false;
}

static uint64_t isolate_and_rejoin(struct raft_sim *s, uint64_t *term_before, uint64_t *f_term)
{
    uint64_t l = wait_leader(s, 0), f = l % 3 + 1;
    write_one(s);
    *term_before = status(s, l).term;
    raft_sim_isolate(s, f);
    raft_sim_run(s, 20 * ELECTION);
    *f_term = status(s, f).term;
    raft_sim_heal(s);
    raft_sim_run(s, 4 * ELECTION);
    ok(s);
    return l;
}

static void prevote_rejoin(void **state)
{
    uint64_t before, f_term;
    struct raft_sim *s = sim_with(3, 5, NULL);
    uint64_t l = isolate_and_rejoin(s, &before, &f_term);
    assert_int_equal(f_term, before); /* PreVote rounds never moved its term */
    assert_int_equal(raft_sim_leader(s), l);
    assert_int_equal(status(s, l).term, before);
    raft_sim_free(s);
    /* The same without PreVote: the rejoining follower's term deposes the leader. */
    s = sim_with(3, 5, no_pre_vote);
    l = isolate_and_rejoin(s, &before, &f_term);
    assert_true(f_term > before);
    assert_true(status(s, l).term > before);
    raft_sim_free(s);
}

/* §6.2: a leader that cannot hear a majority for an election timeout steps down by itself. */
static void check_quorum(void **state)
{
    struct raft_sim *s = sim_with(3, 6, NULL);
    uint64_t l = wait_leader(s, 0);
    write_one(s);
    raft_sim_isolate(s, l);
    raft_sim_run(s, 2 * ELECTION + 10);
    assert_int_equal(status(s, l).role, KCP_RAFT_FOLLOWER);
    assert_int_equal(status(s, l).leader_id, 0);
    uint64_t l2 = wait_leader(s, l);
    assert_int_not_equal(l2, l);
    raft_sim_heal(s);
    write_one(s);
    ok(s);
    raft_sim_free(s);
}

/* §4.2.1: a learner catches up without voting, is promoted, and then counts. */
static bool learner_caught_up(struct raft_sim *s, void *arg)
{
    uint64_t l = raft_sim_leader(s);
    struct kcp_raft_progress p;
    return l && kcp_raft_progress_get(raft_sim_core(s, l), *(uint64_t *)arg, &p) == 0 &&
           p.caught_up && status(s, l).config_index <= status(s, l).commit;
}

static void learner_promotion(void **state)
{
    struct raft_sim *s = sim_with(3, 7, NULL);
    uint64_t l = wait_leader(s, 0);
    for (int i = 0; i < 40; i++)
        write_one(s);
    uint64_t id = raft_sim_add_server(s);
    assert_int_equal(id, 4);
    assert_int_equal(raft_sim_change(s, l, KCP_RAFT_ADD_LEARNER, id), 0);
    /* One change at a time: the next waits for this one to commit. */
    assert_int_equal(raft_sim_change(s, l, KCP_RAFT_PROMOTE, id), KCP_ECONFLICT);
    until(s, learner_caught_up, &id, 20 * ELECTION);
    /* A learner never stands for election, even cut off from the leader. */
    uint64_t term = status(s, id).term;
    raft_sim_isolate(s, id);
    raft_sim_run(s, 10 * ELECTION);
    assert_int_equal(status(s, id).term, term);
    assert_int_equal(status(s, id).role, KCP_RAFT_FOLLOWER);
    raft_sim_heal(s);
    until(s, learner_caught_up, &id, 20 * ELECTION);
    l = raft_sim_leader(s);
    assert_int_equal(raft_sim_change(s, l, KCP_RAFT_PROMOTE, id), 0);
    write_one(s);
    const struct kcp_raft_server *srv = kcp_raft_config_find(status(s, l).config, id);
    assert_non_null(srv);
    assert_int_equal(srv->role, KCP_RAFT_VOTER);
    /* Four voters need three: with one original follower down, the new voter's ack counts. */
    uint64_t down = l % 3 + 1;
    raft_sim_kill(s, down);
    uint64_t last = write_one(s);
    wait_applied(s, id, last);
    ok(s);
    raft_sim_free(s);
}

/* §4.2.2: the leader removes itself, keeps leading until that commits, then steps down. */
static void remove_leader(void **state)
{
    struct raft_sim *s = sim_with(3, 8, NULL);
    uint64_t l = wait_leader(s, 0);
    write_one(s);
    assert_int_equal(raft_sim_change(s, l, KCP_RAFT_REMOVE, l), 0);
    uint64_t l2 = wait_leader(s, l);
    assert_int_not_equal(l2, l);
    assert_int_equal(status(s, l).role, KCP_RAFT_FOLLOWER);
    assert_null(kcp_raft_config_find(status(s, l2).config, l));
    uint64_t last = write_one(s);
    for (uint64_t id = 1; id <= 3; id++)
        if (id != l)
            wait_applied(s, id, last);
    /* The removed server stays quiet: its PreVotes find no takers while a leader is heard. */
    raft_sim_run(s, 10 * ELECTION);
    assert_int_equal(raft_sim_leader(s), l2);
    ok(s);
    raft_sim_free(s);
}

/* §3.10: TimeoutNow hands leadership over in about one round trip. */
static bool is_target(struct raft_sim *s, void *arg)
{
    return raft_sim_leader(s) == *(uint64_t *)arg;
}

static void transfer(void **state)
{
    struct raft_sim *s = sim_with(3, 9, NULL);
    uint64_t l = wait_leader(s, 0), target = l % 3 + 1;
    uint64_t before = write_one(s);
    uint64_t term = status(s, l).term, t0 = raft_sim_now(s);
    assert_int_equal(raft_sim_transfer(s, l, target), 0);
    /* Proposals wait while the transfer is under way. */
    if (raft_sim_leader(s) == l)
        assert_int_equal(raft_sim_propose(s, l, NULL, NULL), KCP_EUNAVAILABLE);
    until(s, is_target, &target, ELECTION);
    assert_true(raft_sim_now(s) - t0 < ELECTION); /* faster than any election timeout */
    assert_int_equal(status(s, target).term, term + 1);
    uint64_t last = write_one(s);
    assert_true(last > before);
    wait_applied(s, l, last);
    /* Unknown targets and non-leaders are refused. */
    assert_int_equal(raft_sim_transfer(s, target, 7), KCP_ENOTFOUND);
    assert_int_equal(raft_sim_transfer(s, l, target), KCP_EUNAVAILABLE);
    ok(s);
    raft_sim_free(s);
}

/* §5.1: a follower whose entries were compacted away gets the snapshot, in chunks. */
static void snapshot_install(void **state)
{
    struct raft_sim *s = sim_with(3, 10, NULL);
    uint64_t l = wait_leader(s, 0), f = l % 3 + 1, g = f % 3 + 1;
    write_one(s);
    raft_sim_kill(s, f);
    uint64_t last = 0;
    for (int i = 0; i < 60; i++)
        last = write_one(s);
    wait_applied(s, g, last);
    assert_int_equal(raft_sim_compact(s, l), 0);
    assert_int_equal(raft_sim_compact(s, g), 0);
    assert_true(status(s, l).first_index > 10);
    raft_sim_revive(s, f);
    wait_applied(s, f, last);
    struct raft_sim_stats st;
    raft_sim_stats(s, &st);
    assert_true(st.installs >= 1);
    assert_int_equal(status(s, f).snapshot_index, status(s, l).snapshot_index);
    for (uint64_t i = 1; i <= last; i++)
        assert_int_equal(raft_sim_value_at(s, f, i), raft_sim_value_at(s, l, i));
    last = write_one(s); /* and replication resumes from the snapshot */
    wait_applied(s, f, last);
    ok(s);
    raft_sim_free(s);
}

/* §6.4: ReadIndex on the leader and through a follower; never from a deposed leader. */
struct read_arg {
    uint64_t token;
};

static bool read_done(struct raft_sim *s, void *arg)
{
    uint64_t index;
    int st;
    return raft_sim_read_result(s, ((struct read_arg *)arg)->token, &index, &st);
}

static int read_at(struct raft_sim *s, uint64_t id, uint64_t *index)
{
    struct read_arg a;
    int st = raft_sim_read(s, id, &a.token);
    if (st < 0)
        return st;
    until(s, read_done, &a, 20 * ELECTION);
    raft_sim_read_result(s, a.token, index, &st);
    return st;
}

static void read_index(void **state)
{
    struct raft_sim *s = sim_with(3, 11, NULL);
    uint64_t l = wait_leader(s, 0), f = l % 3 + 1, index;
    uint64_t w = write_one(s);
    assert_int_equal(read_at(s, l, &index), 0);
    assert_true(index >= w);
    w = write_one(s);
    assert_int_equal(read_at(s, f, &index), 0);
    assert_true(index >= w);
    /* A leader cut off from the others can no longer confirm it leads: no answer but an error. */
    raft_sim_isolate(s, l);
    assert_int_not_equal(read_at(s, l, &index), 0);
    raft_sim_heal(s);
    uint64_t l2 = wait_leader(s, 0);
    w = write_one(s);
    assert_int_equal(read_at(s, l2 % 3 + 1, &index), 0);
    assert_true(index >= w);
    ok(s);
    raft_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(basic_election),    cmocka_unit_test(leader_crash),
        cmocka_unit_test(partition_leader),  cmocka_unit_test(figure8),
        cmocka_unit_test(prevote_rejoin),    cmocka_unit_test(check_quorum),
        cmocka_unit_test(learner_promotion), cmocka_unit_test(remove_leader),
        cmocka_unit_test(transfer),          cmocka_unit_test(snapshot_install),
        cmocka_unit_test(read_index),
    };
    /* KCP_SIM_ONLY=figure8 runs one scenario (with KCP_SIM_TRACE=1 for its trace). */
    if (getenv("KCP_SIM_ONLY"))
        cmocka_set_test_filter(getenv("KCP_SIM_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
