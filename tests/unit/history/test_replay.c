/* History on a real store and loop: live recording, catch-up after lost entries, trims, and
 * retention beside the API's reads. */
#include "th.h"

#include "history_int.h"

#include <kcp/history.h>
#include <kcp/loop.h>

#include <stdlib.h>
#include <string.h>

struct rx {
    char dir[64];
    char *store_dir, *repo;
    struct kcp_loop loop;
    struct kcp_store *s;
    struct kcp_history *h;
    struct kcp_history_options hopts;
};

static void flag_on(void *data)
{
    *(bool *)data = true;
}

static void run_until(struct rx *x, const bool *flag)
{
    while (!*flag)
        if (!uv_run(&x->loop.uv, UV_RUN_ONCE) && !*flag)
            fail_msg("loop ran dry");
}

static void store_open(struct rx *x, bool retain)
{
    struct kcp_store_options o;
    kcp_store_options_default(&o);
    o.retain_entries = retain;
    assert_int_equal(kcp_store_open(&x->s, &x->loop, x->store_dir, &o), 0);
}

static void store_close(struct rx *x)
{
    bool done = false;
    kcp_store_close(x->s, flag_on, &done);
    run_until(x, &done);
    x->s = NULL;
}

static void history_open(struct rx *x)
{
    assert_int_equal(kcp_history_open(&x->h, &x->loop, x->s, x->repo, &x->hopts), 0);
}

static void history_close(struct rx *x)
{
    bool done = false;
    kcp_history_close(x->h, flag_on, &done);
    run_until(x, &done);
    x->h = NULL;
}

/* Runs the loop until history has recorded the store's revision. */
static void wait_recorded(struct rx *x)
{
    struct kcp_history_stats st;
    for (int i = 0; i < 100000; i++) {
        kcp_history_stats(x->h, &st);
        assert_int_equal(st.failed, 0);
        if (st.recorded >= kcp_store_revision(x->s) && !st.queued)
            return;
        uv_run(&x->loop.uv, UV_RUN_ONCE);
    }
    fail_msg("history did not catch up");
}

static void setup(struct rx *x)
{
    memset(x, 0, sizeof(*x));
    th_tmpdir(x->dir);
    x->store_dir = kcp_sprintf("%s/store", x->dir);
    x->repo = kcp_sprintf("%s/history.git", x->dir);
    kcp_history_options_default(&x->hopts);
    assert_int_equal(kcp_loop_init(&x->loop, NULL, 1), 0);
}

static void teardown(struct rx *x)
{
    if (x->h)
        history_close(x);
    if (x->s)
        store_close(x);
    uv_run(&x->loop.uv, UV_RUN_DEFAULT);
    assert_int_equal(kcp_loop_close(&x->loop), 0);
    th_rmrf(x->dir);
    free(x->store_dir);
    free(x->repo);
}

static void on_written(struct kcp_store_req *req, int status, const struct kcp_store_result *r)
{
    assert_int_equal(status, 0);
    (*(int *)req->data)--;
}

/* n upserts of configmaps c<first>..c<first+n-1>, all in flight at once; waits for them. */
static void write_many(struct rx *x, int first, int n)
{
    struct kcp_store_req *reqs = calloc((size_t)n, sizeof(*reqs));
    int left = n;
    for (int i = 0; i < n; i++) {
        char name[32], val[32];
        snprintf(name, sizeof(name), "c%d", (first + i) % 7);
        snprintf(val, sizeof(val), "%d", first + i);
        char *json = th_configmap(name, val, 0);
        char *key = kcp_sprintf("/core/configmaps/default/%s", name);
        struct kcp_store_op op = {KCP_STORE_PUT, KCP_STORE_IF_ANY, 0, key, strlen(key),
                                  json,          strlen(json)};
        struct kcp_store_entry e = {.wall_s = 1700000000 + first + i,
                                    .verb = "update",
                                    .user = "bob",
                                    .request_id = "",
                                    .nops = 1,
                                    .ops = &op};
        struct kcp_buf b = KCP_BUF_INIT;
        assert_int_equal(kcp_store_entry_encode(&b, &e), 0);
        reqs[i].data = &left;
        reqs[i].cb = on_written;
        assert_int_equal(kcp_store_propose(x->s, b.data, b.len, &reqs[i]), 0);
        kcp_buf_free(&b);
        free(json);
        free(key);
    }
    while (left)
        uv_run(&x->loop.uv, UV_RUN_ONCE);
    free(reqs);
}

/* Every main-line commit's Raft-Index, oldest first, must be exactly 1..n: no gap, no twice. */
static void check_indexes(const char *repo_path, uint64_t n, bool snapshot_first)
{
    git_repository *repo = NULL;
    git_revwalk *w = NULL;
    git_oid id;
    uint64_t want = n, count = 0;
    assert_int_equal(git_repository_open_bare(&repo, repo_path), 0);
    assert_int_equal(git_revwalk_new(&w, repo), 0);
    git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL);
    assert_int_equal(git_revwalk_push_ref(w, "refs/heads/main"), 0);
    while (git_revwalk_next(&id, w) == 0) {
        git_commit *c = NULL;
        assert_int_equal(git_commit_lookup(&c, repo, &id), 0);
        uint64_t idx = history_trailer_u64(git_commit_message(c), "Raft-Index");
        if (snapshot_first && git_commit_parentcount(c) == 0) {
            assert_non_null(strstr(git_commit_message(c), "snapshot"));
            want = idx;
        }
        assert_int_equal(idx, want);
        want--;
        count++;
        git_commit_free(c);
    }
    if (!snapshot_first)
        assert_int_equal(count, n);
    git_revwalk_free(w);
    git_repository_free(repo);
}

static void test_live(void **state)
{
    struct rx x;
    setup(&x);
    store_open(&x, true);
    history_open(&x);
    write_many(&x, 1, 300);
    wait_recorded(&x);
    struct kcp_history_stats st;
    kcp_history_stats(x.h, &st);
    assert_int_equal(st.recorded, 300);
    assert_int_equal(st.commits, 300);
    assert_int_equal(st.lag, 0);
    history_close(&x);
    check_indexes(x.repo, 300, false);
    teardown(&x);
}

/* Entries history never saw (its queue lost in a crash) come back from the store. */
static void test_catch_up(void **state)
{
    struct rx x;
    setup(&x);
    store_open(&x, true);
    history_open(&x);
    write_many(&x, 1, 50);
    wait_recorded(&x);
    history_close(&x); /* entries 51..120 reach the store only */
    write_many(&x, 51, 70);
    store_close(&x);
    store_open(&x, true);
    history_open(&x); /* at open: read back 51..120 */
    wait_recorded(&x);
    write_many(&x, 121, 30); /* then live again */
    wait_recorded(&x);
    history_close(&x);
    check_indexes(x.repo, 150, false);
    teardown(&x);
}

/* A queue too small for the burst: history falls behind, reads back, and has no gap. */
static void test_behind(void **state)
{
    struct rx x;
    setup(&x);
    x.hopts.max_queue = 4;
    x.hopts.max_batch = 3;
    store_open(&x, true);
    history_open(&x);
    write_many(&x, 1, 500);
    wait_recorded(&x);
    struct kcp_history_stats st;
    kcp_history_stats(x.h, &st);
    assert_true(st.behind > 0);
    assert_true(st.batches > 100);
    history_close(&x);
    check_indexes(x.repo, 500, false);
    /* A pack per batch, folded every 32: the count stays bounded. */
    char *cmd = kcp_sprintf("test $(ls %s/objects/pack | wc -l) -le 66", x.repo);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    teardown(&x);
}

static int count_cb(void *ctx, uint64_t index, const void *entry, size_t len,
                    const struct kcp_store_result *result)
{
    (*(int *)ctx)++;
    assert_int_equal(result->nops, 1);
    assert_true(result->ops[0].applied);
    return 0;
}

static void test_trim(void **state)
{
    struct rx x;
    int n = 0;
    uint64_t last = 0;
    setup(&x);
    store_open(&x, true);
    write_many(&x, 1, 20);
    assert_int_equal(kcp_store_retained(x.s, 0, 0, count_cb, &n, &last), 0);
    assert_int_equal(n, 20);
    assert_int_equal(last, 20);
    kcp_store_trim_retained(x.s, 15);
    write_many(&x, 21, 1); /* the trim rides in this batch */
    n = 0;
    assert_int_equal(kcp_store_retained(x.s, 10, 0, count_cb, &n, &last), KCP_EGONE);
    assert_int_equal(kcp_store_retained(x.s, 15, 0, count_cb, &n, &last), 0);
    assert_int_equal(n, 6);
    store_close(&x);
    store_open(&x, false); /* retention off drops the table */
    assert_int_equal(kcp_store_retained(x.s, 15, 0, count_cb, &n, &last), KCP_EINVAL);
    store_close(&x);
    store_open(&x, true);
    n = 0;
    assert_int_equal(kcp_store_retained(x.s, 15, 0, count_cb, &n, &last), KCP_EGONE);
    assert_int_equal(kcp_store_retained(x.s, 21, 0, count_cb, &n, &last), 0);
    assert_int_equal(n, 0);
    teardown(&x);
}

/* History turned on for a store that retained nothing: one snapshot, then entries. */
static void test_snapshot(void **state)
{
    struct rx x;
    setup(&x);
    store_open(&x, false);
    write_many(&x, 1, 40);
    store_close(&x);
    store_open(&x, true);
    history_open(&x);
    wait_recorded(&x);
    write_many(&x, 41, 5);
    wait_recorded(&x);
    history_close(&x);
    check_indexes(x.repo, 45, true);
    teardown(&x);
}

/* An API-style read: the main line's newest commits, on the work pool. */
struct reader {
    struct history_read rd;
    uv_work_t work;
    struct kcp_history *h;
    int rc;
    size_t n;
    int *left;
};

static int count_commit(void *ctx, const struct kcp_history_commit *c)
{
    (*(size_t *)ctx)++;
    return 0;
}

static void reader_on_work(uv_work_t *w)
{
    struct reader *rd = w->data;
    struct kcp_history_repo *repo = NULL;
    rd->rc = kcp_history_repo_open(&repo, history_repo_dir(rd->h));
    if (rd->rc == 0)
        rd->rc = kcp_history_log(repo, NULL, 50, count_commit, &rd->n, NULL);
    kcp_history_repo_free(repo);
}

static void reader_on_done(uv_work_t *w, int status)
{
    struct reader *rd = w->data;
    assert_int_equal(status, 0);
    assert_int_equal(rd->rc, 0);
    assert_true(rd->n > 0);
    (*rd->left)--;
    history_read_end(rd->h);
    free(rd);
}

static void reader_start(struct history_read *r)
{
    struct reader *rd = (struct reader *)r;
    rd->work.data = rd;
    assert_int_equal(uv_queue_work(history_uv(rd->h), &rd->work, reader_on_work, reader_on_done),
                     0);
}

static void reader_cancel(struct history_read *r)
{
    fail_msg("a read waited past the close");
}

/* Retention while recording and reading: squashes between batches, reads never beside one. */
static void test_retain_live(void **state)
{
    struct rx x;
    struct kcp_history_stats st;
    int left = 0;
    setup(&x);
    x.hopts.keep_commits = 10;
    x.hopts.retain_interval_ms = 1;
    x.hopts.max_batch = 16;
    store_open(&x, true);
    history_open(&x);
    write_many(&x, 1, 20);
    wait_recorded(&x);
    for (int k = 0; k < 10; k++) {
        for (int i = 0; i < 5; i++) {
            struct reader *rd = calloc(1, sizeof(*rd));
            rd->h = x.h;
            rd->left = &left;
            rd->rd.start = reader_start;
            rd->rd.cancel = reader_cancel;
            left++;
            history_read_begin(x.h, &rd->rd);
        }
        write_many(&x, 21 + k * 28, 28);
    }
    wait_recorded(&x);
    while (left)
        uv_run(&x.loop.uv, UV_RUN_ONCE);
    /* One more squash once everything is recorded. */
    kcp_history_stats(x.h, &st);
    uint64_t n = st.squashes;
    while (st.squashes == n) {
        uv_run(&x.loop.uv, UV_RUN_ONCE);
        kcp_history_stats(x.h, &st);
    }
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.recorded, 300);
    assert_true(st.squashes >= 2);
    history_close(&x);

    /* The main line: a squashed root, then consecutive indexes up to 300. */
    git_repository *repo = NULL;
    git_object *o = NULL;
    uint64_t want = 300, count = 0;
    assert_int_equal(git_repository_open_bare(&repo, x.repo), 0);
    assert_int_equal(git_revparse_single(&o, repo, "refs/heads/main"), 0);
    git_commit *c = (git_commit *)o;
    while (c) {
        git_commit *p = NULL;
        assert_int_equal(history_trailer_u64(git_commit_message(c), "Raft-Index"), want);
        want--;
        count++;
        if (git_commit_parentcount(c))
            assert_int_equal(git_commit_parent(&p, c, 0), 0);
        else
            assert_int_equal(history_trailer_u64(git_commit_message(c), "Squashed-Commits"), want);
        git_commit_free(c);
        c = p;
    }
    assert_int_equal(count, 10);
    git_repository_free(repo);
    teardown(&x);
}

int test_replay_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live),     cmocka_unit_test(test_catch_up),
        cmocka_unit_test(test_behind),   cmocka_unit_test(test_trim),
        cmocka_unit_test(test_snapshot), cmocka_unit_test(test_retain_live),
    };
    return cmocka_run_group_tests_name("replay", tests, NULL, NULL);
}
