/* The recorder on temporary repositories: naming, YAML both ways, commits, conflicts, ids. */
#include "th.h"

#include "history_int.h"

#include <stdlib.h>
#include <string.h>

static void test_naming(void **state)
{
    struct history_key k;
    struct kcp_buf b = KCP_BUF_INIT;
    const char *key = "/core/configmaps/default/hist";
    assert_int_equal(history_key_parse(&k, key, strlen(key)), 0);
    history_key_path(&b, &k);
    assert_string_equal(b.data, "core/configmaps/default/hist.yaml");
    kcp_buf_reset(&b);
    history_key_spec(&b, &k);
    assert_string_equal(b.data, "configmaps/default/hist");
    key = "/core/namespaces/_/shop";
    assert_int_equal(history_key_parse(&k, key, strlen(key)), 0);
    history_key_path(&b, &k);
    assert_string_equal(b.data, "core/namespaces/_cluster/shop.yaml");
    kcp_buf_reset(&b);
    history_key_spec(&b, &k);
    assert_string_equal(b.data, "namespaces/shop");
    key = "/rbac.authorization.k8s.io/clusterroles/_/system:node";
    assert_int_equal(history_key_parse(&k, key, strlen(key)), 0);
    kcp_buf_reset(&b);
    history_key_ref(&b, &k);
    assert_string_equal(b.data, "clusterroles.rbac.authorization.k8s.io/_cluster/system%3Anode");
    const char *bad[] = {"",
                         "/",
                         "/core/configmaps/default",
                         "/core//default/x",
                         "core/a/b/c",
                         "/core/configmaps/default/..",
                         NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(history_key_parse(&k, bad[i], strlen(bad[i])), KCP_EINVAL);

    assert_int_equal(kcp_history_object_path(&b, "configmaps/default/hist"), 0);
    assert_string_equal(b.data, "core/configmaps/default/hist.yaml");
    assert_int_equal(kcp_history_object_path(&b, "namespaces/shop"), 0);
    assert_string_equal(b.data, "core/namespaces/_cluster/shop.yaml");
    assert_int_equal(kcp_history_object_path(&b, "deployments.apps/default/web"), 0);
    assert_string_equal(b.data, "apps/deployments/default/web.yaml");
    assert_int_equal(kcp_history_object_path(&b, "configmaps"), KCP_EINVAL);
    assert_int_equal(kcp_history_object_path(&b, "configmaps//x"), KCP_EINVAL);
    assert_int_equal(kcp_history_object_path(&b, "a/b/c/d"), KCP_EINVAL);

    struct history_rules r;
    history_rules_init(&r, NULL);
    key = "/coordination.k8s.io/leases/kube-system/x";
    assert_int_equal(history_key_parse(&k, key, strlen(key)), 0);
    assert_true(history_rules_skip(&r, &k));
    key = "/core/events/default/x";
    assert_int_equal(history_key_parse(&k, key, strlen(key)), 0);
    assert_true(history_rules_skip(&r, &k));
    key = "/core/configmaps/default/x";
    assert_int_equal(history_key_parse(&k, key, strlen(key)), 0);
    assert_false(history_rules_skip(&r, &k));
    history_rules_free(&r);
    kcp_buf_free(&b);
}

/* What history writes reads back as the same JSON (minus the churn it drops). */
static void test_yaml_round_trip(void **state)
{
    const char *in =
        "{\"kind\":\"X\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":"
        "\"9\",\"managedFields\":[{\"manager\":\"m\",\"time\":\"t\",\"fieldsV1\":{\"f:data\":{}}}],"
        "\"labels\":{\"a: b\":\"true\",\"n\":\"1\",\"e\":\"\",\"sp\":\" x \"}},"
        "\"spec\":{\"list\":[1,2.5,true,null,\"s\",\"- dash\",{\"k\":\"v\",\"k2\":[\"x\"]},[],{}],"
        "\"nested\":{\"deep\":{\"deeper\":[{\"a\":1},{\"b\":{\"c\":\"multi\\nline\"}}]}},"
        "\"u\":\"caf\\u00e9 # not a comment\",\"q\":\"\\\"quoted\\\"\",\"empty\":{},\"none\":[]}}";
    const char *want =
        "{\"kind\":\"X\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\","
        "\"managedFields\":[{\"manager\":\"m\",\"fieldsV1\":{\"f:data\":{}}}],"
        "\"labels\":{\"a: b\":\"true\",\"n\":\"1\",\"e\":\"\",\"sp\":\" x \"}},"
        "\"spec\":{\"list\":[1,2.5,true,null,\"s\",\"- dash\",{\"k\":\"v\",\"k2\":[\"x\"]},[],{}],"
        "\"nested\":{\"deep\":{\"deeper\":[{\"a\":1},{\"b\":{\"c\":\"multi\\nline\"}}]}},"
        "\"u\":\"caf\\u00e9 # not a comment\",\"q\":\"\\\"quoted\\\"\",\"empty\":{},\"none\":[]}}";
    struct kcp_buf y = KCP_BUF_INIT;
    json_t *got = NULL, *exp = json_loads(want, 0, NULL);
    assert_int_equal(history_render(&y, in, strlen(in)), 0);
    assert_null(strstr(y.data, "resourceVersion"));
    assert_null(strstr(y.data, "time:"));
    assert_int_equal(kcp_history_yaml_parse(&got, y.data, y.len), 0);
    assert_true(json_equal(got, exp));
    json_decref(got);
    json_decref(exp);
    assert_int_equal(history_render(&y, "[1]", 3), KCP_EINVALID);
    assert_int_equal(kcp_history_yaml_parse(&got, "", 0), KCP_EBADREQUEST);
    assert_int_equal(kcp_history_yaml_parse(&got, "a: 1\n  b: 2\n", 12), KCP_EBADREQUEST);
    kcp_buf_free(&y);
}

/* Records one single-op entry through the recorder. */
static void rec_op(struct history_rec *r, uint64_t index, const char *verb, const char *key,
                   const char *json, enum kcp_store_precond pre, uint64_t rev, int err)
{
    struct kcp_store_op op = {json ? KCP_STORE_PUT : KCP_STORE_DELETE,
                              pre,
                              rev,
                              key,
                              strlen(key),
                              json,
                              json ? strlen(json) : 0};
    struct kcp_store_entry e = {.wall_s = 1700000000 + (int64_t)index,
                                .verb = verb,
                                .user = "alice",
                                .request_id = "r",
                                .nops = 1,
                                .ops = &op};
    struct kcp_store_op_result res = {.err = err, .applied = err == 0};
    assert_int_equal(history_rec_entry(r, index, &e, &res, 1), 0);
}

static void record_story(struct history_rec *r)
{
    char *v1 = th_configmap("hist", "1", 1), *v2 = th_configmap("hist", "2", 2),
         *v3 = th_configmap("hist", "3", 3), *ev = th_configmap("e", "x", 5);
    const char *key = "/core/configmaps/default/hist";
    rec_op(r, 1, "create", key, v1, KCP_STORE_IF_ABSENT, 0, 0);
    rec_op(r, 2, "update", key, v2, KCP_STORE_IF_REVISION, 1, 0);
    rec_op(r, 3, "update", key, v3, KCP_STORE_IF_REVISION, 1, KCP_ECONFLICT); /* stale */
    rec_op(r, 4, "delete", key, NULL, KCP_STORE_IF_ANY, 0, 0);
    rec_op(r, 5, "create", "/core/events/default/e", ev, KCP_STORE_IF_ABSENT, 0, 0);
    rec_op(r, 6, "create", key, v1, KCP_STORE_IF_ABSENT, 0, KCP_EEXIST); /* failed: nothing */
    assert_int_equal(history_rec_flush(r), 0);
    free(v1);
    free(v2);
    free(v3);
    free(ev);
}

static char *blob_text(git_repository *repo, const char *rev, const char *path)
{
    git_object *o = NULL;
    char *spec = kcp_sprintf("%s:%s", rev, path), *s = NULL;
    if (git_revparse_single(&o, repo, spec) == 0)
        s = kcp_strndup(git_blob_rawcontent((git_blob *)o),
                        (size_t)git_blob_rawsize((git_blob *)o));
    git_object_free(o);
    free(spec);
    return s;
}

static void test_commits_and_conflicts(void **state)
{
    char dir[64];
    struct history_rec r;
    th_tmpdir(dir);
    char *path = kcp_sprintf("%s/history.git", dir);
    assert_int_equal(history_rec_open(&r, path, NULL), 0);
    record_story(&r);
    assert_int_equal(r.commits, 3); /* create, update, delete; not the event, not the failure */
    assert_int_equal(r.conflicts, 1);
    assert_int_equal(r.last, 6);

    git_repository *repo = r.repo;
    git_object *o = NULL;
    /* HEAD -> refs/heads/main; the delete emptied the tree. */
    assert_int_equal(git_revparse_single(&o, repo, "HEAD"), 0);
    git_commit *head = (git_commit *)o;
    assert_int_equal(history_trailer_u64(git_commit_message(head), "Raft-Index"), 4);
    git_object *t = NULL;
    assert_int_equal(git_revparse_single(&t, repo, "HEAD^{tree}"), 0);
    assert_int_equal(git_tree_entrycount((git_tree *)t), 0);
    git_object_free(t);
    assert_non_null(strstr(git_commit_message(head), "delete configmaps/default/hist by alice"));
    assert_string_equal(git_commit_author(head)->email, "alice@kcp");
    assert_int_equal(git_commit_author(head)->when.time, 1700000004);
    assert_string_equal(git_commit_committer(head)->name, "kcp");
    git_object_free(o);
    char *v2 = blob_text(repo, "HEAD~1", "core/configmaps/default/hist.yaml");
    assert_non_null(v2);
    assert_non_null(strstr(v2, "v: \"2\""));
    assert_null(strstr(v2, "resourceVersion"));
    free(v2);
    assert_null(blob_text(repo, "HEAD", "core/configmaps/default/hist.yaml"));

    /* The conflict: parent = the commit as of revision 1, tree = it with the rejected v3. */
    const char *cref = "refs/conflicts/configmaps/default/hist/3";
    char *v3 = blob_text(repo, cref, "core/configmaps/default/hist.yaml");
    assert_non_null(v3);
    assert_non_null(strstr(v3, "v: \"3\""));
    free(v3);
    git_object *c = NULL, *p1 = NULL;
    assert_int_equal(git_revparse_single(&c, repo, "refs/conflicts/configmaps/default/hist/3^"), 0);
    assert_int_equal(git_revparse_single(&p1, repo, "HEAD~2"), 0);
    assert_true(git_oid_equal(git_object_id(c), git_object_id(p1)));
    git_object_free(c);
    git_object_free(p1);

    /* The same entries again (a replay after a crash): nothing new. */
    record_story(&r);
    assert_int_equal(r.commits, 3);
    history_rec_close(&r);
    /* Reopened: the last index counts the entries that made no commit. */
    assert_int_equal(history_rec_open(&r, path, NULL), 0);
    assert_int_equal(r.last, 6);
    history_rec_close(&r);
    free(path);
    th_rmrf(dir);
}

static void head_hex(const char *path, char *out)
{
    struct history_rec r;
    assert_int_equal(history_rec_open(&r, path, NULL), 0);
    record_story(&r);
    git_oid_tostr(out, GIT_OID_HEXSZ + 1, &r.head);
    history_rec_close(&r);
}

/* The same entries give byte-identical commits in any repository. */
static void test_deterministic_ids(void **state)
{
    char d1[64], d2[64], h1[GIT_OID_HEXSZ + 1], h2[GIT_OID_HEXSZ + 1];
    th_tmpdir(d1);
    th_tmpdir(d2);
    char *p1 = kcp_sprintf("%s/a.git", d1), *p2 = kcp_sprintf("%s/b.git", d2);
    head_hex(p1, h1);
    head_hex(p2, h2);
    assert_string_equal(h1, h2);
    free(p1);
    free(p2);
    th_rmrf(d1);
    th_rmrf(d2);
}

/* A multi-op entry: ops[i] = {key, json or NULL for a delete}, all applied. */
static void rec_ops(struct history_rec *r, uint64_t index, const char *verb, const char **keys,
                    char **jsons, size_t n)
{
    struct kcp_store_op ops[8];
    struct kcp_store_op_result res[8];
    for (size_t i = 0; i < n; i++) {
        ops[i] = (struct kcp_store_op){jsons[i] ? KCP_STORE_PUT : KCP_STORE_DELETE,
                                       KCP_STORE_IF_ANY,
                                       0,
                                       keys[i],
                                       strlen(keys[i]),
                                       jsons[i],
                                       jsons[i] ? strlen(jsons[i]) : 0};
        res[i] = (struct kcp_store_op_result){.err = 0, .applied = true};
    }
    struct kcp_store_entry e = {.wall_s = 1700000000 + (int64_t)index,
                                .verb = verb,
                                .user = " bob <x> ",
                                .request_id = "",
                                .nops = n,
                                .ops = ops};
    r->term = 7;
    assert_int_equal(history_rec_entry(r, index, &e, res, n), 0);
}

static void expect_hex(const git_oid *id, const char *want)
{
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof(hex), id);
    assert_string_equal(hex, want);
}

/*
 * The bytes of every object are part of the format: replicas running different kcp versions
 * must still agree on commit ids. These ids are what libgit2's git_tree_create_updated and
 * git_commit_create wrote for this story (kcp before the recorder wrote its own objects).
 */
static void test_golden_ids(void **state)
{
    char dir[64];
    struct history_rec r;
    th_tmpdir(dir);
    char *path = kcp_sprintf("%s/history.git", dir);
    assert_int_equal(history_rec_open(&r, path, NULL), 0);
    record_story(&r); /* create, update, conflict, delete (emptying the tree), event, failure */
    char *a = th_configmap("a", "1", 10), *b = th_configmap("b-", "2", 11),
         *c = th_configmap("a.b", "3", 12), *ns = th_configmap("shop", "x", 13),
         *a2 = th_configmap("a", "1", 14), *d = th_configmap("web", "9", 15);
    const char *k1[] = {"/core/configmaps/default/a", "/core/configmaps/default/b-",
                        "/core/configmaps/default/a.b", "/core/namespaces/_/shop",
                        "/apps/deployments/default/web"};
    char *v1[] = {a, b, c, ns, d};
    rec_ops(&r, 7, "create", k1, v1, 5);
    const char *k2[] = {"/core/configmaps/default/a"};
    char *v2[] = {a2}; /* only the resourceVersion changed: no commit */
    rec_ops(&r, 8, "update", k2, v2, 1);
    const char *k3[] = {"/apps/deployments/default/web", "/core/configmaps/default/b-"};
    char *v3[] = {NULL, NULL}; /* apps/ emptied: removed up to the root */
    rec_ops(&r, 9, "delete", k3, v3, 2);
    struct history_snap_obj snap[] = {{k1[0], strlen(k1[0]), a, strlen(a)},
                                      {k1[3], strlen(k1[3]), ns, strlen(ns)}};
    assert_int_equal(history_rec_snapshot(&r, 12, 1700000100, snap, 2), 0);
    assert_int_equal(history_rec_flush(&r), 0);
    assert_int_equal(r.commits, 6);
    expect_hex(&r.head, "a4bc51993d86d0f62994963bd49892da20d0a093");
    git_reference *ref = NULL;
    assert_int_equal(git_reference_lookup(&ref, r.repo, "refs/conflicts/configmaps/default/hist/3"),
                     0);
    expect_hex(git_reference_target(ref), "347082597880d3bc02dc051a0d9a99998a5f2390");
    git_reference_free(ref);
    history_rec_close(&r);
    free(a);
    free(b);
    free(c);
    free(ns);
    free(a2);
    free(d);
    free(path);
    th_rmrf(dir);
}

int test_record_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_naming),
        cmocka_unit_test(test_yaml_round_trip),
        cmocka_unit_test(test_commits_and_conflicts),
        cmocka_unit_test(test_deterministic_ids),
        cmocka_unit_test(test_golden_ids),
    };
    return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
