/* LIST and GET: key order, prefixes, pages over one snapshot, old revisions, the window. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct collect {
    struct kcp_buf text; /* "key@mod_revision:json\n" per item */
    int n;
    char last[256];
    int stop_after;
};

static int collect_cb(void *ctx, const struct kcp_obj *obj)
{
    struct collect *c = ctx;
    if (c->n && strcmp(c->last, obj->key) >= 0)
        fail_msg("out of order: %s after %s", obj->key, c->last);
    snprintf(c->last, sizeof(c->last), "%s", obj->key);
    kcp_buf_printf(&c->text, "%s@%llu:%s\n", obj->key, (unsigned long long)obj->mod_revision,
                   obj->json);
    c->n++;
    if (c->stop_after && c->n == c->stop_after)
        return 99;
    return 0;
}

static int list_all(struct fx *f, const char *prefix, uint64_t rev, struct collect *c,
                    struct kcp_store_list_result *res)
{
    memset(c, 0, sizeof(*c));
    return kcp_store_list(f->s, prefix, strlen(prefix), rev, NULL, 0, 0, collect_cb, c, res);
}

static void put(struct fx *f, const char *key)
{
    struct fx_outcome o;
    assert_int_equal(fx_put(f, key, "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0, &o), 0);
    assert_int_equal(o.err, 0);
    fx_outcome_free(&o);
}

static void del(struct fx *f, const char *key)
{
    struct fx_outcome o;
    assert_int_equal(fx_del(f, key, KCP_STORE_IF_ANY, 0, &o), 0);
    assert_int_equal(o.err, 0);
    fx_outcome_free(&o);
}

static void test_order_and_prefix(void **state)
{
    struct fx f;
    struct collect c;
    struct kcp_store_list_result res;
    const char *keys[] = {"/core/pods/default/p1",
                          "/core/configmaps/kube-system/a",
                          "/core/configmaps/default/c",
                          "/apps/deployments/default/d1",
                          "/core/configmaps/default-2/x",
                          "/core/configmaps/default/a",
                          "/core/nodes/_/n1",
                          "/core/configmaps/default/b"};
    fx_setup(&f, NULL);
    for (size_t i = 0; i < 8; i++)
        put(&f, keys[i]);

    assert_int_equal(list_all(&f, "/core/configmaps/default/", 0, &c, &res), 0);
    assert_string_equal(
        c.text.data, "/core/configmaps/default/a@6:{\"metadata\":{\"resourceVersion\":\"6\"}}\n"
                     "/core/configmaps/default/b@8:{\"metadata\":{\"resourceVersion\":\"8\"}}\n"
                     "/core/configmaps/default/c@3:{\"metadata\":{\"resourceVersion\":\"3\"}}\n");
    assert_int_equal(res.revision, 8);
    assert_int_equal(res.count, 3);
    assert_false(res.more);
    kcp_buf_free(&c.text);

    assert_int_equal(list_all(&f, "/core/configmaps/", 0, &c, &res), 0);
    assert_int_equal(c.n, 5);
    kcp_buf_free(&c.text);
    assert_int_equal(list_all(&f, "", 0, &c, &res), 0);
    assert_int_equal(c.n, 8);
    kcp_buf_free(&c.text);
    memset(&c, 0, sizeof(c)); /* a NULL prefix lists everything too */
    assert_int_equal(kcp_store_list(f.s, NULL, 0, 0, NULL, 0, 0, collect_cb, &c, &res), 0);
    assert_int_equal(c.n, 8);
    kcp_buf_free(&c.text);
    assert_int_equal(list_all(&f, "/core/secrets/", 0, &c, &res), 0);
    assert_int_equal(c.n, 0);
    kcp_buf_free(&c.text);

    /* A callback's non-zero return stops the list and is returned. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    assert_int_equal(kcp_store_list(f.s, "", 0, 0, NULL, 0, 0, collect_cb, &c, &res), 99);
    assert_int_equal(res.count, 2);
    kcp_buf_free(&c.text);
    fx_teardown(&f);
}

static void test_pagination_snapshot(void **state)
{
    struct fx f;
    char key[64];
    fx_setup(&f, NULL);
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof(key), "/core/configmaps/ns/k%02d", i);
        put(&f, key);
    }
    struct collect all;
    struct kcp_store_list_result res;
    assert_int_equal(list_all(&f, "/core/configmaps/ns/", 0, &all, &res), 0);
    uint64_t rev = res.revision;

    struct kcp_buf pages = KCP_BUF_INIT;
    char after[256] = "";
    int npages = 0;
    for (;;) {
        struct collect c;
        memset(&c, 0, sizeof(c));
        assert_int_equal(kcp_store_list(f.s, "/core/configmaps/ns/", 20, npages ? rev : 0,
                                        npages ? after : NULL, strlen(after), 7, collect_cb, &c,
                                        &res),
                         0);
        assert_int_equal(res.revision, rev);
        kcp_buf_append(&pages, c.text.data, c.text.len);
        snprintf(after, sizeof(after), "%s", c.last);
        kcp_buf_free(&c.text);
        npages++;
        assert_int_equal(res.more, npages < 4);
        if (!res.more)
            break;
        /* The world moves between pages; the pages do not. */
        snprintf(key, sizeof(key), "/core/configmaps/ns/k%02d", 24 - npages);
        del(&f, key);
        snprintf(key, sizeof(key), "/core/configmaps/ns/k%02da", npages * 7);
        put(&f, key);
        snprintf(key, sizeof(key), "/core/configmaps/ns/k%02d", 22);
        put(&f, key);
    }
    assert_int_equal(npages, 4);
    assert_string_equal(pages.data, all.text.data);
    kcp_buf_free(&pages);
    kcp_buf_free(&all.text);
    fx_teardown(&f);
}

/* Lists at every past revision equal what a list said at the time. */
static void test_old_revisions_exact(void **state)
{
    enum { STEPS = 300, KEYS = 20 };
    struct fx f;
    char *seen[STEPS + 1] = {0};
    bool exists[KEYS] = {0};
    uint64_t seed = 42;
    fx_setup(&f, NULL);
    for (int step = 1; step <= STEPS; step++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int k = (int)((seed >> 33) % KEYS);
        char key[64], val[128];
        struct fx_outcome o;
        snprintf(key, sizeof(key), "/core/configmaps/%s/k%02d", k % 2 ? "odd" : "even", k);
        snprintf(
            val, sizeof(val),
            "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"k%02d\"},\"data\":{\"step\":\"%d\"}}",
            k, step);
        if (exists[k] && (seed >> 20) % 3 == 0) {
            assert_int_equal(fx_del(&f, key, KCP_STORE_IF_PRESENT, 0, &o), 0);
            exists[k] = false;
        } else {
            assert_int_equal(fx_put(&f, key, val, KCP_STORE_IF_ANY, 0, &o), 0);
            exists[k] = true;
        }
        assert_int_equal(o.err, 0);
        assert_int_equal(o.index, (uint64_t)step);
        fx_outcome_free(&o);
        struct collect c;
        struct kcp_store_list_result res;
        assert_int_equal(list_all(&f, "/core/configmaps/", 0, &c, &res), 0);
        seen[step] = kcp_buf_detach(&c.text);
    }
    for (int r = 1; r <= STEPS; r++) {
        struct collect c;
        struct kcp_store_list_result res;
        assert_int_equal(list_all(&f, "/core/configmaps/", (uint64_t)r, &c, &res), 0);
        assert_int_equal(res.revision, (uint64_t)r);
        assert_string_equal(c.text.data ? c.text.data : "", seen[r]);
        kcp_buf_free(&c.text);
        /* Per namespace, and paged, at that revision. */
        struct collect odd;
        assert_int_equal(list_all(&f, "/core/configmaps/odd/", (uint64_t)r, &odd, &res), 0);
        struct kcp_buf paged = KCP_BUF_INIT;
        char after[256] = "";
        do {
            memset(&c, 0, sizeof(c));
            assert_int_equal(kcp_store_list(f.s, "/core/configmaps/odd/", 21, (uint64_t)r,
                                            after[0] ? after : NULL, strlen(after), 3, collect_cb,
                                            &c, &res),
                             0);
            if (c.n)
                snprintf(after, sizeof(after), "%s", c.last);
            kcp_buf_append(&paged, c.text.data, c.text.len);
            kcp_buf_free(&c.text);
        } while (res.more);
        assert_string_equal(paged.data ? paged.data : "", odd.text.data ? odd.text.data : "");
        kcp_buf_free(&paged);
        kcp_buf_free(&odd.text);
        /* GET at that revision agrees. */
        for (int k = 0; k < KEYS; k++) {
            char key[64];
            struct kcp_obj *o = NULL;
            snprintf(key, sizeof(key), "/core/configmaps/%s/k%02d", k % 2 ? "odd" : "even", k);
            int rc = kcp_store_get(f.s, key, strlen(key), (uint64_t)r, &o);
            char *line = kcp_sprintf("%s@", key);
            char *at = strstr(seen[r], line);
            if (at) {
                assert_int_equal(rc, 0);
                assert_int_equal(strtoull(at + strlen(line), NULL, 10), o->mod_revision);
            } else {
                assert_int_equal(rc, KCP_ENOTFOUND);
            }
            free(line);
            kcp_obj_unref(o);
        }
    }
    for (int r = 1; r <= STEPS; r++)
        free(seen[r]);
    fx_teardown(&f);
}

static void test_window(void **state)
{
    struct kcp_store_options opts;
    struct fx f;
    struct collect c;
    struct kcp_store_list_result res;
    struct kcp_obj *o = NULL;
    char key[64];
    kcp_store_options_default(&opts);
    opts.history_events = 10;
    fx_setup(&f, &opts);
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "/w/%d", i % 4);
        put(&f, key);
    }
    struct kcp_store_stats st;
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.history_events, 10);
    assert_int_equal(st.history_floor, 20);
    assert_int_equal(list_all(&f, "/w/", 19, &c, &res), KCP_EGONE);
    assert_int_equal(kcp_store_get(f.s, "/w/1", 4, 19, &o), KCP_EGONE);
    assert_int_equal(list_all(&f, "/w/", 20, &c, &res), 0);
    assert_int_equal(c.n, 4);
    kcp_buf_free(&c.text);
    assert_int_equal(list_all(&f, "/w/", 31, &c, &res), KCP_ETIMEOUT);
    assert_int_equal(kcp_store_get(f.s, "/w/1", 4, 31, &o), KCP_ETIMEOUT);
    assert_null(o);

    /* The byte bound moves the window as well. */
    fx_close_store(&f);
    opts.history_events = 1000;
    opts.history_bytes = 2000;
    f.opts = opts;
    fx_open_store(&f);
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.history_floor, 30); /* a restart starts an empty window */
    assert_int_equal(list_all(&f, "/w/", 29, &c, &res), KCP_EGONE);
    for (int i = 0; i < 100; i++)
        put(&f, "/w/0");
    kcp_store_stats(f.s, &st);
    assert_true(st.history_bytes <= 2000);
    assert_true(st.history_floor > 30);
    fx_teardown(&f);
}

int test_list_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_prefix),
        cmocka_unit_test(test_pagination_snapshot),
        cmocka_unit_test(test_old_revisions_exact),
        cmocka_unit_test(test_window),
    };
    return cmocka_run_group_tests_name("store.list", tests, NULL, NULL);
}
