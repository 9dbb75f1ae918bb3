/* Unit tests of the Raft core's step function on small hand-built cases. */
#include <kcp/base.h>
#include <kcp/raft.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

int raft_wire_tests(void);

/* One core, the last update, and a clock the test moves. */
struct h {
    struct kcp_raft *r;
    struct kcp_raft_update u;
    uint64_t now;
    struct kcp_buf config;
};

static int step(struct h *h, struct kcp_raft_event ev)
{
    ev.now_ms = h->now;
    return kcp_raft_step(h->r, &ev, &h->u);
}

static void h_new(struct h *h, uint64_t id)
{
    memset(h, 0, sizeof(*h));
    struct kcp_raft_options o;
    kcp_raft_options_default(&o, id);
    o.election_timeout_ms = 100;
    o.heartbeat_ms = 10;
    o.compact_trailing = 2;
    o.catchup_margin = 0;
    assert_int_equal(kcp_raft_new(&h->r, &o), 0);
    h->now = 1000;
}

/* Bootstrap (raft.h): a configuration entry of `voters` voters at index 1, term 1. */
static void h_boot(struct h *h, uint64_t id, unsigned voters)
{
    h_new(h, id);
    struct kcp_raft_config c;
    memset(&c, 0, sizeof(c));
    for (unsigned i = 0; i < voters; i++) {
        c.servers[c.n].id = i + 1;
        c.servers[c.n++].role = KCP_RAFT_VOTER;
    }
    kcp_raft_config_encode(&c, &h->config);
    struct kcp_raft_entry e = {1, 1, KCP_RAFT_ENTRY_CONFIG, {h->config.data, h->config.len}};
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_START};
    ev.start.hard_state = (struct kcp_raft_hard_state){1, 0, 1};
    ev.start.entries = &e;
    ev.start.n_entries = 1;
    assert_int_equal(step(h, ev), 0);
}

static void h_free(struct h *h)
{
    kcp_raft_free(h->r);
    kcp_buf_free(&h->config);
}

static struct kcp_raft_status st(struct h *h)
{
    struct kcp_raft_status s;
    kcp_raft_status(h->r, &s);
    return s;
}

static const struct kcp_raft_msg *msg(struct h *h, enum kcp_raft_msg_type type, uint64_t to)
{
    for (size_t i = 0; i < h->u.n_msgs; i++)
        if (h->u.msgs[i].type == type && (!to || h->u.msgs[i].to == to))
            return &h->u.msgs[i];
    return NULL;
}

static int recv(struct h *h, struct kcp_raft_msg m)
{
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_RECEIVE};
    ev.receive.msg = &m;
    return step(h, ev);
}

static int tick(struct h *h)
{
    return step(h, (struct kcp_raft_event){.type = KCP_RAFT_EV_TICK});
}

static int persisted(struct h *h, uint64_t index, uint64_t term)
{
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_PERSISTED};
    ev.persisted.index = index;
    ev.persisted.term = term;
    return step(h, ev);
}

static int propose(struct h *h, const char *s)
{
    struct kcp_raft_buf b = {kcp_strdup(s), strlen(s)};
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_PROPOSE};
    ev.propose.payloads = &b;
    ev.propose.n = 1;
    int rc = step(h, ev);
    if (rc < 0)
        free(b.base); /* refused: still ours */
    return rc;
}

static struct kcp_raft_msg append(uint64_t from, uint64_t to, uint64_t term, uint64_t prev,
                                  uint64_t prev_term, uint64_t commit,
                                  const struct kcp_raft_entry *e, size_t n)
{
    struct kcp_raft_msg m = {.type = KCP_RAFT_MSG_APPEND, .from = from, .to = to, .term = term};
    m.append.prev_index = prev;
    m.append.prev_term = prev_term;
    m.append.commit = commit;
    m.append.entries = e;
    m.append.n_entries = n;
    return m;
}

static struct kcp_raft_msg vote_resp(enum kcp_raft_msg_type type, uint64_t from, uint64_t to,
                                     uint64_t term, bool granted)
{
    struct kcp_raft_msg m = {.type = type, .from = from, .to = to, .term = term};
    m.vote_resp.granted = granted;
    return m;
}

/* Node 1 of three wins term 2 through PreVote and RequestVote. */
static void h_lead3(struct h *h)
{
    h_boot(h, 1, 3);
    h->now = h->u.next_deadline_ms;
    assert_int_equal(tick(h), 0);
    assert_int_equal(h->u.role, KCP_RAFT_PRECANDIDATE);
    assert_int_equal(recv(h, vote_resp(KCP_RAFT_MSG_PREVOTE_RESP, 2, 1, 2, true)), 0);
    assert_int_equal(h->u.role, KCP_RAFT_CANDIDATE);
    assert_int_equal(recv(h, vote_resp(KCP_RAFT_MSG_VOTE_RESP, 3, 1, 2, true)), 0);
    assert_int_equal(h->u.role, KCP_RAFT_LEADER);
}

/* ---------------------------------------------------------------------------------------- */

static void test_lifecycle(void **state)
{
    struct kcp_raft_options o;
    struct kcp_raft *r;
    kcp_raft_options_default(&o, 0);
    assert_int_equal(kcp_raft_new(&r, &o), KCP_EINVAL);
    kcp_raft_options_default(&o, 1);
    o.heartbeat_ms = o.election_timeout_ms;
    assert_int_equal(kcp_raft_new(&r, &o), KCP_EINVAL);

    struct h h;
    h_new(&h, 1);
    assert_int_equal(tick(&h), KCP_EINVAL); /* START comes first */
    struct kcp_raft_entry gap[2] = {{1, 1, KCP_RAFT_ENTRY_NOOP, {0}},
                                    {1, 3, KCP_RAFT_ENTRY_NOOP, {0}}};
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_START};
    ev.start.entries = gap;
    ev.start.n_entries = 2;
    assert_int_equal(step(&h, ev), KCP_EINVAL);
    ev.start.n_entries = 1;
    ev.start.applied = 2; /* beyond the log */
    assert_int_equal(step(&h, ev), KCP_EINVAL);
    ev.start.applied = 0;
    assert_int_equal(step(&h, ev), 0);
    assert_int_equal(step(&h, ev), KCP_EINVAL); /* only once */
    /* Not in any configuration: never campaigns, just re-arms its timer. */
    h.now += 10000;
    assert_int_equal(tick(&h), 0);
    assert_int_equal(h.u.role, KCP_RAFT_FOLLOWER);
    assert_int_equal(h.u.n_msgs, 0);
    assert_true(h.u.next_deadline_ms > h.now);
    h_free(&h);
}

static void test_single_voter(void **state)
{
    struct h h;
    h_boot(&h, 1, 1);
    /* A lone voter leads at once: term 2, its vote, a no-op at 2, entry 1 to apply. */
    assert_true(h.u.role_changed);
    assert_int_equal(h.u.role, KCP_RAFT_LEADER);
    assert_int_equal(h.u.leader_id, 1);
    assert_true(h.u.hard_state_sync);
    assert_int_equal(h.u.hard_state.term, 2);
    assert_int_equal(h.u.hard_state.vote, 1);
    assert_int_equal(h.u.n_entries, 1);
    assert_int_equal(h.u.entries[0].index, 2);
    assert_int_equal(h.u.entries[0].type, KCP_RAFT_ENTRY_NOOP);
    assert_int_equal(h.u.n_committed, 1);
    assert_int_equal(h.u.committed[0].index, 1);

    assert_int_equal(propose(&h, "x"), 0);
    assert_int_equal(h.u.proposed_index, 3);
    assert_int_equal(h.u.proposed_term, 2);
    assert_int_equal(h.u.n_committed, 0); /* nothing durable yet */
    assert_int_equal(persisted(&h, 3, 2), 0);
    assert_int_equal(h.u.n_committed, 2);
    assert_int_equal(h.u.committed[1].index, 3);
    assert_memory_equal(h.u.committed[1].data.base, "x", 1);
    assert_true(h.u.hard_state_changed);
    assert_false(h.u.hard_state_sync); /* only commit moved */
    assert_int_equal(h.u.hard_state.commit, 3);

    /* A read on a lone leader is answered within the step. */
    struct kcp_raft_event rd = {.type = KCP_RAFT_EV_READ};
    rd.read.token = 7;
    assert_int_equal(step(&h, rd), 0);
    assert_int_equal(h.u.n_reads, 1);
    assert_int_equal(h.u.reads[0].token, 7);
    assert_int_equal(h.u.reads[0].index, 3);
    assert_int_equal(h.u.reads[0].status, 0);
    h_free(&h);
}

static void test_election(void **state)
{
    struct h h;
    h_boot(&h, 1, 3);
    assert_int_equal(h.u.role, KCP_RAFT_FOLLOWER);
    /* Randomized in [t, 2t). */
    assert_true(h.u.next_deadline_ms >= h.now + 100 && h.u.next_deadline_ms < h.now + 200);
    uint64_t deadline = h.u.next_deadline_ms;
    h.now = deadline - 1;
    assert_int_equal(tick(&h), 0);
    assert_int_equal(h.u.n_msgs, 0);
    h.now = deadline;
    assert_int_equal(tick(&h), 0);
    /* PreVote: asks for term 2 without moving to it. */
    assert_int_equal(h.u.role, KCP_RAFT_PRECANDIDATE);
    assert_false(h.u.hard_state_changed);
    const struct kcp_raft_msg *m = msg(&h, KCP_RAFT_MSG_PREVOTE, 2);
    assert_non_null(m);
    assert_int_equal(m->term, 2);
    assert_int_equal(m->vote.last_index, 1);
    assert_non_null(msg(&h, KCP_RAFT_MSG_PREVOTE, 3));
    assert_int_equal(st(&h).term, 1);
    /* A stale or mismatched answer changes nothing. */
    assert_int_equal(recv(&h, vote_resp(KCP_RAFT_MSG_PREVOTE_RESP, 2, 1, 1, true)), 0);
    assert_int_equal(st(&h).role, KCP_RAFT_PRECANDIDATE);
    assert_int_equal(recv(&h, vote_resp(KCP_RAFT_MSG_PREVOTE_RESP, 2, 1, 2, true)), 0);
    assert_int_equal(h.u.role, KCP_RAFT_CANDIDATE);
    assert_true(h.u.hard_state_sync);
    assert_int_equal(h.u.hard_state.term, 2);
    assert_int_equal(h.u.hard_state.vote, 1);
    assert_non_null(msg(&h, KCP_RAFT_MSG_VOTE, 3));
    assert_int_equal(recv(&h, vote_resp(KCP_RAFT_MSG_VOTE_RESP, 2, 1, 2, true)), 0);
    assert_int_equal(h.u.role, KCP_RAFT_LEADER);
    assert_int_equal(h.u.n_entries, 1);
    assert_int_equal(h.u.entries[0].type, KCP_RAFT_ENTRY_NOOP);
    m = msg(&h, KCP_RAFT_MSG_APPEND, 3);
    assert_non_null(m);
    assert_int_equal(m->append.prev_index, 1);
    assert_int_equal(m->append.n_entries, 1);
    assert_int_equal(m->append.entries[0].index, 2);
    h_free(&h);
}

static void test_commit_needs_durable_majority(void **state)
{
    struct h h;
    h_lead3(&h);
    struct kcp_raft_msg ok = {.type = KCP_RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 2};
    ok.append_resp.index = 2;
    assert_int_equal(recv(&h, ok), 0);
    assert_int_equal(st(&h).commit, 1); /* the leader's own copy is not durable yet */
    assert_int_equal(persisted(&h, 2, 2), 0);
    assert_int_equal(st(&h).commit, 2);
    assert_int_equal(h.u.n_committed, 1);
    assert_int_equal(h.u.committed[0].index, 2);
    /* A success for more than the leader holds is ignored. */
    ok.append_resp.index = 9;
    assert_int_equal(recv(&h, ok), 0);
    assert_int_equal(st(&h).commit, 2);
    h_free(&h);
}

/* A commit index that moves reaches every follower in the same step, not with the next write. */
static void test_commit_notified(void **state)
{
    struct h h;
    h_lead3(&h);
    struct kcp_raft_msg ok = {.type = KCP_RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 2};
    ok.append_resp.index = 2;
    assert_int_equal(recv(&h, ok), 0);
    assert_int_equal(st(&h).commit, 1);
    ok.from = 3;
    assert_int_equal(recv(&h, ok), 0); /* the no-op commits (two followers are a majority) */
    assert_int_equal(st(&h).commit, 2);
    for (uint64_t to = 2; to <= 3; to++) {
        const struct kcp_raft_msg *m = msg(&h, KCP_RAFT_MSG_APPEND, to);
        assert_non_null(m);
        assert_int_equal(m->append.commit, 2);
        assert_int_equal(m->append.n_entries, 0);
        assert_int_equal(m->append.prev_index, 2);
    }
    assert_int_equal(persisted(&h, 2, 2), 0);
    assert_null(msg(&h, KCP_RAFT_MSG_APPEND, 0));
    assert_int_equal(propose(&h, "x"), 0);
    assert_int_equal(persisted(&h, 3, 2), 0);
    assert_null(msg(&h, KCP_RAFT_MSG_APPEND, 0)); /* nothing new is committed */
    ok.from = 2;
    ok.append_resp.index = 3;
    assert_int_equal(recv(&h, ok), 0);
    assert_int_equal(st(&h).commit, 3);
    for (uint64_t to = 2; to <= 3; to++) {
        const struct kcp_raft_msg *m = msg(&h, KCP_RAFT_MSG_APPEND, to);
        assert_non_null(m);
        assert_int_equal(m->append.commit, 3);
        assert_int_equal(m->append.n_entries, 0);
    }
    ok.from = 3;
    assert_int_equal(recv(&h, ok), 0);
    assert_null(msg(&h, KCP_RAFT_MSG_APPEND, 0)); /* already told */
    h_free(&h);
}

static void test_batching_and_pipelining(void **state)
{
    struct h h;
    h_lead3(&h);
    struct kcp_raft_buf b[5];
    for (int i = 0; i < 5; i++)
        b[i] = (struct kcp_raft_buf){kcp_strdup("p"), 1};
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_PROPOSE};
    ev.propose.payloads = b;
    ev.propose.n = 5;
    assert_int_equal(step(&h, ev), 0);
    assert_int_equal(h.u.proposed_index, 3);
    assert_int_equal(h.u.n_entries, 5);
    assert_null(msg(&h, KCP_RAFT_MSG_APPEND, 2)); /* probing: one message at a time */
    struct kcp_raft_msg ok = {.type = KCP_RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 2};
    ok.append_resp.index = 2;
    assert_int_equal(recv(&h, ok), 0);
    const struct kcp_raft_msg *m = msg(&h, KCP_RAFT_MSG_APPEND, 2);
    assert_non_null(m); /* matched: the five go in one batch */
    assert_int_equal(m->append.prev_index, 2);
    assert_int_equal(m->append.n_entries, 5);
    /* Replicating: the next proposal goes out before the batch is acknowledged. */
    assert_int_equal(propose(&h, "q"), 0);
    m = msg(&h, KCP_RAFT_MSG_APPEND, 2);
    assert_non_null(m);
    assert_int_equal(m->append.prev_index, 7);
    assert_int_equal(m->append.n_entries, 1);
    assert_null(msg(&h, KCP_RAFT_MSG_APPEND, 3)); /* 3 is still being probed */
    /* A rejection sends the follower back to probing from its hint. */
    struct kcp_raft_msg no = ok;
    no.append_resp.reject = true;
    no.append_resp.index = 7;
    no.append_resp.hint = 4;
    assert_int_equal(recv(&h, no), 0);
    m = msg(&h, KCP_RAFT_MSG_APPEND, 2);
    assert_non_null(m);
    assert_int_equal(m->append.prev_index, 4);
    h_free(&h);
}

/* §3.6.2: the leader of term 3 holding term-2 entries commits them only with its own. */
static void test_commit_current_term_only(void **state)
{
    struct h h;
    h_new(&h, 1);
    struct kcp_raft_config c = {.n = 3};
    for (int i = 0; i < 3; i++) {
        c.servers[i].id = (uint64_t)i + 1;
        c.servers[i].role = KCP_RAFT_VOTER;
    }
    kcp_raft_config_encode(&c, &h.config);
    struct kcp_raft_entry e[3] = {{1, 1, KCP_RAFT_ENTRY_CONFIG, {h.config.data, h.config.len}},
                                  {2, 2, KCP_RAFT_ENTRY_NORMAL, {"a", 1}},
                                  {2, 3, KCP_RAFT_ENTRY_NORMAL, {"b", 1}}};
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_START};
    ev.start.hard_state = (struct kcp_raft_hard_state){2, 0, 1};
    ev.start.entries = e;
    ev.start.n_entries = 3;
    assert_int_equal(step(&h, ev), 0);
    h.now = h.u.next_deadline_ms;
    tick(&h);
    recv(&h, vote_resp(KCP_RAFT_MSG_PREVOTE_RESP, 2, 1, 3, true));
    recv(&h, vote_resp(KCP_RAFT_MSG_VOTE_RESP, 2, 1, 3, true));
    assert_int_equal(h.u.role, KCP_RAFT_LEADER);
    assert_int_equal(h.u.entries[0].index, 4); /* the no-op of term 3 */
    struct kcp_raft_msg ok = {.type = KCP_RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 3};
    ok.append_resp.index = 3;
    assert_int_equal(recv(&h, ok), 0);
    /* Entries 2 and 3 are on a majority (1 and 2) but of term 2: not committed by counting. */
    assert_int_equal(st(&h).commit, 1);
    assert_int_equal(persisted(&h, 4, 3), 0);
    assert_int_equal(st(&h).commit, 1);
    ok.append_resp.index = 4;
    assert_int_equal(recv(&h, ok), 0);
    assert_int_equal(st(&h).commit, 4);
    assert_int_equal(h.u.n_committed, 3);
    h_free(&h);
}

static void test_follower_append(void **state)
{
    struct h h;
    h_boot(&h, 2, 3);
    struct kcp_raft_entry e[2] = {{2, 2, KCP_RAFT_ENTRY_NORMAL, {"a", 1}},
                                  {2, 3, KCP_RAFT_ENTRY_NORMAL, {"b", 1}}};
    assert_int_equal(recv(&h, append(1, 2, 2, 1, 1, 3, e, 2)), 0);
    assert_true(h.u.role_changed);
    assert_int_equal(h.u.leader_id, 1);
    assert_true(h.u.hard_state_sync); /* term 2 */
    assert_int_equal(h.u.n_entries, 2);
    assert_int_equal(h.u.truncate_from, 0);
    /* No acknowledgement before the entries are durable (§3.8). */
    assert_null(msg(&h, KCP_RAFT_MSG_APPEND_RESP, 1));
    assert_int_equal(h.u.n_committed, 0);
    assert_int_equal(persisted(&h, 3, 2), 0);
    const struct kcp_raft_msg *m = msg(&h, KCP_RAFT_MSG_APPEND_RESP, 1);
    assert_non_null(m);
    assert_false(m->append_resp.reject);
    assert_int_equal(m->append_resp.index, 3);
    assert_int_equal(h.u.n_committed, 2); /* commit 3 arrived with the entries */
    /* A duplicate is acknowledged at once, without rewriting anything. */
    assert_int_equal(recv(&h, append(1, 2, 2, 1, 1, 3, e, 2)), 0);
    assert_int_equal(h.u.n_entries, 0);
    assert_non_null(msg(&h, KCP_RAFT_MSG_APPEND_RESP, 1));
    /* A gap: rejected with a hint at our last index. */
    assert_int_equal(recv(&h, append(1, 2, 2, 7, 2, 3, NULL, 0)), 0);
    m = msg(&h, KCP_RAFT_MSG_APPEND_RESP, 1);
    assert_true(m->append_resp.reject);
    assert_int_equal(m->append_resp.index, 7);
    assert_int_equal(m->append_resp.hint, 3);
    /* A stale-term message gets our term back. */
    assert_int_equal(recv(&h, append(3, 2, 1, 1, 1, 1, NULL, 0)), 0);
    m = msg(&h, KCP_RAFT_MSG_APPEND_RESP, 3);
    assert_non_null(m);
    assert_int_equal(m->term, 2);
    assert_int_equal(st(&h).leader_id, 1);
    h_free(&h);
}

static void test_conflict_truncates(void **state)
{
    struct h h;
    h_boot(&h, 2, 3);
    struct kcp_raft_entry old[2] = {{2, 2, KCP_RAFT_ENTRY_NORMAL, {"a", 1}},
                                    {2, 3, KCP_RAFT_ENTRY_NORMAL, {"b", 1}}};
    recv(&h, append(1, 2, 2, 1, 1, 1, old, 2));
    persisted(&h, 3, 2);
    /* A mismatching prev term: rejected, hint before the whole conflicting term. */
    assert_int_equal(recv(&h, append(3, 2, 3, 3, 3, 1, NULL, 0)), 0);
    const struct kcp_raft_msg *m = msg(&h, KCP_RAFT_MSG_APPEND_RESP, 3);
    assert_true(m->append_resp.reject);
    assert_int_equal(m->append_resp.hint, 1);
    struct kcp_raft_entry neu = {3, 2, KCP_RAFT_ENTRY_NORMAL, {"c", 1}};
    assert_int_equal(recv(&h, append(3, 2, 3, 1, 1, 1, &neu, 1)), 0);
    assert_int_equal(h.u.truncate_from, 2);
    assert_int_equal(h.u.n_entries, 1);
    assert_int_equal(st(&h).last_index, 2);
    assert_int_equal(st(&h).last_term, 3);
    assert_int_equal(st(&h).persisted, 1);
    /* The old write's report names an entry the log no longer has: ignored. */
    assert_int_equal(persisted(&h, 3, 2), 0);
    assert_int_equal(st(&h).persisted, 1);
    assert_int_equal(persisted(&h, 2, 3), 0);
    assert_int_equal(st(&h).persisted, 2);
    assert_int_equal(msg(&h, KCP_RAFT_MSG_APPEND_RESP, 3)->append_resp.index, 2);
    h_free(&h);
}

static void test_votes(void **state)
{
    struct h h;
    h_boot(&h, 2, 3);
    struct kcp_raft_msg v = {.type = KCP_RAFT_MSG_VOTE, .from = 1, .to = 2, .term = 2};
    v.vote.last_index = 1;
    v.vote.last_term = 1;
    assert_int_equal(recv(&h, v), 0);
    assert_true(msg(&h, KCP_RAFT_MSG_VOTE_RESP, 1)->vote_resp.granted);
    assert_true(h.u.hard_state_sync);
    assert_int_equal(h.u.hard_state.vote, 1);
    v.from = 3; /* one vote per term */
    assert_int_equal(recv(&h, v), 0);
    assert_false(msg(&h, KCP_RAFT_MSG_VOTE_RESP, 3)->vote_resp.granted);
    v.from = 1; /* the same candidate again: yes */
    assert_int_equal(recv(&h, v), 0);
    assert_true(msg(&h, KCP_RAFT_MSG_VOTE_RESP, 1)->vote_resp.granted);
    /* §3.6.1: a candidate with a less up-to-date log is refused, in a new term too. */
    v.from = 3;
    v.term = 3;
    v.vote.last_index = 0;
    v.vote.last_term = 0;
    assert_int_equal(recv(&h, v), 0);
    assert_false(msg(&h, KCP_RAFT_MSG_VOTE_RESP, 3)->vote_resp.granted);
    assert_int_equal(st(&h).term, 3);
    assert_int_equal(st(&h).vote, 0);
    h_free(&h);
}

static void test_lease(void **state)
{
    struct h h;
    h_boot(&h, 2, 3);
    recv(&h, append(1, 2, 2, 1, 1, 1, NULL, 0));
    /* While the leader is heard from, PreVotes and votes from others go unanswered (§4.2.3). */
    struct kcp_raft_msg pv = {.type = KCP_RAFT_MSG_PREVOTE, .from = 3, .to = 2, .term = 3};
    pv.vote.last_index = 5;
    pv.vote.last_term = 2;
    assert_int_equal(recv(&h, pv), 0);
    assert_int_equal(h.u.n_msgs, 0);
    assert_int_equal(st(&h).term, 2);
    /* Unless the leader itself asked for it (transfer). */
    pv.vote.transfer = true;
    assert_int_equal(recv(&h, pv), 0);
    assert_true(msg(&h, KCP_RAFT_MSG_PREVOTE_RESP, 3)->vote_resp.granted);
    assert_int_equal(st(&h).term, 2); /* PreVote never moves the term */
    pv.vote.transfer = false;
    h.now += 100;
    assert_int_equal(recv(&h, pv), 0);
    const struct kcp_raft_msg *m = msg(&h, KCP_RAFT_MSG_PREVOTE_RESP, 3);
    assert_true(m->vote_resp.granted);
    assert_int_equal(m->term, 3);
    h_free(&h);
}

static void test_check_quorum(void **state)
{
    struct h h;
    h_lead3(&h);
    /* Heard from nobody for an election timeout: resign. */
    for (int i = 0; i < 20 && st(&h).role == KCP_RAFT_LEADER; i++) {
        h.now = h.u.next_deadline_ms;
        tick(&h);
    }
    assert_int_equal(st(&h).role, KCP_RAFT_FOLLOWER);
    assert_int_equal(st(&h).leader_id, 0);
    assert_true(h.u.role_changed);
    h_free(&h);
}

static void test_refusals(void **state)
{
    struct h h;
    h_boot(&h, 2, 3);
    recv(&h, append(1, 2, 2, 1, 1, 1, NULL, 0));
    assert_int_equal(propose(&h, "x"), KCP_EUNAVAILABLE);
    assert_int_equal(h.u.leader_id, 1); /* the hint */
    assert_int_equal(h.u.n_msgs, 0);
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_CHANGE};
    ev.change.type = KCP_RAFT_ADD_LEARNER;
    ev.change.id = 4;
    assert_int_equal(step(&h, ev), KCP_EUNAVAILABLE);
    ev = (struct kcp_raft_event){.type = KCP_RAFT_EV_TRANSFER};
    assert_int_equal(step(&h, ev), KCP_EUNAVAILABLE);
    ev = (struct kcp_raft_event){.type = KCP_RAFT_EV_COMPACT};
    ev.compact.index = 5;
    assert_int_equal(step(&h, ev), KCP_EINVAL);
    /* Indexes and terms near UINT64_MAX are ignored: no arithmetic on them can wrap. */
    struct kcp_raft_config c = {.n = 1};
    c.servers[0] = (struct kcp_raft_server){1, KCP_RAFT_VOTER, ""};
    struct kcp_raft_msg m = {.type = KCP_RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 2};
    m.snapshot.index = UINT64_MAX;
    m.snapshot.term = 2;
    m.snapshot.last = true;
    m.snapshot.config = &c;
    assert_int_equal(recv(&h, m), 0);
    assert_int_equal(h.u.n_chunks, 0);
    assert_int_equal(recv(&h, append(1, 2, 2, UINT64_MAX - 1, 2, 0, NULL, 0)), 0);
    assert_int_equal(h.u.n_msgs, 0);
    assert_int_equal(recv(&h, append(1, 2, UINT64_MAX, 1, 1, 0, NULL, 0)), 0);
    assert_int_equal(st(&h).term, 2);
    h_free(&h);
}

static int change(struct h *h, enum kcp_raft_change_type type, uint64_t id, const char *addr)
{
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_CHANGE};
    ev.change.type = type;
    ev.change.id = id;
    ev.change.address = addr;
    return step(h, ev);
}

static void test_membership(void **state)
{
    struct h h;
    h_boot(&h, 1, 1);
    /* Not before an entry of the leader's term is committed (§4.1). */
    assert_int_equal(change(&h, KCP_RAFT_ADD_LEARNER, 2, "b"), KCP_ECONFLICT);
    persisted(&h, 2, 2);
    assert_int_equal(change(&h, KCP_RAFT_ADD_LEARNER, 1, "a"), KCP_EEXIST);
    assert_int_equal(change(&h, KCP_RAFT_ADD_LEARNER, 0, "a"), KCP_EINVAL);
    assert_int_equal(change(&h, KCP_RAFT_REMOVE, 9, NULL), KCP_ENOTFOUND);
    assert_int_equal(change(&h, KCP_RAFT_PROMOTE, 9, NULL), KCP_ENOTFOUND);
    assert_int_equal(change(&h, KCP_RAFT_REMOVE, 1, NULL), KCP_EINVAL); /* the last voter */
    char longaddr[KCP_RAFT_ADDR_MAX + 1];
    memset(longaddr, 'a', KCP_RAFT_ADDR_MAX);
    longaddr[KCP_RAFT_ADDR_MAX] = '\0';
    assert_int_equal(change(&h, KCP_RAFT_ADD_LEARNER, 2, longaddr), KCP_EINVAL);
    assert_int_equal(change(&h, KCP_RAFT_ADD_LEARNER, 2, "10.0.0.2:6443"), 0);
    assert_int_equal(h.u.proposed_index, 3);
    assert_int_equal(h.u.entries[0].type, KCP_RAFT_ENTRY_CONFIG);
    /* In effect when appended, before it commits; the learner gets the log. */
    const struct kcp_raft_server *s = kcp_raft_config_find(st(&h).config, 2);
    assert_non_null(s);
    assert_int_equal(s->role, KCP_RAFT_LEARNER);
    assert_string_equal(s->address, "10.0.0.2:6443");
    assert_non_null(msg(&h, KCP_RAFT_MSG_APPEND, 2));
    /* One at a time. */
    assert_int_equal(change(&h, KCP_RAFT_PROMOTE, 2, NULL), KCP_ECONFLICT);
    persisted(&h, 3, 2);
    assert_int_equal(st(&h).commit, 3); /* learners do not count */
    /* Not caught up: the learner has nothing yet. */
    assert_int_equal(change(&h, KCP_RAFT_PROMOTE, 2, NULL), KCP_ECONFLICT);
    struct kcp_raft_progress p;
    assert_int_equal(kcp_raft_progress_get(h.r, 2, &p), 0);
    assert_false(p.caught_up);
    struct kcp_raft_msg ok = {.type = KCP_RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 2};
    ok.append_resp.index = 3;
    assert_int_equal(recv(&h, ok), 0);
    assert_int_equal(h.u.n_caught_up, 1);
    assert_int_equal(h.u.caught_up[0], 2);
    assert_int_equal(change(&h, KCP_RAFT_PROMOTE, 2, NULL), 0);
    assert_int_equal(kcp_raft_config_find(st(&h).config, 2)->role, KCP_RAFT_VOTER);
    /* Now two voters: commitment needs the new one. */
    persisted(&h, 4, 2);
    assert_int_equal(st(&h).commit, 3);
    ok.append_resp.index = 4;
    recv(&h, ok);
    assert_int_equal(st(&h).commit, 4);
    h_free(&h);
}

static void test_compact(void **state)
{
    struct h h;
    h_boot(&h, 1, 1);
    for (int i = 0; i < 6; i++)
        propose(&h, "v");
    persisted(&h, 8, 2);
    assert_int_equal(st(&h).applied, 8);
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_COMPACT};
    ev.compact.index = 9;
    assert_int_equal(step(&h, ev), KCP_EINVAL);
    ev.compact.index = 6;
    assert_int_equal(step(&h, ev), 0);
    assert_true(h.u.compacted);
    assert_int_equal(h.u.snapshot.index, 6);
    assert_int_equal(h.u.snapshot.term, 2);
    assert_int_equal(h.u.snapshot.config->n, 1);
    assert_int_equal(h.u.log_first, 5); /* two trailing entries kept */
    uint64_t t;
    assert_int_equal(kcp_raft_term_at(h.r, 4, &t), KCP_ENOTFOUND);
    assert_int_equal(kcp_raft_term_at(h.r, 5, &t), 0);
    assert_int_equal(st(&h).snapshot_index, 6);
    h_free(&h);
}

static void test_snapshot_receive(void **state)
{
    struct h h;
    h_new(&h, 2);
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_START};
    assert_int_equal(step(&h, ev), 0); /* a new, empty server */
    struct kcp_raft_config c = {.n = 2};
    c.servers[0] = (struct kcp_raft_server){1, KCP_RAFT_VOTER, "a"};
    c.servers[1] = (struct kcp_raft_server){2, KCP_RAFT_LEARNER, "b"};
    struct kcp_raft_msg m = {.type = KCP_RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 2};
    m.snapshot.index = 10;
    m.snapshot.term = 2;
    m.snapshot.config = &c;
    m.snapshot.data = (struct kcp_raft_buf){"abc", 3};
    assert_int_equal(recv(&h, m), 0);
    assert_int_equal(h.u.n_chunks, 1);
    assert_int_equal(h.u.chunks[0].offset, 0);
    assert_memory_equal(h.u.chunks[0].data.base, "abc", 3);
    assert_int_equal(msg(&h, KCP_RAFT_MSG_SNAPSHOT_RESP, 1)->snapshot_resp.offset, 3);
    /* Out of order: not staged; the leader is told where to resume. */
    m.snapshot.offset = 5;
    assert_int_equal(recv(&h, m), 0);
    assert_int_equal(h.u.n_chunks, 0);
    assert_int_equal(msg(&h, KCP_RAFT_MSG_SNAPSHOT_RESP, 1)->snapshot_resp.offset, 3);
    m.snapshot.offset = 3;
    m.snapshot.last = true;
    m.snapshot.data = (struct kcp_raft_buf){"de", 2};
    assert_int_equal(recv(&h, m), 0);
    assert_int_equal(h.u.n_chunks, 1);
    assert_true(h.u.chunks[0].last);
    assert_null(msg(&h, KCP_RAFT_MSG_SNAPSHOT_RESP, 1)); /* answered once durable */
    /* Appends wait while the install is pending. */
    assert_int_equal(recv(&h, append(1, 2, 2, 10, 2, 10, NULL, 0)), 0);
    assert_int_equal(h.u.n_msgs, 0);
    ev = (struct kcp_raft_event){.type = KCP_RAFT_EV_SNAPSHOT_PERSISTED};
    ev.persisted.index = 10;
    ev.persisted.term = 2;
    assert_int_equal(step(&h, ev), 0);
    assert_true(h.u.install);
    assert_int_equal(h.u.install_meta.index, 10);
    assert_int_equal(h.u.install_meta.config->n, 2);
    assert_true(msg(&h, KCP_RAFT_MSG_SNAPSHOT_RESP, 1)->snapshot_resp.done);
    struct kcp_raft_status s = st(&h);
    assert_int_equal(s.snapshot_index, 10);
    assert_int_equal(s.commit, 10);
    assert_int_equal(s.applied, 10);
    assert_int_equal(s.first_index, 11);
    assert_int_equal(s.config->n, 2);
    h_free(&h);
}

static void test_reads_on_follower(void **state)
{
    struct h h;
    h_boot(&h, 2, 3);
    struct kcp_raft_event rd = {.type = KCP_RAFT_EV_READ};
    rd.read.token = 1;
    assert_int_equal(step(&h, rd), KCP_EUNAVAILABLE); /* no leader known */
    recv(&h, append(1, 2, 2, 1, 1, 1, NULL, 0));
    assert_int_equal(step(&h, rd), 0);
    assert_int_equal(msg(&h, KCP_RAFT_MSG_READ_INDEX, 1)->read_index.token, 1);
    struct kcp_raft_msg resp = {
        .type = KCP_RAFT_MSG_READ_INDEX_RESP, .from = 1, .to = 2, .term = 2};
    resp.read_index_resp.token = 1;
    resp.read_index_resp.index = 5;
    resp.read_index_resp.ok = true;
    assert_int_equal(recv(&h, resp), 0);
    assert_int_equal(h.u.n_reads, 1);
    assert_int_equal(h.u.reads[0].index, 5);
    assert_int_equal(h.u.reads[0].status, 0);
    assert_int_equal(recv(&h, resp), 0); /* a duplicate answers nothing */
    assert_int_equal(h.u.n_reads, 0);
    /* A new leader fails the reads forwarded to the old one. */
    rd.read.token = 2;
    step(&h, rd);
    recv(&h, append(3, 2, 3, 1, 1, 1, NULL, 0));
    assert_int_equal(h.u.n_reads, 1);
    assert_int_equal(h.u.reads[0].status, KCP_EUNAVAILABLE);
    /* And an unanswered one times out. */
    rd.read.token = 3;
    step(&h, rd);
    h.now += 2000;
    recv(&h, append(3, 2, 3, 1, 1, 1, NULL, 0)); /* keep the leader */
    tick(&h);
    assert_int_equal(h.u.n_reads, 1);
    assert_int_equal(h.u.reads[0].token, 3);
    assert_int_equal(h.u.reads[0].status, KCP_ETIMEOUT);
    h_free(&h);
}

static void test_read_on_leader(void **state)
{
    struct h h;
    h_lead3(&h);
    struct kcp_raft_event rd = {.type = KCP_RAFT_EV_READ};
    rd.read.token = 9;
    assert_int_equal(step(&h, rd), 0);
    const struct kcp_raft_msg *hb = msg(&h, KCP_RAFT_MSG_HEARTBEAT, 2);
    assert_non_null(hb);
    uint64_t seq = hb->heartbeat.seq;
    struct kcp_raft_msg r = {.type = KCP_RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = 2};
    r.heartbeat_resp.seq = seq;
    assert_int_equal(recv(&h, r), 0);
    /* Confirmed by a quorum, but the term's no-op is not committed yet (§6.4): wait. */
    assert_int_equal(h.u.n_reads, 0);
    persisted(&h, 2, 2);
    struct kcp_raft_msg ok = {.type = KCP_RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 2};
    ok.append_resp.index = 2;
    assert_int_equal(recv(&h, ok), 0);
    assert_int_equal(h.u.n_reads, 1);
    assert_int_equal(h.u.reads[0].token, 9);
    assert_int_equal(h.u.reads[0].index, 2);
    /* A follower's read: answered with a message once a quorum confirms the new round. */
    struct kcp_raft_msg fr = {.type = KCP_RAFT_MSG_READ_INDEX, .from = 3, .to = 1, .term = 2};
    fr.read_index.token = 4;
    assert_int_equal(recv(&h, fr), 0);
    assert_null(msg(&h, KCP_RAFT_MSG_READ_INDEX_RESP, 3));
    r.heartbeat_resp.seq = seq; /* an answer to an older round does not count */
    assert_int_equal(recv(&h, r), 0);
    assert_null(msg(&h, KCP_RAFT_MSG_READ_INDEX_RESP, 3));
    r.heartbeat_resp.seq = seq + 1;
    assert_int_equal(recv(&h, r), 0);
    const struct kcp_raft_msg *m = msg(&h, KCP_RAFT_MSG_READ_INDEX_RESP, 3);
    assert_non_null(m);
    assert_true(m->read_index_resp.ok);
    assert_int_equal(m->read_index_resp.index, 2);
    h_free(&h);
}

static void test_transfer(void **state)
{
    struct h h;
    h_lead3(&h);
    persisted(&h, 2, 2);
    struct kcp_raft_event ev = {.type = KCP_RAFT_EV_TRANSFER};
    ev.transfer.target = 1;
    assert_int_equal(step(&h, ev), KCP_EINVAL);
    ev.transfer.target = 5;
    assert_int_equal(step(&h, ev), KCP_ENOTFOUND);
    ev.transfer.target = 3;
    assert_int_equal(step(&h, ev), 0);
    assert_null(msg(&h, KCP_RAFT_MSG_TIMEOUT_NOW, 3)); /* not caught up yet */
    assert_int_equal(propose(&h, "x"), KCP_EUNAVAILABLE);
    struct kcp_raft_msg ok = {.type = KCP_RAFT_MSG_APPEND_RESP, .from = 3, .to = 1, .term = 2};
    ok.append_resp.index = 2;
    assert_int_equal(recv(&h, ok), 0);
    assert_non_null(msg(&h, KCP_RAFT_MSG_TIMEOUT_NOW, 3));
    /* The target, on TimeoutNow, stands at once without PreVote. */
    struct h t;
    h_boot(&t, 3, 3);
    recv(&t, append(1, 3, 2, 1, 1, 1, NULL, 0));
    struct kcp_raft_msg tn = {.type = KCP_RAFT_MSG_TIMEOUT_NOW, .from = 1, .to = 3, .term = 2};
    assert_int_equal(recv(&t, tn), 0);
    assert_int_equal(t.u.role, KCP_RAFT_CANDIDATE);
    assert_int_equal(t.u.term, 3);
    assert_true(msg(&t, KCP_RAFT_MSG_VOTE, 2)->vote.transfer);
    h_free(&t);
    /* Abandoned after an election timeout: proposals flow again. */
    h.now += 200;
    tick(&h);
    ok.from = 2;
    recv(&h, ok);
    if (st(&h).role == KCP_RAFT_LEADER)
        assert_int_equal(propose(&h, "x"), 0);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_single_voter),
        cmocka_unit_test(test_election),
        cmocka_unit_test(test_commit_needs_durable_majority),
        cmocka_unit_test(test_commit_notified),
        cmocka_unit_test(test_batching_and_pipelining),
        cmocka_unit_test(test_commit_current_term_only),
        cmocka_unit_test(test_follower_append),
        cmocka_unit_test(test_conflict_truncates),
        cmocka_unit_test(test_votes),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_check_quorum),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_membership),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_snapshot_receive),
        cmocka_unit_test(test_reads_on_follower),
        cmocka_unit_test(test_read_on_leader),
        cmocka_unit_test(test_transfer),
    };
    int failed = cmocka_run_group_tests_name("raft core", tests, NULL, NULL);
    return failed + raft_wire_tests();
}
