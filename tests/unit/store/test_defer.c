/* Deferred durability: entries published before LMDB has them, one commit for many, reopen. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The timer never fires within a test: commits come from flushes, max_batch and close. */
#define LONG_MS 600000

static void put_n(struct fx *f, const char *tag, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        struct fx_outcome o;
        char key[64];
        snprintf(key, sizeof(key), "/core/configmaps/%s/k%d", tag, i);
        char *v = fx_configmap(tag, strrchr(key, '/') + 1, "v");
        assert_int_equal(fx_put(f, key, v, KCP_STORE_IF_ABSENT, 0, &o), 0);
        assert_int_equal(o.status, 0);
        assert_int_equal(o.err, 0);
        fx_outcome_free(&o);
        free(v);
    }
}

static void run_until_synced(struct fx *f, uint64_t index)
{
    while (kcp_store_synced(f->s) < index)
        assert_true(uv_run(&f->loop.uv, UV_RUN_ONCE) || kcp_store_synced(f->s) >= index);
}

static void test_publish_before_commit(void **state)
{
    struct fx f;
    struct kcp_store_stats st;
    fx_setup(&f, NULL);
    kcp_store_set_deferred(f.s, LONG_MS);
    put_n(&f, "d", 0, 50);
    /* Every write was answered and is visible, none is in LMDB yet. */
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.revision, 50);
    assert_int_equal(st.synced, 0);
    assert_int_equal(st.fsyncs, 0);
    assert_int_equal(st.unsynced, 50);
    assert_false(kcp_store_idle(f.s));
    struct kcp_obj *o = NULL;
    assert_int_equal(kcp_store_get(f.s, "/core/configmaps/d/k49", 22, 0, &o), 0);
    assert_int_equal(o->mod_revision, 50);
    kcp_obj_unref(o);
    /* Later writes see the earlier ones (preconditions against the published state). */
    struct fx_outcome dup;
    char *v = fx_configmap("d", "k3", "again");
    assert_int_equal(fx_put(&f, "/core/configmaps/d/k3", v, KCP_STORE_IF_ABSENT, 0, &dup), 0);
    assert_int_equal(dup.err, KCP_EEXIST);
    fx_outcome_free(&dup);
    free(v);
    /* A flush writes them all in one synced transaction. */
    kcp_store_flush(f.s);
    run_until_synced(&f, 51);
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.fsyncs, 1);
    assert_int_equal(st.unsynced, 0);
    assert_true(kcp_store_idle(f.s));
    fx_teardown(&f);
}

static void test_timer_and_max_batch(void **state)
{
    struct kcp_store_options opts;
    struct fx f;
    struct kcp_store_stats st;
    kcp_store_options_default(&opts);
    opts.max_batch = 10;
    fx_setup(&f, &opts);
    kcp_store_set_deferred(f.s, LONG_MS);
    /* A full batch does not wait for the interval. */
    put_n(&f, "b", 0, 25);
    run_until_synced(&f, 20);
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.synced, 20);
    assert_int_equal(st.unsynced, 5);
    fx_close_store(&f);

    /* A short interval commits on its own. */
    fx_open_store(&f);
    assert_int_equal(kcp_store_revision(f.s), 25); /* close wrote the rest */
    kcp_store_set_deferred(f.s, 5);
    put_n(&f, "t", 0, 3);
    run_until_synced(&f, 28);
    /* Turned off: the unsynced drain first, then each write is durable before its answer. */
    kcp_store_set_deferred(f.s, LONG_MS);
    put_n(&f, "u", 0, 2);
    kcp_store_set_deferred(f.s, 0);
    put_n(&f, "n", 0, 1);
    assert_int_equal(kcp_store_synced(f.s), 31);
    fx_teardown(&f);
}

static int retained_cb(void *ctx, uint64_t index, const void *entry, size_t len,
                       const struct kcp_store_result *res)
{
    uint64_t *seen = ctx;
    struct kcp_store_entry e;
    assert_int_equal(index, seen[0] + 1);
    assert_int_equal(res->index, index);
    assert_int_equal(res->nops, 1);
    assert_true(res->ops[0].applied);
    assert_null(res->ops[0].obj);
    assert_int_equal(kcp_store_entry_decode(&e, entry, len), 0);
    assert_int_equal(e.nops, 1);
    kcp_store_entry_free(&e);
    seen[0] = index;
    seen[1]++;
    return 0;
}

static void test_retained_from_memory(void **state)
{
    struct kcp_store_options opts;
    struct fx f;
    uint64_t seen[2], last = 0;
    kcp_store_options_default(&opts);
    opts.retain_entries = true;
    fx_setup(&f, &opts);
    kcp_store_set_deferred(f.s, LONG_MS);
    put_n(&f, "r", 0, 5);
    kcp_store_flush(f.s);
    run_until_synced(&f, 5);
    put_n(&f, "r", 5, 5);
    /* Five from the table, five from memory, in order, no duplicate. */
    seen[0] = 0, seen[1] = 0;
    assert_int_equal(kcp_store_retained(f.s, 0, 0, retained_cb, seen, &last), 0);
    assert_int_equal(seen[1], 10);
    assert_int_equal(last, 10);
    seen[0] = 7, seen[1] = 0;
    assert_int_equal(kcp_store_retained(f.s, 7, 0, retained_cb, seen, &last), 0);
    assert_int_equal(seen[1], 3);
    seen[0] = 2, seen[1] = 0;
    assert_int_equal(kcp_store_retained(f.s, 2, 4, retained_cb, seen, &last), 0);
    assert_int_equal(seen[1], 4);
    assert_int_equal(last, 6);
    /* Trims never pass what LMDB holds. */
    kcp_store_trim_retained(f.s, 10);
    kcp_store_flush(f.s);
    run_until_synced(&f, 10);
    seen[0] = 10, seen[1] = 0;
    assert_int_equal(kcp_store_retained(f.s, 10, 0, retained_cb, seen, &last), 0);
    assert_int_equal(seen[1], 0);
    fx_teardown(&f);
}

/*
 * The crash: a child writes, flushes part, writes more and exits without closing. The store
 * reopens at what LMDB had; the rest must be applied again, and only the rest.
 */
static void test_reopen_after_crash(void **state)
{
    struct fx f;
    fx_setup(&f, NULL);
    fx_close_store(&f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct fx c;
        memset(&c, 0, sizeof(c));
        snprintf(c.dir, sizeof(c.dir), "%s", f.dir);
        kcp_store_options_default(&c.opts);
        if (kcp_loop_init(&c.loop, NULL, 1) != 0 ||
            kcp_store_open(&c.s, &c.loop, c.dir, &c.opts) != 0)
            _exit(2);
        kcp_store_set_deferred(c.s, LONG_MS);
        put_n(&c, "c", 0, 10);
        kcp_store_flush(c.s);
        run_until_synced(&c, 10);
        put_n(&c, "c", 10, 5);
        _exit(kcp_store_revision(c.s) == 15 && kcp_store_synced(c.s) == 10 ? 0 : 3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    fx_open_store(&f);
    assert_int_equal(kcp_store_revision(f.s), 10);
    struct kcp_obj *o = NULL;
    assert_int_equal(kcp_store_get(f.s, "/core/configmaps/c/k10", 22, 0, &o), KCP_ENOTFOUND);
    /* Applying an entry LMDB has is refused; the lost ones apply again, at their indexes. */
    struct kcp_buf b = KCP_BUF_INIT;
    char *v = fx_configmap("c", "k9", "v");
    struct kcp_store_op op = fx_op_put("/core/configmaps/c/k9", v, KCP_STORE_IF_ABSENT, 0);
    fx_encode(&b, 0, 1, &op);
    assert_int_equal(kcp_store_apply(f.s, 10, b.data, b.len, NULL), KCP_EEXIST);
    kcp_buf_free(&b);
    free(v);
    struct fx_outcome again;
    fx_outcome_init(&again);
    v = fx_configmap("c", "k10", "v");
    op = fx_op_put("/core/configmaps/c/k10", v, KCP_STORE_IF_ABSENT, 0);
    fx_encode(&b, 0, 1, &op);
    assert_int_equal(kcp_store_apply(f.s, 11, b.data, b.len, &again.req), 0);
    fx_run_until(&f, &again.done);
    assert_int_equal(again.status, 0);
    assert_int_equal(again.index, 11);
    assert_int_equal(again.err, 0);
    fx_outcome_free(&again);
    kcp_buf_free(&b);
    free(v);
    fx_teardown(&f);
}

int test_defer_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_before_commit),
        cmocka_unit_test(test_timer_and_max_batch),
        cmocka_unit_test(test_retained_from_memory),
        cmocka_unit_test(test_reopen_after_crash),
    };
    return cmocka_run_group_tests_name("store.defer", tests, NULL, NULL);
}
