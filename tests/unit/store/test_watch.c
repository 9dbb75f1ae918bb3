/* WATCH: live events in order, replay, the window, cancel inside callbacks, limits, close. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec {
    struct kcp_store_watch *w;
    struct kcp_buf log; /* "TYPE rev key prev_rev\n" */
    int n;
    int errors;
    int last_err;
    uint64_t last_rev;
    bool in_order;
    const struct kcp_obj *last_obj;
    struct kcp_store_watch *cancel_other; /* cancelled from inside the first callback */
    bool cancel_self;
};

static void rec_on_event(struct kcp_store_watch *w, const struct kcp_store_event *ev, void *ctx)
{
    struct rec *r = ctx;
    static const char *names[] = {"?", "ADDED", "MODIFIED", "DELETED", "ERROR"};
    if (ev->type == KCP_STORE_ERROR) {
        r->errors++;
        r->last_err = ev->err;
        r->w = NULL; /* freed after we return */
        return;
    }
    if (ev->revision < r->last_rev)
        r->in_order = false;
    r->last_rev = ev->revision;
    r->last_obj = ev->obj;
    assert_int_equal(ev->obj->mod_revision, ev->revision);
    if (ev->type == KCP_STORE_ADDED)
        assert_null(ev->prev);
    else
        assert_non_null(ev->prev);
    kcp_buf_printf(&r->log, "%s %llu %.*s %llu\n", names[ev->type],
                   (unsigned long long)ev->revision, (int)ev->key_len, ev->key,
                   (unsigned long long)(ev->prev ? ev->prev->mod_revision : 0));
    r->n++;
    if (r->cancel_other) {
        kcp_store_watch_cancel(r->cancel_other);
        r->cancel_other = NULL;
    }
    if (r->cancel_self) {
        kcp_store_watch_cancel(w);
        r->w = NULL;
    }
}

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    r->in_order = true;
}

static int watch(struct fx *f, const char *prefix, uint64_t from, struct rec *r)
{
    rec_init(r);
    return kcp_store_watch(f->s, prefix, strlen(prefix), from, rec_on_event, r, &r->w);
}

static void put(struct fx *f, const char *key)
{
    struct fx_outcome o;
    assert_int_equal(fx_put(f, key, "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0, &o), 0);
    fx_outcome_free(&o);
}

static void del(struct fx *f, const char *key)
{
    struct fx_outcome o;
    assert_int_equal(fx_del(f, key, KCP_STORE_IF_ANY, 0, &o), 0);
    fx_outcome_free(&o);
}

static void test_live_events(void **state)
{
    struct fx f;
    struct rec a, b;
    fx_setup(&f, NULL);
    put(&f, "/core/configmaps/x/before"); /* not delivered: the watch starts after it */
    assert_int_equal(watch(&f, "/core/configmaps/x/", 0, &a), 0);
    assert_int_equal(watch(&f, "", 0, &b), 0);
    assert_int_equal(kcp_store_watch_revision(a.w), 1);
    put(&f, "/core/configmaps/x/a");
    put(&f, "/core/configmaps/y/z");
    put(&f, "/core/configmaps/x/a");
    del(&f, "/core/configmaps/x/a");
    assert_string_equal(a.log.data, "ADDED 2 /core/configmaps/x/a 0\n"
                                    "MODIFIED 4 /core/configmaps/x/a 2\n"
                                    "DELETED 5 /core/configmaps/x/a 4\n");
    assert_int_equal(b.n, 4);
    /* Every watcher got the very same object: nothing copied per watcher. */
    assert_ptr_equal(a.last_obj, b.last_obj);
    assert_int_equal(kcp_store_watch_revision(a.w), 5);

    /* Several entries in one batch arrive in revision order, each after it is durable. */
    struct fx_outcome o[50];
    for (int i = 0; i < 50; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/core/configmaps/x/m%d", i);
        assert_int_equal(
            fx_propose_op(&f, fx_op_put(key, "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0), &o[i]), 0);
    }
    assert_int_equal(a.n, 3);
    fx_run_until(&f, &o[49].done);
    assert_int_equal(a.n, 53);
    assert_true(a.in_order);
    assert_int_equal(a.last_rev, 55);
    struct kcp_store_stats st;
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.watchers, 2);
    for (int i = 0; i < 50; i++)
        fx_outcome_free(&o[i]);
    kcp_store_watch_cancel(a.w);
    kcp_store_watch_cancel(b.w);
    kcp_buf_free(&a.log);
    kcp_buf_free(&b.log);
    fx_teardown(&f);
}

static void test_replay(void **state)
{
    struct fx f;
    struct rec r;
    char key[32];
    fx_setup(&f, NULL);
    for (int i = 1; i <= 10; i++) {
        snprintf(key, sizeof(key), "/r/%d", i % 3);
        put(&f, key);
    }
    assert_int_equal(watch(&f, "/r/", 5, &r), 0);
    assert_int_equal(r.n, 0); /* never inside kcp_store_watch */
    assert_int_equal(kcp_store_watch_revision(r.w), 5);
    put(&f, "/r/9"); /* published before the replay runs: part of it, once */
    uv_run(&f.loop.uv, UV_RUN_NOWAIT);
    assert_int_equal(r.n, 6);
    assert_true(r.in_order);
    assert_string_equal(r.log.data, "MODIFIED 6 /r/0 3\n"
                                    "MODIFIED 7 /r/1 4\n"
                                    "MODIFIED 8 /r/2 5\n"
                                    "MODIFIED 9 /r/0 6\n"
                                    "MODIFIED 10 /r/1 7\n"
                                    "ADDED 11 /r/9 0\n");
    put(&f, "/r/9");
    assert_int_equal(r.n, 7);
    kcp_store_watch_cancel(r.w);
    kcp_buf_free(&r.log);

    /* From the current revision: nothing to replay. From a future one: only what is newer. */
    assert_int_equal(watch(&f, "/r/", kcp_store_revision(f.s), &r), 0);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT);
    assert_int_equal(r.n, 0);
    kcp_store_watch_cancel(r.w);
    assert_int_equal(watch(&f, "/r/", kcp_store_revision(f.s) + 2, &r), 0);
    put(&f, "/r/1");
    put(&f, "/r/1");
    put(&f, "/r/1");
    assert_int_equal(r.n, 1);
    kcp_store_watch_cancel(r.w);
    kcp_buf_free(&r.log);
    fx_teardown(&f);
}

static struct rec late;
static void hook_registers_watch(void *data, const struct kcp_store_entry *e,
                                 const struct kcp_store_result *res)
{
    struct fx *f = data;
    if (res->index == 12) /* registered at an old revision while a big batch publishes */
        assert_int_equal(watch(f, "", 10, &late), 0);
}

static void test_window_expiry(void **state)
{
    struct kcp_store_options opts;
    struct fx f;
    struct rec r;
    kcp_store_options_default(&opts);
    opts.history_events = 5;
    fx_setup(&f, &opts);
    for (int i = 0; i < 10; i++)
        put(&f, "/e/a");
    assert_int_equal(watch(&f, "/e/", 4, &r), KCP_EGONE);
    assert_null(r.w);
    assert_int_equal(watch(&f, "/e/", 5, &r), 0);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT);
    assert_int_equal(r.n, 5);
    kcp_store_watch_cancel(r.w);
    kcp_buf_free(&r.log);

    /* The window moves past a watch before its replay: it ends with ERROR Expired. */
    kcp_store_set_applied_hook(f.s, hook_registers_watch, &f);
    struct fx_outcome o[10];
    for (int i = 0; i < 10; i++)
        assert_int_equal(
            fx_propose_op(&f, fx_op_put("/e/a", "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0), &o[i]),
            0);
    fx_run_until(&f, &o[9].done);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT);
    assert_int_equal(late.errors, 1);
    assert_int_equal(late.last_err, KCP_EGONE);
    assert_null(late.w);
    assert_int_equal(late.n, 0);
    struct kcp_store_stats st;
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.watchers, 0);
    for (int i = 0; i < 10; i++)
        fx_outcome_free(&o[i]);
    fx_teardown(&f);
}

static void test_cancel_in_callbacks(void **state)
{
    struct fx f;
    struct rec a, b, c;
    fx_setup(&f, NULL);
    assert_int_equal(watch(&f, "", 0, &a), 0);
    assert_int_equal(watch(&f, "", 0, &b), 0);
    assert_int_equal(watch(&f, "", 0, &c), 0);
    /* c is notified first (newest first); it cancels b, then a cancels itself. */
    c.cancel_other = b.w;
    a.cancel_self = true;
    put(&f, "/c/1");
    assert_int_equal(c.n, 1);
    assert_int_equal(b.n, 0);
    assert_int_equal(a.n, 1);
    put(&f, "/c/2");
    assert_int_equal(a.n, 1);
    assert_int_equal(c.n, 2);
    struct kcp_store_stats st;
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.watchers, 1);
    kcp_store_watch_cancel(c.w);
    kcp_store_watch_cancel(NULL);
    kcp_buf_free(&a.log);
    kcp_buf_free(&b.log);
    kcp_buf_free(&c.log);
    fx_teardown(&f);
}

static void test_limits_and_close(void **state)
{
    struct kcp_store_options opts;
    struct fx f;
    static struct rec r[4];
    kcp_store_options_default(&opts);
    opts.max_watchers = 3;
    fx_setup(&f, &opts);
    for (int i = 0; i < 3; i++)
        assert_int_equal(watch(&f, "", 0, &r[i]), 0);
    assert_int_equal(watch(&f, "", 0, &r[3]), KCP_ETOOMANY);
    kcp_store_watch_cancel(r[0].w);
    assert_int_equal(watch(&f, "", 0, &r[0]), 0);
    put(&f, "/l/1");
    /* Close ends the remaining watches with ERROR closed. */
    fx_close_store(&f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].errors, 1);
        assert_int_equal(r[i].last_err, KCP_ECLOSED);
        assert_int_equal(r[i].n, 1);
        kcp_buf_free(&r[i].log);
    }
    fx_teardown(&f);
}

/* Inside a fan-out, reads see whole entries and a new watch misses nothing. */
struct midway {
    struct fx *f;
    int events;
    int listed_at_first;
    uint64_t list_rev;
    struct rec late;
    bool registered;
};
static int count_items(void *ctx, const struct kcp_obj *obj)
{
    (*(int *)ctx)++;
    return 0;
}
static void midway_on_event(struct kcp_store_watch *w, const struct kcp_store_event *ev, void *ctx)
{
    struct midway *m = ctx;
    if (ev->type == KCP_STORE_ERROR)
        return;
    if (m->events++ == 0) {
        struct kcp_store_list_result res;
        assert_int_equal(kcp_store_list(m->f->s, "/m/", 3, 0, NULL, 0, 0, count_items,
                                        &m->listed_at_first, &res),
                         0);
        m->list_rev = res.revision;
        /* The bookmark does not claim the entry until every watch has its events. */
        assert_int_equal(kcp_store_watch_revision(w), ev->revision - 1);
        assert_int_equal(watch(m->f, "/m/", 0, &m->late), 0);
        m->registered = true;
    }
}

static void test_callbacks_see_whole_entries(void **state)
{
    struct fx f;
    struct fx_outcome o;
    struct midway m = {.f = &f};
    struct kcp_store_watch *w = NULL;
    fx_setup(&f, NULL);
    assert_int_equal(kcp_store_watch(f.s, "/m/", 3, 0, midway_on_event, &m, &w), 0);
    struct kcp_store_op ops[3] = {fx_op_put("/m/a", "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0),
                                  fx_op_put("/m/b", "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0),
                                  fx_op_put("/m/c", "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0)};
    struct fx_outcome o2;
    assert_int_equal(fx_propose(&f, KCP_STORE_ATOMIC, 3, ops, &o), 0);
    struct kcp_store_op next = fx_op_put("/m/d", "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0);
    assert_int_equal(fx_propose(&f, 0, 1, &next, &o2), 0); /* same batch, published right after */
    fx_run_until(&f, &o2.done);
    assert_int_equal(m.events, 4);
    assert_int_equal(m.listed_at_first, 3); /* all of entry 1, while delivering its first event */
    assert_int_equal(m.list_rev, 1);
    assert_true(m.registered);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT);
    /* Registered "now" (revision 1) during entry 1's fan-out: it gets entry 2, once. */
    assert_string_equal(m.late.log.data, "ADDED 2 /m/d 0\n");
    assert_int_equal(kcp_store_watch_revision(m.late.w), 2);
    kcp_store_watch_cancel(m.late.w);
    kcp_store_watch_cancel(w);
    kcp_buf_free(&m.late.log);
    fx_outcome_free(&o);
    fx_outcome_free(&o2);
    fx_teardown(&f);
}

int test_watch_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_events),      cmocka_unit_test(test_replay),
        cmocka_unit_test(test_window_expiry),    cmocka_unit_test(test_cancel_in_callbacks),
        cmocka_unit_test(test_limits_and_close), cmocka_unit_test(test_callbacks_see_whole_entries),
    };
    return cmocka_run_group_tests_name("store.watch", tests, NULL, NULL);
}
