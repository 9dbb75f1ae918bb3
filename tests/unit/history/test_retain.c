/* Retention and reading on temporary repositories: squash, repack, ids, conflicts, log/show. */
#include "th.h"

#include "history_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entry i (1-based) updates configmap c<i % 4> to value i, dated day_s apart. */
static void put(struct history_rec *r, uint64_t i, int64_t day_s, enum kcp_store_precond pre,
                uint64_t rev, int err)
{
    char name[16], val[16];
    snprintf(name, sizeof(name), "c%d", (int)(i % 4));
    snprintf(val, sizeof(val), "%d", (int)i);
    char *json = th_configmap(name, val, i);
    char *key = kcp_sprintf("/core/configmaps/default/%s", name);
    struct kcp_store_op op = {KCP_STORE_PUT, pre, rev, key, strlen(key), json, strlen(json)};
    struct kcp_store_entry e = {.wall_s = 1700000000 + (int64_t)i * day_s,
                                .verb = "update",
                                .user = "carol",
                                .request_id = "",
                                .nops = 1,
                                .ops = &op};
    struct kcp_store_op_result res = {.err = err, .applied = err == 0};
    assert_int_equal(history_rec_entry(r, i, &e, &res, 1), 0);
    free(json);
    free(key);
}

/* n entries 1..n into a new repository at path (a conflict at 12 when n >= 12). */
static void build(const char *path, uint64_t n, int64_t day_s)
{
    struct history_rec r;
    assert_int_equal(history_rec_open(&r, path, NULL), 0);
    for (uint64_t i = 1; i <= n; i++) {
        if (i == 12) /* a stale write to c0, which had been read at revision 4 (c0 = 4) */
            put(&r, i, day_s, KCP_STORE_IF_REVISION, 4, KCP_ECONFLICT);
        else
            put(&r, i, day_s, KCP_STORE_IF_ANY, 0, 0);
        if (i % 7 == 0)
            assert_int_equal(history_rec_flush(&r), 0); /* several packs */
    }
    assert_int_equal(history_rec_flush(&r), 0);
    history_rec_close(&r);
}

struct main_line {
    git_oid id[64], tree[64];
    uint64_t idx[64];
    size_t n;
};

static void read_line(git_repository *repo, struct main_line *l)
{
    git_object *o = NULL;
    memset(l, 0, sizeof(*l));
    assert_int_equal(git_revparse_single(&o, repo, HISTORY_MAIN_REF), 0);
    git_commit *c = (git_commit *)o;
    while (c) {
        assert_true(l->n < 64);
        git_oid_cpy(&l->id[l->n], git_commit_id(c));
        git_oid_cpy(&l->tree[l->n], git_commit_tree_id(c));
        l->idx[l->n] = history_trailer_u64(git_commit_message(c), "Raft-Index");
        l->n++;
        git_commit *p = NULL;
        if (git_commit_parentcount(c))
            assert_int_equal(git_commit_parent(&p, c, 0), 0);
        git_commit_free(c);
        c = p;
    }
}

static int count_obj(const git_oid *id, void *payload)
{
    (*(size_t *)payload)++;
    return 0;
}

static size_t count_objects(git_repository *repo)
{
    git_odb *odb = NULL;
    size_t n = 0;
    assert_int_equal(git_repository_odb(&odb, repo), 0);
    assert_int_equal(git_odb_foreach(odb, count_obj, &n), 0);
    git_odb_free(odb);
    return n;
}

static git_repository *open_repo(const char *path)
{
    git_repository *repo = NULL;
    assert_int_equal(git_repository_open_bare(&repo, path), 0);
    return repo;
}

static char *message_of(git_repository *repo, const git_oid *id)
{
    git_commit *c = NULL;
    assert_int_equal(git_commit_lookup(&c, repo, id), 0);
    char *m = kcp_strdup(git_commit_message(c));
    git_commit_free(c);
    return m;
}

static void test_squash_keep_commits(void **state)
{
    char dir[64];
    struct main_line before, after;
    struct kcp_history_squash_result res;
    struct kcp_history_retention keep = {.keep_commits = 5};
    th_tmpdir(dir);
    char *path = kcp_sprintf("%s/history.git", dir);
    build(path, 20, 60);
    git_repository *repo = open_repo(path);
    read_line(repo, &before);
    size_t objects_before = count_objects(repo);
    git_repository_free(repo);
    assert_int_equal(before.n, 19); /* the conflict is not on the main line */

    assert_int_equal(kcp_history_squash(&res, path, &keep), 0);
    assert_int_equal(res.squashed, 14);
    assert_int_equal(res.kept, 5);
    assert_int_equal(res.first_index, 1);
    assert_int_equal(res.last_index, 15);
    assert_true(res.bytes_after < res.bytes_before);

    repo = open_repo(path);
    read_line(repo, &after);
    assert_int_equal(after.n, 5);
    for (size_t i = 0; i < 5; i++) {
        /* Same trees and Raft-Index: the root holds the state as of the cut. */
        assert_true(git_oid_equal(&after.tree[i], &before.tree[i]));
        assert_int_equal(after.idx[i], before.idx[i]);
        assert_false(git_oid_equal(&after.id[i], &before.id[i]));
    }
    char *root = message_of(repo, &after.id[4]);
    assert_non_null(strstr(root, "update configmaps/default/c0 by carol\n"));
    assert_non_null(strstr(root, "squashed into it: 14 commits, Raft-Index 1..15."));
    assert_int_equal(history_trailer_u64(root, "Raft-Index"), 16);
    assert_int_equal(history_trailer_u64(root, "Squashed-Commits"), 14);
    free(root);
    char *m_new = message_of(repo, &after.id[0]);
    git_repository_free(repo);
    /* Unreachable objects are gone: one pack, no loose objects, fewer objects. */
    repo = open_repo(path);
    assert_true(count_objects(repo) < objects_before);
    struct kcp_history_size sz = {0};
    assert_int_equal(kcp_history_size(&sz, path), 0);
    assert_int_equal(sz.packs, 1);
    assert_int_equal(sz.loose_objects, 0);
    assert_int_equal(sz.commits, 5);
    assert_int_equal(sz.first_index, 16);
    assert_int_equal(sz.last_index, 20);
    assert_int_equal(sz.head_objects, 4);
    /* The conflict had read revision 4 (squashed): its branch is gone. */
    assert_int_equal(sz.conflicts, 0);
    assert_int_equal(res.conflicts_dropped, 1);
    git_repository_free(repo);
    /* The newer commits keep their messages byte for byte. */
    assert_non_null(strstr(m_new, "Raft-Index: 20\n"));
    assert_null(strstr(m_new, "Squashed"));
    free(m_new);

    /* Again with the same rule: nothing to do. Then further: the counts add up. */
    assert_int_equal(kcp_history_squash(&res, path, &keep), 0);
    assert_int_equal(res.squashed, 0);
    keep.keep_commits = 2;
    assert_int_equal(kcp_history_squash(&res, path, &keep), 0);
    assert_int_equal(res.squashed, 17);
    assert_int_equal(res.first_index, 1);
    assert_int_equal(res.last_index, 18);
    free(path);
    th_rmrf(dir);
}

/* Two repositories from the same entries squash to the same ids. */
static void test_squash_deterministic(void **state)
{
    char d1[64], d2[64];
    char h1[GIT_OID_HEXSZ + 1], h2[GIT_OID_HEXSZ + 1];
    struct kcp_history_squash_result res;
    struct kcp_history_retention keep = {.keep_commits = 9};
    th_tmpdir(d1);
    th_tmpdir(d2);
    char *p1 = kcp_sprintf("%s/a.git", d1), *p2 = kcp_sprintf("%s/b.git", d2);
    build(p1, 30, 60);
    build(p2, 30, 60);
    assert_int_equal(kcp_history_squash(&res, p1, &keep), 0);
    assert_int_equal(kcp_history_squash(&res, p2, &keep), 0);
    git_repository *r1 = open_repo(p1), *r2 = open_repo(p2);
    git_oid a, b;
    assert_int_equal(git_reference_name_to_id(&a, r1, HISTORY_MAIN_REF), 0);
    assert_int_equal(git_reference_name_to_id(&b, r2, HISTORY_MAIN_REF), 0);
    git_oid_tostr(h1, sizeof(h1), &a);
    git_oid_tostr(h2, sizeof(h2), &b);
    assert_string_equal(h1, h2);
    git_repository_free(r1);
    git_repository_free(r2);
    free(p1);
    free(p2);
    th_rmrf(d1);
    th_rmrf(d2);
}

/* Days count back from the newest commit; a conflict about kept commits is rewritten. */
static void test_squash_days_and_conflicts(void **state)
{
    char dir[64];
    struct kcp_history_squash_result res;
    struct kcp_history_retention keep = {.keep_days = 3};
    struct main_line after;
    th_tmpdir(dir);
    char *path = kcp_sprintf("%s/history.git", dir);
    {
        struct history_rec r;
        assert_int_equal(history_rec_open(&r, path, NULL), 0);
        for (uint64_t i = 1; i <= 10; i++)
            put(&r, i, 86400, KCP_STORE_IF_ANY, 0, 0);
        /* Stale at 11: read revision 9 (kept), current head 10 (kept). */
        put(&r, 11, 86400, KCP_STORE_IF_REVISION, 9, KCP_ECONFLICT);
        assert_int_equal(history_rec_flush(&r), 0);
        history_rec_close(&r);
    }
    assert_int_equal(kcp_history_squash(&res, path, &keep), 0);
    /* Newest at day 10: days 7..10 are within 3 days of it. */
    assert_int_equal(res.kept, 4);
    git_repository *repo = open_repo(path);
    read_line(repo, &after);
    assert_int_equal(after.n, 4);
    assert_int_equal(after.idx[3], 7);
    git_object *c = NULL;
    assert_int_equal(git_revparse_single(&c, repo, "refs/conflicts/configmaps/default/c3/11"), 0);
    git_commit *cc = (git_commit *)c;
    assert_int_equal(git_commit_parentcount(cc), 1);
    assert_true(git_oid_equal(git_commit_parent_id(cc, 0), &after.id[1])); /* index 9 */
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof(hex), &after.id[0]);
    char *cur = history_trailer(git_commit_message(cc), "Current-Commit");
    assert_string_equal(cur, hex);
    free(cur);
    git_object_free(c);
    git_repository_free(repo);
    assert_int_equal(res.conflicts_dropped, 0);
    free(path);
    th_rmrf(dir);
}

/* The recorder resumes on a squashed repository: same last index, new commits on the root. */
static void test_record_after_squash(void **state)
{
    char dir[64];
    struct kcp_history_squash_result res;
    struct kcp_history_retention keep = {.keep_commits = 3};
    struct history_rec r;
    struct main_line after;
    th_tmpdir(dir);
    char *path = kcp_sprintf("%s/history.git", dir);
    build(path, 10, 60);
    assert_int_equal(kcp_history_squash(&res, path, &keep), 0);
    assert_int_equal(history_rec_open(&r, path, NULL), 0);
    assert_int_equal(r.last, 10);
    put(&r, 10, 60, KCP_STORE_IF_ANY, 0, 0); /* a replay: skipped */
    put(&r, 11, 60, KCP_STORE_IF_ANY, 0, 0);
    assert_int_equal(history_rec_flush(&r), 0);
    history_rec_close(&r);
    git_repository *repo = open_repo(path);
    read_line(repo, &after);
    assert_int_equal(after.n, 4);
    assert_int_equal(after.idx[0], 11);
    assert_int_equal(after.idx[3], 8);
    git_repository_free(repo);
    free(path);
    th_rmrf(dir);
}

/* ---- reading ---------------------------------------------------------------------------- */

struct seen {
    char verbs[256];
    size_t n;
    uint64_t idx[16];
};

static int on_commit(void *ctx, const struct kcp_history_commit *c)
{
    struct seen *s = ctx;
    assert_string_equal(c->user, "carol");
    assert_int_equal(strlen(c->id), 40);
    s->idx[s->n++] = c->raft_index;
    strncat(s->verbs, c->object, sizeof(s->verbs) - strlen(s->verbs) - 1);
    strncat(s->verbs, " ", sizeof(s->verbs) - strlen(s->verbs) - 1);
    return 0;
}

static int on_conflict(void *ctx, const struct kcp_history_conflict *c)
{
    struct seen *s = ctx;
    assert_string_equal(c->object, "configmaps/default/c0");
    assert_int_equal(c->read_revision, 4);
    assert_int_equal(strlen(c->current), 40);
    s->idx[s->n++] = c->raft_index;
    return 0;
}

static void test_read(void **state)
{
    char dir[64];
    struct kcp_history_repo *repo = NULL;
    struct kcp_buf b = KCP_BUF_INIT;
    struct seen s = {0};
    bool more = false;
    th_tmpdir(dir);
    char *path = kcp_sprintf("%s/history.git", dir);
    assert_int_equal(kcp_history_repo_open(&repo, path), KCP_ENOTFOUND);
    build(path, 13, 60);
    assert_int_equal(kcp_history_repo_open(&repo, path), 0);

    assert_int_equal(kcp_history_log(repo, NULL, 3, on_commit, &s, &more), 0);
    assert_int_equal(s.n, 3);
    assert_true(more);
    assert_int_equal(s.idx[0], 13);
    assert_string_equal(s.verbs,
                        "configmaps/default/c1 configmaps/default/c3 configmaps/default/c2 ");
    memset(&s, 0, sizeof(s));
    assert_int_equal(kcp_history_log(repo, "configmaps/default/c1", 0, on_commit, &s, &more), 0);
    assert_false(more);
    assert_int_equal(s.n, 4); /* 1, 5, 9, 13 */
    assert_int_equal(s.idx[3], 1);
    assert_int_equal(kcp_history_log(repo, "configmaps", 0, on_commit, &s, NULL), KCP_EINVAL);

    assert_int_equal(kcp_history_show(&b, repo, "configmaps/default/c1", "main~1"), 0);
    assert_non_null(strstr(b.data, "v: \"9\""));
    assert_int_equal(kcp_history_show(&b, repo, "configmaps/default/c1", "nope"), KCP_ENOTFOUND);
    assert_string_equal(kcp_history_repo_error(repo), "unknown commit nope");
    assert_int_equal(kcp_history_show(&b, repo, "configmaps/default/zz", "main"), KCP_ENOTFOUND);
    kcp_buf_reset(&b);
    assert_int_equal(kcp_history_diff(&b, repo, "configmaps/default/c1", NULL, NULL), 0);
    assert_non_null(strstr(b.data, "-  v: \"1\"\n+  v: \"13\"\n"));
    kcp_buf_reset(&b);
    assert_int_equal(kcp_history_diff(&b, repo, "configmaps/default/c1", "main~3", "main"), 0);
    assert_non_null(strstr(b.data, "-  v: \"9\"\n+  v: \"13\"\n"));
    assert_int_equal(kcp_history_diff(&b, repo, "configmaps/default/zz", NULL, NULL),
                     KCP_ENOTFOUND);

    memset(&s, 0, sizeof(s));
    assert_int_equal(kcp_history_conflicts(repo, 10, on_conflict, &s, &more), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.idx[0], 12);
    kcp_history_repo_free(repo);
    kcp_buf_free(&b);
    free(path);
    th_rmrf(dir);
}

int test_retain_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_squash_keep_commits),
        cmocka_unit_test(test_squash_deterministic),
        cmocka_unit_test(test_squash_days_and_conflicts),
        cmocka_unit_test(test_record_after_squash),
        cmocka_unit_test(test_read),
    };
    return cmocka_run_group_tests_name("retain", tests, NULL, NULL);
}
