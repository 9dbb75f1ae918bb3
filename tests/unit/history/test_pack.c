/* The recorder's object store: packs, deltas and folds, checked by reading everything back. */
#include "th.h"

#include "history_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRIES 1500
#define HOT 40   /* configmaps in default: most writes */
#define WIDE 150 /* configmaps in wide: a directory past the longest delta chain */

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void op_put(struct kcp_store_op *op, char **key, char **json, const char *ns,
                   const char *name, uint64_t v)
{
    char val[32];
    snprintf(val, sizeof(val), "%llu", (unsigned long long)v);
    *key = kcp_sprintf("/core/configmaps/%s/%s", ns, name);
    *json = th_configmap(name, val, v);
    *op = (struct kcp_store_op){KCP_STORE_PUT, KCP_STORE_IF_ANY, 0, *key, strlen(*key),
                                *json,         strlen(*json)};
}

/*
 * A seeded mix of updates (hot and wide), deletes, multi-object entries, conflicts and
 * cluster-scoped objects; flushed after an entry when flush(i) says so. Returns the head.
 */
static void story(const char *path, bool (*flush)(uint64_t i, uint64_t *s), git_oid *head)
{
    struct history_rec r;
    uint64_t s = 42, fs = 7;
    assert_int_equal(history_rec_open(&r, path, NULL), 0);
    for (uint64_t i = 1; i <= ENTRIES; i++) {
        struct kcp_store_op ops[3];
        struct kcp_store_op_result res[3];
        char *keys[3] = {NULL}, *jsons[3] = {NULL}, name[16];
        size_t n = 1;
        uint64_t k = rnd(&s) % 100;
        memset(res, 0, sizeof(res));
        if (k < 55) {
            snprintf(name, sizeof(name), "h%llu", (unsigned long long)(rnd(&s) % HOT));
            op_put(&ops[0], &keys[0], &jsons[0], "default", name, i);
        } else if (k < 75) {
            snprintf(name, sizeof(name), "w%llu", (unsigned long long)(rnd(&s) % WIDE));
            op_put(&ops[0], &keys[0], &jsons[0], "wide", name, i);
        } else if (k < 85) {
            bool wide = rnd(&s) % 2;
            snprintf(name, sizeof(name), "%c%llu", wide ? 'w' : 'h',
                     (unsigned long long)(rnd(&s) % (wide ? WIDE : HOT)));
            keys[0] = kcp_sprintf("/core/configmaps/%s/%s", wide ? "wide" : "default", name);
            ops[0] = (struct kcp_store_op){
                KCP_STORE_DELETE, KCP_STORE_IF_ANY, 0, keys[0], strlen(keys[0]), NULL, 0};
        } else if (k < 92) {
            static const char *const ns[3] = {"a", "b", "c"};
            for (n = 0; n < 3; n++)
                op_put(&ops[n], &keys[n], &jsons[n], ns[n], "m", i);
        } else if (k < 96) {
            snprintf(name, sizeof(name), "h%llu", (unsigned long long)(rnd(&s) % HOT));
            op_put(&ops[0], &keys[0], &jsons[0], "default", name, i);
            ops[0].precond = KCP_STORE_IF_REVISION;
            ops[0].revision = rnd(&s) % i;
            res[0].err = KCP_ECONFLICT;
        } else {
            snprintf(name, sizeof(name), "ns%llu", (unsigned long long)(rnd(&s) % 3));
            keys[0] = kcp_sprintf("/core/namespaces/_/%s", name);
            jsons[0] = th_configmap(name, "x", i);
            ops[0] =
                (struct kcp_store_op){KCP_STORE_PUT, KCP_STORE_IF_ANY, 0, keys[0], strlen(keys[0]),
                                      jsons[0],      strlen(jsons[0])};
        }
        for (size_t j = 0; j < n; j++)
            res[j].applied = res[j].err == 0;
        struct kcp_store_entry e = {.wall_s = 1700000000 + (int64_t)i,
                                    .verb = "update",
                                    .user = "dave",
                                    .request_id = "",
                                    .nops = n,
                                    .ops = ops};
        r.term = 3;
        assert_int_equal(history_rec_entry(&r, i, &e, res, n), 0);
        if (flush(i, &fs))
            assert_int_equal(history_rec_flush(&r), 0);
        for (size_t j = 0; j < 3; j++) {
            free(keys[j]);
            free(jsons[j]);
        }
    }
    assert_int_equal(history_rec_flush(&r), 0);
    git_oid_cpy(head, &r.head);
    history_rec_close(&r);
}

/* Small batches of random sizes (several folds), and large regular ones. */
static bool flush_often(uint64_t i, uint64_t *s)
{
    (void)i;
    return rnd(s) % 7 == 0;
}

static bool flush_rarely(uint64_t i, uint64_t *s)
{
    (void)s;
    return i % 97 == 0;
}

static int read_one(const git_oid *id, void *data)
{
    git_odb_object *o = NULL;
    /* libgit2 hashes what it reads back (strict hash verification) */
    int rc = git_odb_read(&o, data, id);
    git_odb_object_free(o);
    return rc;
}

static int count_blob(const char *root, const git_tree_entry *te, void *data)
{
    (void)root;
    if (git_tree_entry_type(te) == GIT_OBJECT_BLOB)
        (*(size_t *)data)++;
    return 0;
}

static void test_packs_read_back(void **state)
{
    char d1[64], d2[64];
    git_oid h1, h2;
    th_tmpdir(d1);
    th_tmpdir(d2);
    char *p1 = kcp_sprintf("%s/history.git", d1), *p2 = kcp_sprintf("%s/history.git", d2);
    story(p1, flush_often, &h1);
    story(p2, flush_rarely, &h2);
    /* Batching changes how objects are packed, never what they are. */
    assert_true(git_oid_equal(&h1, &h2));

    git_repository *repo = NULL;
    git_odb *odb = NULL;
    assert_int_equal(git_repository_open_bare(&repo, p1), 0);
    assert_int_equal(git_repository_odb(&odb, repo), 0);
    assert_int_equal(git_odb_foreach(odb, read_one, odb), 0);
    /* Every commit of the main line, every tree and blob under it. */
    git_revwalk *w = NULL;
    git_oid id;
    size_t commits = 0, blobs = 0;
    assert_int_equal(git_revwalk_new(&w, repo), 0);
    assert_int_equal(git_revwalk_push(w, &h1), 0);
    while (git_revwalk_next(&id, w) == 0) {
        git_commit *c = NULL;
        git_tree *t = NULL;
        assert_int_equal(git_commit_lookup(&c, repo, &id), 0);
        assert_int_equal(git_commit_tree(&t, c), 0);
        if (commits++ == 0)
            assert_int_equal(git_tree_walk(t, GIT_TREEWALK_PRE, count_blob, &blobs), 0);
        git_tree_free(t);
        git_commit_free(c);
    }
    assert_true(commits > ENTRIES / 2);
    assert_true(blobs > 20 && blobs <= HOT + WIDE + 6);
    git_revwalk_free(w);
    git_odb_free(odb);
    git_repository_free(repo);
    /* The folds left few packs: 32 batches each, of some 200 batches. */
    char *cmd = kcp_sprintf("test $(ls %s/objects/pack/*.pack | wc -l) -lt 40", p1);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(p1);
    free(p2);
    th_rmrf(d1);
    th_rmrf(d2);
}

int test_pack_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packs_read_back),
    };
    return cmocka_run_group_tests_name("pack", tests, NULL, NULL);
}
