/* The write path's decisions: preconditions, revisions, atomic entries, proposers, the hook. */
#include "fixture.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CM "/core/configmaps/default/"

static const char *rv_of(const struct kcp_obj *o)
{
    return json_string_value(
        json_object_get(json_object_get(o->doc, "metadata"), "resourceVersion"));
}

static void test_create_update_delete(void **state)
{
    struct fx f;
    struct fx_outcome o;
    struct kcp_obj *got = NULL;
    char *v1 = fx_configmap("default", "a", "one"), *v2 = fx_configmap("default", "a", "two");
    fx_setup(&f, NULL);

    assert_int_equal(fx_put(&f, CM "a", v1, KCP_STORE_IF_ABSENT, 0, &o), 0);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.index, 1);
    assert_int_equal(o.err, 0);
    assert_true(o.applied[0]);
    assert_null(o.prev[0]);
    assert_int_equal(o.obj[0]->mod_revision, 1);
    assert_int_equal(o.obj[0]->create_revision, 1);
    assert_string_equal(rv_of(o.obj[0]), "1");
    assert_non_null(strstr(o.obj[0]->json, "\"resourceVersion\":\"1\""));
    fx_outcome_free(&o);
    assert_int_equal(kcp_store_revision(f.s), 1);

    /* AlreadyExists: the entry still takes an index (replicas agree on it), nothing changes. */
    assert_int_equal(fx_put(&f, CM "a", v2, KCP_STORE_IF_ABSENT, 0, &o), 0);
    assert_int_equal(o.index, 2);
    assert_int_equal(o.err, KCP_EEXIST);
    assert_int_equal(o.op_err[0], KCP_EEXIST);
    assert_false(o.applied[0]);
    assert_null(o.obj[0]);
    assert_int_equal(o.prev[0]->mod_revision, 1);
    fx_outcome_free(&o);

    /* Update at the right revision. */
    assert_int_equal(fx_put(&f, CM "a", v2, KCP_STORE_IF_REVISION, 1, &o), 0);
    assert_int_equal(o.index, 3);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.obj[0]->mod_revision, 3);
    assert_int_equal(o.obj[0]->create_revision, 1);
    assert_int_equal(o.prev[0]->mod_revision, 1);
    fx_outcome_free(&o);

    /* Conflict at a stale revision: the current version comes back as prev. */
    assert_int_equal(fx_put(&f, CM "a", v1, KCP_STORE_IF_REVISION, 1, &o), 0);
    assert_int_equal(o.err, KCP_ECONFLICT);
    assert_int_equal(o.prev[0]->mod_revision, 3);
    fx_outcome_free(&o);

    /* NotFound: update of a missing key, delete of a missing key. */
    assert_int_equal(fx_put(&f, CM "zz", v1, KCP_STORE_IF_PRESENT, 0, &o), 0);
    assert_int_equal(o.err, KCP_ENOTFOUND);
    fx_outcome_free(&o);
    assert_int_equal(fx_put(&f, CM "zz", v1, KCP_STORE_IF_REVISION, 3, &o), 0);
    assert_int_equal(o.err, KCP_ENOTFOUND);
    fx_outcome_free(&o);
    assert_int_equal(fx_del(&f, CM "zz", KCP_STORE_IF_ANY, 0, &o), 0);
    assert_int_equal(o.err, KCP_ENOTFOUND);
    fx_outcome_free(&o);
    assert_int_equal(fx_del(&f, CM "a", KCP_STORE_IF_REVISION, 1, &o), 0);
    assert_int_equal(o.err, KCP_ECONFLICT);
    fx_outcome_free(&o);

    /* Unconditional put is an upsert. */
    assert_int_equal(fx_put(&f, CM "b", v1, KCP_STORE_IF_ANY, 0, &o), 0);
    assert_int_equal(o.err, 0);
    fx_outcome_free(&o);

    assert_int_equal(kcp_store_get(f.s, CM "a", strlen(CM "a"), 0, &got), 0);
    assert_int_equal(got->mod_revision, 3);
    assert_non_null(strstr(got->json, "\"two\""));
    kcp_obj_unref(got);

    /* Delete: the object as deleted carries the deletion's revision. */
    assert_int_equal(fx_del(&f, CM "a", KCP_STORE_IF_REVISION, 3, &o), 0);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.obj[0]->mod_revision, o.index);
    assert_int_equal(o.obj[0]->create_revision, 1);
    char num[24];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)o.index);
    assert_string_equal(rv_of(o.obj[0]), num);
    assert_int_equal(o.prev[0]->mod_revision, 3);
    fx_outcome_free(&o);
    assert_int_equal(kcp_store_get(f.s, CM "a", strlen(CM "a"), 0, &got), KCP_ENOTFOUND);
    assert_null(got);

    /* Created again: a new create revision. */
    assert_int_equal(fx_put(&f, CM "a", v1, KCP_STORE_IF_ABSENT, 0, &o), 0);
    assert_int_equal(o.obj[0]->create_revision, o.index);
    fx_outcome_free(&o);

    struct kcp_store_stats st;
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.objects, 2);
    assert_int_equal(st.entries_applied, st.revision);
    free(v1);
    free(v2);
    fx_teardown(&f);
}

static void test_atomic_and_partial(void **state)
{
    struct fx f;
    struct fx_outcome o;
    struct kcp_obj *got = NULL;
    fx_setup(&f, NULL);
    assert_int_equal(fx_put(&f, CM "x", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0, &o), 0);
    fx_outcome_free(&o);

    struct kcp_store_op ops[2] = {
        fx_op_put(CM "new", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0),
        fx_op_put(CM "x", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0),
    };
    /* Atomic: one failure and neither op applies. */
    assert_int_equal(fx_write(&f, KCP_STORE_ATOMIC, 2, ops, &o), 0);
    assert_int_equal(o.err, KCP_EEXIST);
    assert_int_equal(o.op_err[0], 0);
    assert_false(o.applied[0]);
    assert_int_equal(o.op_err[1], KCP_EEXIST);
    fx_outcome_free(&o);
    assert_int_equal(kcp_store_get(f.s, CM "new", strlen(CM "new"), 0, &got), KCP_ENOTFOUND);

    /* Not atomic: each op on its own. */
    assert_int_equal(fx_write(&f, 0, 2, ops, &o), 0);
    assert_int_equal(o.err, KCP_EEXIST);
    assert_true(o.applied[0]);
    assert_false(o.applied[1]);
    fx_outcome_free(&o);
    assert_int_equal(kcp_store_get(f.s, CM "new", strlen(CM "new"), 0, &got), 0);
    kcp_obj_unref(got);

    /* A value that is not an object fails deterministically at apply (Invalid). */
    assert_int_equal(fx_put(&f, CM "bad", "[1,2]", KCP_STORE_IF_ANY, 0, &o), 0);
    assert_int_equal(o.err, KCP_EINVALID);
    fx_outcome_free(&o);
    assert_int_equal(fx_put(&f, CM "bad", "{\"metadata\":", KCP_STORE_IF_ANY, 0, &o), 0);
    assert_int_equal(o.err, KCP_EINVALID);
    fx_outcome_free(&o);
    fx_teardown(&f);
}

static int cb_count;
static void never_cb(struct kcp_store_req *req, int status, const struct kcp_store_result *r)
{
    cb_count++;
}

static void test_propose_rejects(void **state)
{
    struct kcp_store_options opts;
    struct fx f;
    struct kcp_store_req req = {.cb = never_cb};
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_store_options_default(&opts);
    opts.max_value_bytes = 64;
    fx_setup(&f, &opts);
    cb_count = 0;
    assert_int_equal(kcp_store_propose(f.s, "garbage", 7, &req), KCP_EBADREQUEST);
    char big[100];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    struct kcp_store_op op = fx_op_put(CM "big", big, KCP_STORE_IF_ANY, 0);
    fx_encode(&b, 0, 1, &op);
    assert_int_equal(kcp_store_propose(f.s, b.data, b.len, &req), KCP_ETOOLARGE);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT);
    assert_int_equal(cb_count, 0);
    assert_int_equal(kcp_store_revision(f.s), 0);
    kcp_buf_free(&b);
    fx_teardown(&f);
}

static void test_monotonic_across_reopen(void **state)
{
    struct fx f;
    struct fx_outcome o;
    struct kcp_obj *before = NULL, *after = NULL;
    fx_setup(&f, NULL);
    for (int i = 0; i < 5; i++) {
        char key[64], *v = fx_configmap("default", "m", "x");
        snprintf(key, sizeof(key), CM "m%d", i);
        assert_int_equal(fx_put(&f, key, v, KCP_STORE_IF_ABSENT, 0, &o), 0);
        fx_outcome_free(&o);
        free(v);
    }
    assert_int_equal(fx_del(&f, CM "m0", KCP_STORE_IF_ANY, 0, &o), 0);
    fx_outcome_free(&o);
    assert_int_equal(fx_put(&f, CM "m1", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0, &o), 0);
    assert_int_equal(o.err, KCP_EEXIST); /* a failed entry moves the revision too */
    fx_outcome_free(&o);
    assert_int_equal(kcp_store_revision(f.s), 7);
    assert_int_equal(kcp_store_get(f.s, CM "m3", strlen(CM "m3"), 0, &before), 0);

    fx_reopen(&f);
    struct stat sb;
    char path[128];
    snprintf(path, sizeof(path), "%s/data.mdb", f.dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(kcp_store_revision(f.s), 7);
    assert_int_equal(kcp_store_applied_index(f.s), 7);
    assert_int_equal(kcp_store_get(f.s, CM "m3", strlen(CM "m3"), 0, &after), 0);
    assert_int_equal(after->json_len, before->json_len);
    assert_memory_equal(after->json, before->json, before->json_len);
    assert_int_equal(after->mod_revision, 4);
    assert_int_equal(after->create_revision, 4);
    kcp_obj_unref(after);
    assert_int_equal(kcp_store_get(f.s, CM "m0", strlen(CM "m0"), 0, &after), KCP_ENOTFOUND);
    kcp_obj_unref(before);

    assert_int_equal(fx_put(&f, CM "m9", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0, &o), 0);
    assert_int_equal(o.index, 8);
    fx_outcome_free(&o);
    struct kcp_store_stats st;
    kcp_store_stats(f.s, &st);
    assert_int_equal(st.objects, 5);
    fx_teardown(&f);
}

/* Entries proposed back to back see each other's effects before either is durable. */
static void test_pipelined_preconditions(void **state)
{
    struct fx f;
    struct fx_outcome a, b, c, d;
    fx_setup(&f, NULL);
    assert_int_equal(
        fx_propose_op(&f, fx_op_put(CM "p", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0), &a), 0);
    assert_int_equal(
        fx_propose_op(&f, fx_op_put(CM "p", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0), &b), 0);
    assert_int_equal(
        fx_propose_op(&f, fx_op_put(CM "p", "{\"metadata\":{}}", KCP_STORE_IF_REVISION, 1), &c), 0);
    assert_int_equal(fx_propose_op(&f, fx_op_del(CM "p", KCP_STORE_IF_REVISION, 3), &d), 0);
    /* Nothing is visible before it is durable. */
    struct kcp_obj *got = NULL;
    assert_int_equal(kcp_store_get(f.s, CM "p", strlen(CM "p"), 0, &got), KCP_ENOTFOUND);
    fx_run_until(&f, &d.done);
    assert_true(a.done && b.done && c.done);
    assert_int_equal(a.err, 0);
    assert_int_equal(b.err, KCP_EEXIST);
    assert_int_equal(c.err, 0);
    assert_int_equal(c.obj[0]->create_revision, 1);
    assert_int_equal(d.err, 0);
    assert_int_equal(d.prev[0]->mod_revision, 3);
    assert_int_equal(kcp_store_get(f.s, CM "p", strlen(CM "p"), 0, &got), KCP_ENOTFOUND);
    fx_outcome_free(&a);
    fx_outcome_free(&b);
    fx_outcome_free(&c);
    fx_outcome_free(&d);
    fx_teardown(&f);
}

/* The applied hook sees every entry once, in order, before the proposer's callback. */
struct hook_log {
    uint64_t last;
    int calls;
    int conflicts;
    struct fx_outcome *watch_for;
    bool seen_before_cb;
};
static void hook_on_applied(void *data, const struct kcp_store_entry *e,
                            const struct kcp_store_result *r)
{
    struct hook_log *h = data;
    assert_true(r->index > h->last);
    h->last = r->index;
    h->calls++;
    assert_string_equal(e->verb, "create");
    assert_string_equal(e->user, "system:admin");
    assert_int_equal(e->wall_s, 1700000000);
    if (r->err == KCP_ECONFLICT) {
        h->conflicts++;
        assert_int_equal(e->ops[0].revision, 1); /* what the writer had read */
    }
    if (h->watch_for && !h->watch_for->done)
        h->seen_before_cb = true;
}

static void test_applied_hook(void **state)
{
    struct fx f;
    struct fx_outcome o;
    struct hook_log h = {0};
    fx_setup(&f, NULL);
    kcp_store_set_applied_hook(f.s, hook_on_applied, &h);
    assert_int_equal(fx_put(&f, CM "h", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0, &o), 0);
    fx_outcome_free(&o);
    assert_int_equal(fx_put(&f, CM "h", "{\"metadata\":{}}", KCP_STORE_IF_REVISION, 1, &o), 0);
    fx_outcome_free(&o);
    h.watch_for = &o;
    assert_int_equal(fx_put(&f, CM "h", "{\"metadata\":{}}", KCP_STORE_IF_REVISION, 1, &o), 0);
    assert_int_equal(o.err, KCP_ECONFLICT);
    assert_true(h.seen_before_cb);
    fx_outcome_free(&o);
    assert_int_equal(h.calls, 3);
    assert_int_equal(h.conflicts, 1);
    fx_teardown(&f);
}

/* A stand-in for Raft: proposals are held, then "committed" with indexes of its choosing. */
struct fake_raft {
    struct kcp_store_proposer p;
    struct kcp_buf entries[4];
    struct kcp_store_req *reqs[4];
    int n;
};
static int fake_propose(struct kcp_store_proposer *p, struct kcp_store *s, const void *entry,
                        size_t len, struct kcp_store_req *req)
{
    struct fake_raft *r = p->data;
    if (r->n == 4)
        return KCP_EUNAVAILABLE;
    kcp_buf_append(&r->entries[r->n], entry, len);
    r->reqs[r->n++] = req;
    return 0;
}

static void test_custom_proposer(void **state)
{
    struct fx f;
    struct fx_outcome a, b, c, peer;
    struct fake_raft r = {0};
    fx_setup(&f, NULL);
    r.p.propose = fake_propose;
    r.p.data = &r;
    kcp_store_set_proposer(f.s, &r.p);
    assert_int_equal(
        fx_propose_op(&f, fx_op_put(CM "r1", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0), &a), 0);
    assert_int_equal(
        fx_propose_op(&f, fx_op_put(CM "r2", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0), &b), 0);
    assert_int_equal(
        fx_propose_op(&f, fx_op_put(CM "r3", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0), &c), 0);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT);
    assert_false(a.done);
    assert_int_equal(kcp_store_applied_index(f.s), 0);

    /* Commit at index 10 (Raft's own entries took 1..9), a peer's entry at 11, ours at 12. */
    assert_int_equal(kcp_store_apply(f.s, 10, r.entries[0].data, r.entries[0].len, r.reqs[0]), 0);
    struct kcp_buf pe = KCP_BUF_INIT;
    fx_outcome_init(&peer);
    struct kcp_store_op peer_op = fx_op_put(CM "r1", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0);
    fx_encode(&pe, 0, 1, &peer_op);
    assert_int_equal(kcp_store_apply(f.s, 11, pe.data, pe.len, NULL), 0);
    assert_int_equal(kcp_store_apply(f.s, 11, pe.data, pe.len, NULL), KCP_EINVAL);
    /* A committed entry that does not decode still takes its index. */
    assert_int_equal(kcp_store_apply(f.s, 12, "junk", 4, NULL), 0);
    assert_int_equal(kcp_store_apply(f.s, 13, r.entries[1].data, r.entries[1].len, r.reqs[1]), 0);
    kcp_store_req_fail(r.reqs[2], KCP_EUNAVAILABLE); /* lost leadership */
    assert_true(c.done);
    assert_int_equal(c.status, KCP_EUNAVAILABLE);
    fx_run_until(&f, &b.done);
    assert_int_equal(a.index, 10);
    assert_int_equal(a.err, 0);
    assert_int_equal(b.index, 13);
    assert_int_equal(kcp_store_revision(f.s), 13);
    /* Replays after a restart are recognised. */
    assert_int_equal(kcp_store_apply(f.s, 11, pe.data, pe.len, NULL), KCP_EEXIST);
    fx_reopen(&f);
    assert_int_equal(kcp_store_apply(f.s, 13, pe.data, pe.len, NULL), KCP_EEXIST);
    assert_int_equal(kcp_store_revision(f.s), 13);
    /* Back to local: indexes continue. */
    kcp_store_set_proposer(f.s, NULL);
    assert_int_equal(fx_put(&f, CM "r4", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0, &peer), 0);
    assert_int_equal(peer.index, 14);
    fx_outcome_free(&peer);
    fx_outcome_free(&a);
    fx_outcome_free(&b);
    fx_outcome_free(&c);
    kcp_buf_free(&pe);
    for (int i = 0; i < 4; i++)
        kcp_buf_free(&r.entries[i]);
    fx_teardown(&f);
}

static int enc_freed;
static void enc_free(void *p)
{
    enc_freed++;
    free(p);
}

static void test_encodings(void **state)
{
    struct fx f;
    struct fx_outcome o;
    struct kcp_obj *g1 = NULL, *g2 = NULL;
    size_t len = 0;
    fx_setup(&f, NULL);
    enc_freed = 0;
    assert_int_equal(fx_put(&f, CM "e", "{\"metadata\":{}}", KCP_STORE_IF_ABSENT, 0, &o), 0);
    fx_outcome_free(&o);
    assert_int_equal(kcp_store_get(f.s, CM "e", strlen(CM "e"), 0, &g1), 0);
    assert_int_equal(kcp_store_get(f.s, CM "e", strlen(CM "e"), 0, &g2), 0);
    assert_ptr_equal(g1, g2); /* one shared version */
    assert_null(kcp_obj_encoding(g1, KCP_OBJ_ENC_PROTOBUF, &len));
    const void *pb =
        kcp_obj_set_encoding(g1, KCP_OBJ_ENC_PROTOBUF, kcp_strdup("pb1"), 3, enc_free, &len);
    assert_string_equal(pb, "pb1");
    /* The second builder loses: its bytes are freed, the first stay. */
    pb = kcp_obj_set_encoding(g2, KCP_OBJ_ENC_PROTOBUF, kcp_strdup("pb2"), 3, enc_free, &len);
    assert_string_equal(pb, "pb1");
    assert_int_equal(enc_freed, 1);
    assert_string_equal(kcp_obj_encoding(g2, KCP_OBJ_ENC_PROTOBUF, &len), "pb1");
    assert_int_equal(len, 3);
    /* Replacing the object: the old version lives while references remain. */
    assert_int_equal(fx_put(&f, CM "e", "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0, &o), 0);
    fx_outcome_free(&o);
    kcp_obj_unref(g1);
    assert_int_equal(enc_freed, 1);
    kcp_obj_unref(g2);
    fx_teardown(&f); /* the history's reference goes with the store */
    assert_int_equal(enc_freed, 2);
}

int test_apply_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_update_delete),
        cmocka_unit_test(test_atomic_and_partial),
        cmocka_unit_test(test_propose_rejects),
        cmocka_unit_test(test_monotonic_across_reopen),
        cmocka_unit_test(test_pipelined_preconditions),
        cmocka_unit_test(test_applied_hook),
        cmocka_unit_test(test_custom_proposer),
        cmocka_unit_test(test_encodings),
    };
    return cmocka_run_group_tests_name("store.apply", tests, NULL, NULL);
}
