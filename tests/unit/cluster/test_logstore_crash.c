/* Crash test: a writer that _exit()s mid-way leaves a log that is one of its states, in full. */
#include "fixture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WINDOW 16 /* appends the writer keeps queued */
#define MAX_OPS 8 /* entries in one append */

/*
 * The writer's workload, a function of the seed alone, so that the parent can replay it: runs
 * of appends at the current term, and now and then a new term (its hard state saved
 * synchronously first, as Raft does) that truncates a few entries and appends in their place.
 */
struct workload {
    struct kcp_rng rng;
    uint64_t term, last;
};

struct wl_op {
    bool new_term;
    uint64_t term, truncate_from;
    size_t n;
    struct kcp_raft_entry e[MAX_OPS];
};

static void wl_init(struct workload *w, uint64_t seed)
{
    kcp_rng_seed(&w->rng, seed);
    w->term = 1;
    w->last = 0;
}

/* The next op; entry data is left unset (see wl_fill). */
static void wl_next(struct workload *w, struct wl_op *op)
{
    memset(op, 0, sizeof(*op));
    if (w->last > 4 && kcp_rng_range(&w->rng, 0, 10) == 0) {
        op->new_term = true;
        w->term++;
        op->truncate_from = w->last - kcp_rng_range(&w->rng, 0, 4);
        w->last = op->truncate_from - 1;
    }
    op->term = w->term;
    op->n = (size_t)kcp_rng_range(&w->rng, 1, MAX_OPS + 1);
    for (size_t i = 0; i < op->n; i++) {
        op->e[i].index = ++w->last;
        op->e[i].term = w->term;
        op->e[i].type = KCP_RAFT_ENTRY_NORMAL;
    }
}

/* ---- the child: appends until its timer _exit()s it, writing one byte per callback ------ */

struct child {
    struct cl_logstore *ls;
    struct workload w;
    unsigned char buf[MAX_OPS][1200];
};

static void child_issue(struct child *c);

static void child_on_appended(struct cl_logstore *ls, int status, void *data)
{
    (void)ls;
    if (status != 0) {
        fprintf(stderr, "crash-child: append failed: %d\n", status);
        _exit(3);
    }
    /* One byte per acknowledged append, in order: the parent counts them. */
    if (write(STDOUT_FILENO, "a", 1) != 1)
        _exit(4);
    child_issue(data);
}

static void child_issue(struct child *c)
{
    struct wl_op op;
    wl_next(&c->w, &op);
    for (size_t i = 0; i < op.n; i++) {
        op.e[i].data.len = fx_data_len(op.e[i].index, op.term);
        op.e[i].data.base = c->buf[i];
        fx_fill(c->buf[i], op.e[i].index, op.term, op.e[i].data.len);
    }
    if (op.new_term) {
        struct kcp_raft_hard_state hs = {op.term, 1, 0};
        if (cl_logstore_save_hard_state(c->ls, &hs, true) != 0)
            _exit(5);
    }
    if (cl_logstore_append(c->ls, op.truncate_from, op.e, op.n, child_on_appended, c) != 0)
        _exit(6);
}

static void child_on_timer(uv_timer_t *t)
{
    (void)t;
    _exit(0); /* mid-way: a batch is most likely being committed on the work pool */
}

int test_logstore_crash_child(const char *dir, uint64_t seed, uint64_t ms)
{
    static struct child c;
    static struct kcp_loop loop;
    static uv_timer_t timer;
    if (kcp_loop_init(&loop, NULL, 1) != 0 || cl_logstore_open(&c.ls, &loop, dir) != 0)
        return 2;
    wl_init(&c.w, seed);
    struct kcp_raft_hard_state hs = {1, 1, 0};
    if (cl_logstore_save_hard_state(c.ls, &hs, true) != 0)
        return 2;
    uv_timer_init(&loop.uv, &timer);
    uv_timer_start(&timer, child_on_timer, ms, 0);
    for (int i = 0; i < WINDOW; i++)
        child_issue(&c);
    uv_run(&loop.uv, UV_RUN_DEFAULT);
    return 7;
}

/* ---- the parent ------------------------------------------------------------------------- */

/* Terms of the log after each op, replayed; model[i] is the term at index i + 1. */
struct model {
    uint64_t *terms;
    size_t n, cap;
};

static void model_apply(struct model *m, const struct wl_op *op)
{
    if (op->truncate_from && op->truncate_from - 1 < m->n)
        m->n = (size_t)(op->truncate_from - 1);
    for (size_t i = 0; i < op->n; i++) {
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 1024;
            m->terms = kcp_realloc(m->terms, m->cap * sizeof(*m->terms));
        }
        m->terms[m->n++] = op->term;
    }
}

static bool model_matches(const struct model *m, const struct cl_logstore_loaded *l)
{
    if (l->n != m->n)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (l->entries[i].index != i + 1 || l->entries[i].term != m->terms[i])
            return false;
    return true;
}

static void crash_round(uint64_t seed)
{
    struct fx f;
    struct cl_logstore_loaded l;
    int fds[2];
    char seed_s[32], ms_s[32];
    uint64_t ms = 20 + seed % 280;
    fx_setup(&f, NULL);
    fx_close(&f); /* the child owns the directory until it dies */
    snprintf(seed_s, sizeof(seed_s), "%llu", (unsigned long long)seed);
    snprintf(ms_s, sizeof(ms_s), "%llu", (unsigned long long)ms);
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl("/proc/self/exe", "test_cluster", "crash-child", f.dir, seed_s, ms_s, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t acked = 0;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        acked += (size_t)n;
    }
    close(fds[0]);
    int wstatus = 0;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 0); /* its timer, not a failure */

    fx_open(&f);
    assert_int_equal(cl_logstore_load(f.ls, &l), 0);
    /* Every payload is intact. */
    uint64_t max_term = 0;
    for (size_t i = 0; i < l.n; i++) {
        fx_check_entry(&l.entries[i], i + 1, l.entries[i].term);
        if (l.entries[i].term > max_term)
            max_term = l.entries[i].term;
    }
    /* A term is durable before any entry of it. */
    assert_true(l.hs.term >= max_term);
    /* The log is the state after k appends, for some k from what was acknowledged to what
     * could have been queued: nothing acknowledged lost, nothing half-applied. */
    struct workload w;
    struct model m = {0};
    struct wl_op op;
    wl_init(&w, seed);
    size_t k = 0;
    for (; k < acked; k++) {
        wl_next(&w, &op);
        model_apply(&m, &op);
    }
    bool found = model_matches(&m, &l);
    for (; !found && k < acked + WINDOW; k++) {
        wl_next(&w, &op);
        model_apply(&m, &op);
        found = model_matches(&m, &l);
    }
    print_message("crash round seed %llu after %llu ms: %zu appends acknowledged, log of %zu "
                  "entries is the state after %zu\n",
                  (unsigned long long)seed, (unsigned long long)ms, acked, l.n, found ? k : 0);
    assert_true(found);
    free(m.terms);
    cl_logstore_loaded_free(&l);
    fx_teardown(&f);
}

static void test_exit_midway_keeps_a_prefix(void **state)
{
    (void)state;
    uint64_t seed = (uint64_t)time(NULL);
    const char *env = getenv("KCP_SEED");
    if (env)
        seed = strtoull(env, NULL, 10);
    print_message("crash test seed %llu (replay with KCP_SEED=%llu)\n", (unsigned long long)seed,
                  (unsigned long long)seed);
    for (uint64_t round = 0; round < 3; round++)
        crash_round(seed + round * 7919);
}

int test_logstore_crash_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_midway_keeps_a_prefix),
    };
    return cmocka_run_group_tests_name("cluster/logstore crash", tests, NULL, NULL);
}
