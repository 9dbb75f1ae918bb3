/* Group commit, durability, limits, map growth, disk failure and close with writes in flight. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1000

struct many {
    struct fx_outcome o[N];
    int done;
    uint64_t last_index;
    bool in_order;
};

static void many_on_done(struct kcp_store_req *req, int status, const struct kcp_store_result *r)
{
    struct many *m = req->data;
    assert_int_equal(status, 0);
    assert_int_equal(r->err, 0);
    if (r->index <= m->last_index)
        m->in_order = false;
    m->last_index = r->index;
    m->done++;
}

/* Proposes n creates at once (as n concurrent clients would), without waiting. */
static void propose_many(struct fx *f, struct many *m, int n, const char *tag)
{
    m->done = 0;
    m->last_index = 0;
    m->in_order = true;
    for (int i = 0; i < n; i++) {
        char key[64], *v;
        struct kcp_buf b = KCP_BUF_INIT;
        snprintf(key, sizeof(key), "/core/configmaps/%s/cm-%04d", tag, i);
        v = fx_configmap(tag, strrchr(key, '/') + 1, "payload");
        struct kcp_store_op op = fx_op_put(key, v, KCP_STORE_IF_ABSENT, 0);
        fx_encode(&b, 0, 1, &op);
        m->o[i].req.data = m;
        m->o[i].req.cb = many_on_done;
        assert_int_equal(kcp_store_propose(f->s, b.data, b.len, &m->o[i].req), 0);
        kcp_buf_free(&b);
        free(v);
    }
}

static void run_many(struct fx *f, struct many *m, int n)
{
    while (m->done < n)
        assert_true(uv_run(&f->loop.uv, UV_RUN_ONCE) || m->done == n);
    assert_true(m->in_order);
}

static int count_cb(void *ctx, const struct kcp_obj *obj)
{
    (*(int *)ctx)++;
    return 0;
}

static void test_group_commit(void **state)
{
    static struct many m;
    struct fx f;
    struct kcp_store_stats st;
    fx_setup(&f, NULL);
    propose_many(&f, &m, N, "gc");
    run_many(&f, &m, N);
    kcp_store_stats(f.s, &st);
    print_message("group commit: %d entries, %llu batches, %llu fsyncs, %llu bytes\n", N,
                  (unsigned long long)st.batches, (unsigned long long)st.fsyncs,
                  (unsigned long long)st.bytes_written);
    assert_int_equal(st.entries_applied, N);
    assert_true(st.fsyncs <= 3); /* all arrived within one loop turn: one batch */
    assert_int_equal(st.fsyncs, st.batches);
    assert_true(st.bytes_written > N * 100);

    /* One writer at a time: one sync each. */
    for (int i = 0; i < 20; i++) {
        struct fx_outcome o;
        char key[64];
        snprintf(key, sizeof(key), "/core/configmaps/seq/s%d", i);
        assert_int_equal(fx_put(&f, key, "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0, &o), 0);
        fx_outcome_free(&o);
    }
    struct kcp_store_stats st2;
    kcp_store_stats(f.s, &st2);
    assert_int_equal(st2.fsyncs - st.fsyncs, 20);

    /* Everything acknowledged is there after a reopen. */
    fx_reopen(&f);
    int count = 0;
    struct kcp_store_list_result lr;
    assert_int_equal(
        kcp_store_list(f.s, "/core/configmaps/gc/", 20, 0, NULL, 0, 0, count_cb, &count, &lr), 0);
    assert_int_equal(count, N);
    assert_int_equal(kcp_store_revision(f.s), N + 20);
    struct kcp_obj *o = NULL;
    assert_int_equal(kcp_store_get(f.s, "/core/configmaps/gc/cm-0500", 27, 0, &o), 0);
    assert_int_equal(o->mod_revision, 501);
    assert_non_null(strstr(o->json, "\"resourceVersion\":\"501\""));
    kcp_obj_unref(o);
    fx_teardown(&f);
}

static void test_batch_limit(void **state)
{
    static struct many m;
    struct kcp_store_options opts;
    struct fx f;
    struct kcp_store_stats st;
    kcp_store_options_default(&opts);
    opts.max_batch = 100;
    fx_setup(&f, &opts);
    propose_many(&f, &m, N, "bl");
    run_many(&f, &m, N);
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.batches, N / 100);
    fx_teardown(&f);
}

static void test_max_pending(void **state)
{
    static struct many m;
    struct kcp_store_options opts;
    struct fx f;
    struct fx_outcome o;
    kcp_store_options_default(&opts);
    opts.max_pending = 10;
    fx_setup(&f, &opts);
    propose_many(&f, &m, 10, "mp");
    assert_int_equal(fx_propose_op(&f, fx_op_put("/x", "{}", KCP_STORE_IF_ANY, 0), &o),
                     KCP_ETOOMANY);
    run_many(&f, &m, 10);
    fx_teardown(&f);
}

static void test_close_with_pending(void **state)
{
    static struct many m;
    struct fx f;
    struct fx_outcome o;
    fx_setup(&f, NULL);
    propose_many(&f, &m, 100, "cp");
    kcp_store_close(f.s, NULL, NULL);
    /* After close, proposals are refused; those accepted before still complete. */
    assert_int_equal(fx_propose_op(&f, fx_op_put("/x", "{}", KCP_STORE_IF_ANY, 0), &o),
                     KCP_ECLOSED);
    uv_run(&f.loop.uv, UV_RUN_DEFAULT);
    assert_int_equal(m.done, 100);
    f.s = NULL;
    fx_open_store(&f);
    assert_int_equal(kcp_store_revision(f.s), 100);
    fx_teardown(&f);
}

static void test_map_growth(void **state)
{
    struct kcp_store_options opts;
    struct fx f;
    struct kcp_store_stats st;
    kcp_store_options_default(&opts);
    opts.map_size = 256 << 10;
    opts.max_map_size = 64 << 20;
    fx_setup(&f, &opts);
    size_t vlen = 100 << 10;
    char *v = kcp_malloc(vlen + 1);
    memset(v, ' ', vlen);
    memcpy(v, "{\"metadata\":{}", 14);
    v[vlen - 1] = '}';
    v[vlen] = '\0';
    for (int i = 0; i < 20; i++) { /* 2 MB into a 256 KiB map */
        struct fx_outcome o;
        char key[32];
        snprintf(key, sizeof(key), "/big/%d", i);
        assert_int_equal(fx_put(&f, key, v, KCP_STORE_IF_ANY, 0, &o), 0);
        assert_int_equal(o.status, 0);
        fx_outcome_free(&o);
    }
    kcp_store_stats(f.s, &st);
    assert_true(st.map_size >= (2u << 20));
    assert_int_equal(st.failed, 0);
    free(v);
    fx_reopen(&f);
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.objects, 20);
    fx_teardown(&f);
}

static void test_disk_full(void **state)
{
    static struct many m;
    struct kcp_store_options opts;
    struct fx f;
    struct kcp_store_stats st;
    struct fx_outcome o1, o2;
    kcp_store_options_default(&opts);
    opts.map_size = opts.max_map_size = 128 << 10;
    fx_setup(&f, &opts);
    propose_many(&f, &m, 5, "ok");
    run_many(&f, &m, 5);
    size_t vlen = 200 << 10;
    char *v = kcp_malloc(vlen + 1);
    memset(v, ' ', vlen);
    memcpy(v, "{\"metadata\":{}", 14);
    v[vlen - 1] = '}';
    v[vlen] = '\0';
    struct kcp_store_op op = fx_op_put("/big", v, KCP_STORE_IF_ANY, 0);
    struct kcp_store_op op2 = fx_op_put("/small", "{}", KCP_STORE_IF_ANY, 0);
    assert_int_equal(fx_propose(&f, 0, 1, &op, &o1), 0);
    fx_run_until(&f, &o1.done); /* alone in its batch... */
    assert_int_equal(o1.status, KCP_EIO);
    assert_int_equal(fx_propose(&f, 0, 1, &op2, &o2), KCP_EUNAVAILABLE); /* ...then writes stop */
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.failed, KCP_EIO);
    assert_int_equal(st.revision, 5);
    struct kcp_obj *g = NULL;
    assert_int_equal(kcp_store_get(f.s, "/core/configmaps/ok/cm-0001", 27, 0, &g), 0);
    kcp_obj_unref(g);
    free(v);
    /* Nothing was half-written: a reopen sees the last durable state. */
    fx_reopen(&f);
    assert_int_equal(kcp_store_revision(f.s), 5);
    fx_teardown(&f);
}

int test_commit_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_commit), cmocka_unit_test(test_batch_limit),
        cmocka_unit_test(test_max_pending),  cmocka_unit_test(test_close_with_pending),
        cmocka_unit_test(test_map_growth),   cmocka_unit_test(test_disk_full),
    };
    return cmocka_run_group_tests_name("store.commit", tests, NULL, NULL);
}
