/* Snapshots: write at a revision, install into another store, bad files, conflicts, retention. */
#include "fixture.h"
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static int dump_on_obj(void *ctx, const struct kcp_obj *obj)
{
    kcp_buf_printf(ctx, "%s@%llu/%llu:%s\n", obj->key, (unsigned long long)obj->mod_revision,
                   (unsigned long long)obj->create_revision, obj->json);
    return 0;
}

/* Every object at rev as "key@mod/create:json\n" (a new string). */
static char *dump(struct kcp_store *s, uint64_t rev)
{
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_buf_puts(&b, "");
    assert_int_equal(kcp_store_list(s, "", 0, rev, NULL, 0, 0, dump_on_obj, &b, NULL), 0);
    return kcp_buf_detach(&b);
}

static void put(struct fx *f, const char *key, const char *value)
{
    struct fx_outcome o;
    char *json = fx_configmap("default", key, value);
    assert_int_equal(fx_put(f, key, json, KCP_STORE_IF_ANY, 0, &o), 0);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.err, 0);
    fx_outcome_free(&o);
    free(json);
}

static void del(struct fx *f, const char *key)
{
    struct fx_outcome o;
    assert_int_equal(fx_del(f, key, KCP_STORE_IF_ANY, 0, &o), 0);
    assert_int_equal(o.err, 0);
    fx_outcome_free(&o);
}

static char *path_in(const struct fx *f, const char *name)
{
    return kcp_sprintf("%s/%s", f->dir, name);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static unsigned char *slurp(const char *path, size_t *out_len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *p = kcp_malloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *out_len = (size_t)n;
    return p;
}

/* Writes path in place: on a filesystem mounted with discard, freeing blocks on every O_TRUNC
 * made the thousands of small files below take seconds. */
static void spit(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, 0), (ssize_t)n);
    assert_int_equal(ftruncate(fd, (off_t)n), 0);
    assert_int_equal(close(fd), 0);
}

static uint64_t rd(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Parses a snapshot file independently of the store, in dump()'s format; checks the CRC. */
static char *parse(const char *path, uint64_t *out_rev)
{
    size_t n;
    unsigned char *p = slurp(path, &n);
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_buf_puts(&b, "");
    assert_true(n >= 28);
    assert_memory_equal(p, "KCPSNAP1", 8);
    *out_rev = rd(p + 8, 8);
    uint64_t count = rd(p + 16, 8);
    assert_int_equal(rd(p + n - 4, 4), store_crc32c(0, p, n - 4));
    size_t off = 24;
    for (uint64_t i = 0; i < count; i++) {
        assert_true(off + 24 <= n - 4);
        size_t kl = (size_t)rd(p + off, 4), vl = (size_t)rd(p + off + 4, 4);
        uint64_t mod = rd(p + off + 8, 8), cr = rd(p + off + 16, 8);
        off += 24;
        assert_true(off + kl + vl <= n - 4);
        kcp_buf_printf(&b, "%.*s@%llu/%llu:%.*s\n", (int)kl, (const char *)p + off,
                       (unsigned long long)mod, (unsigned long long)cr, (int)vl,
                       (const char *)p + off + kl);
        off += kl + vl;
    }
    assert_int_equal(off, n - 4);
    free(p);
    return kcp_buf_detach(&b);
}

/* A snapshot built by hand: the documented format, for files wrong in one way each. */
struct snapb {
    struct kcp_buf b;
};
static void le(struct kcp_buf *b, uint64_t v, int n)
{
    unsigned char x[8];
    for (int i = 0; i < n; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    kcp_buf_append(b, x, (size_t)n);
}
static void sb_begin(struct snapb *s, const char *magic, uint64_t rev, uint64_t count)
{
    memset(s, 0, sizeof(*s));
    kcp_buf_append(&s->b, magic, 8);
    le(&s->b, rev, 8);
    le(&s->b, count, 8);
}
static void sb_obj(struct snapb *s, const char *key, size_t klen, uint64_t mod, uint64_t cr,
                   const char *json)
{
    le(&s->b, klen, 4);
    le(&s->b, strlen(json), 4);
    le(&s->b, mod, 8);
    le(&s->b, cr, 8);
    kcp_buf_append(&s->b, key, klen);
    kcp_buf_puts(&s->b, json);
}
static void sb_end(struct snapb *s, const char *path)
{
    le(&s->b, store_crc32c(0, s->b.data, s->b.len), 4);
    spit(path, s->b.data, s->b.len);
    kcp_buf_free(&s->b);
}

/* A few writes: creates, updates, a delete. */
static void populate_a(struct fx *f)
{
    put(f, "/core/configmaps/default/a", "a1");
    put(f, "/core/configmaps/default/b", "b1");
    put(f, "/core/configmaps/default/c", "c1");
    put(f, "/core/configmaps/kube-system/k", "k1");
    put(f, "/core/configmaps/default/a", "a2");
    del(f, "/core/configmaps/default/c");
    put(f, "/apps/deployments/default/d", "d1");
}

static void populate_b(struct fx *f)
{
    put(f, "/core/configmaps/default/a", "other");
    put(f, "/core/configmaps/default/zz", "only-in-b");
    put(f, "/core/nodes/_/n1", "node");
}

struct hooks {
    int applied;
    int installs;
    uint64_t install_index;
    struct kcp_store *s;
    uint64_t rev_in_hook;
};
static void hooks_on_applied(void *data, const struct kcp_store_entry *e,
                             const struct kcp_store_result *r)
{
    (void)e;
    (void)r;
    ((struct hooks *)data)->applied++;
}
static void hooks_on_install(void *data, uint64_t index)
{
    struct hooks *h = data;
    h->installs++;
    h->install_index = index;
    h->rev_in_hook = kcp_store_revision(h->s);
}

/* A watch that records what it got and, on an ERROR, opens a new one at revision 0. */
struct ww {
    struct kcp_store *s;
    struct kcp_store_watch *w;
    int errors, events, last_err;
    uint64_t err_rev, last_rev;
    bool rewatch;
    int rewatch_rc;
};
static void ww_on_event(struct kcp_store_watch *w, const struct kcp_store_event *ev, void *ctx)
{
    struct ww *x = ctx;
    (void)w;
    if (ev->type != KCP_STORE_ERROR) {
        x->events++;
        x->last_rev = ev->revision;
        return;
    }
    x->errors++;
    x->last_err = ev->err;
    x->err_rev = ev->revision;
    x->w = NULL;
    if (x->rewatch) {
        x->rewatch = false;
        x->rewatch_rc = kcp_store_watch(x->s, "", 0, 0, ww_on_event, x, &x->w);
    }
}

/* ---- write ------------------------------------------------------------------------------ */

static void test_write(void **state)
{
    struct fx a;
    uint64_t bytes = 0, rev = 0;
    struct stat st;
    fx_setup(&a, NULL);
    populate_a(&a);
    uint64_t r1 = kcp_store_revision(a.s);
    char *at_r1 = dump(a.s, 0);
    put(&a, "/core/configmaps/default/b", "b2");
    del(&a, "/core/configmaps/default/a");
    put(&a, "/core/configmaps/default/e", "e1");
    uint64_t r2 = kcp_store_revision(a.s);
    assert_int_equal(r2, r1 + 3);

    /* At the latest revision. */
    char *p0 = path_in(&a, "snap-latest"), *p1 = path_in(&a, "snap-old");
    char *tmp = kcp_sprintf("%s.tmp", p0);
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, p0, &bytes), 0);
    assert_int_equal(stat(p0, &st), 0);
    assert_int_equal(bytes, (uint64_t)st.st_size);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_false(exists(tmp));
    char *want = dump(a.s, 0), *got = parse(p0, &rev);
    assert_int_equal(rev, r2);
    assert_string_equal(got, want);
    free(got);

    /* At an older revision inside the window: what a list at that revision returns. */
    assert_int_equal(kcp_store_snapshot_write(a.s, r1, p1, NULL), 0);
    got = parse(p1, &rev);
    assert_int_equal(rev, r1);
    assert_string_equal(got, at_r1);
    free(got);
    got = dump(a.s, r1);
    assert_string_equal(got, at_r1);
    free(got);

    /* Over an existing file: replaced whole. */
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, p1, NULL), 0);
    got = parse(p1, &rev);
    assert_int_equal(rev, r2);
    assert_string_equal(got, want);
    free(got);

    /* Newer than the store; a directory that does not exist: nothing is left behind. */
    char *p2 = path_in(&a, "snap-future"), *tmp2 = kcp_sprintf("%s.tmp", p2);
    assert_int_equal(kcp_store_snapshot_write(a.s, r2 + 1, p2, &bytes), KCP_ETIMEOUT);
    assert_int_equal(bytes, 0);
    assert_false(exists(p2));
    assert_false(exists(tmp2));
    char *p3 = path_in(&a, "missing-dir/snap");
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, p3, NULL), KCP_EIO);

    free(want);
    free(at_r1);
    free(p0);
    free(p1);
    free(p2);
    free(p3);
    free(tmp);
    free(tmp2);
    fx_teardown(&a);
}

static void test_write_gone(void **state)
{
    struct kcp_store_options opts;
    struct fx a;
    kcp_store_options_default(&opts);
    opts.history_events = 3;
    fx_setup(&a, &opts);
    for (int i = 0; i < 6; i++)
        put(&a, "/core/configmaps/default/x", i % 2 ? "odd" : "even");
    char *p = path_in(&a, "snap");
    assert_int_equal(kcp_store_snapshot_write(a.s, 1, p, NULL), KCP_EGONE);
    assert_false(exists(p));
    /* The oldest revision still served works. */
    struct kcp_store_stats st;
    kcp_store_stats(a.s, &st);
    uint64_t rev = 0;
    assert_int_equal(kcp_store_snapshot_write(a.s, st.history_floor, p, NULL), 0);
    char *got = parse(p, &rev), *want = dump(a.s, st.history_floor);
    assert_int_equal(rev, st.history_floor);
    assert_string_equal(got, want);
    free(got);
    free(want);
    free(p);
    fx_teardown(&a);
}

/* ---- install ---------------------------------------------------------------------------- */

static void test_install(void **state)
{
    struct fx a, b;
    struct hooks h = {0};
    struct ww live = {0}, replaying = {0};
    struct kcp_obj *o = NULL, *oa = NULL;
    struct kcp_store_stats st;
    fx_setup(&a, NULL);
    fx_setup(&b, NULL);
    populate_a(&a);
    populate_b(&b);
    char *path = path_in(&a, "snap");
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, path, NULL), 0);
    uint64_t index = kcp_store_revision(a.s) + 10; /* Raft entries the store never saw */

    h.s = b.s;
    kcp_store_set_applied_hook(b.s, hooks_on_applied, &h);
    kcp_store_set_install_hook(b.s, hooks_on_install, &h);
    live.s = replaying.s = b.s;
    live.rewatch = true;
    assert_int_equal(kcp_store_watch(b.s, "", 0, 0, ww_on_event, &live, &live.w), 0);
    /* Registered at an old revision: waiting for its replay at the next loop turn. */
    assert_int_equal(kcp_store_watch(b.s, "/core/", 6, 1, ww_on_event, &replaying, &replaying.w),
                     0);
    assert_true(kcp_store_idle(b.s));

    assert_int_equal(kcp_store_install(b.s, index, path), 0);

    assert_int_equal(live.errors, 1);
    assert_int_equal(live.last_err, KCP_EGONE);
    assert_int_equal(live.err_rev, index);
    assert_int_equal(live.rewatch_rc, 0); /* opened from the ERROR callback, at index */
    assert_non_null(live.w);
    assert_int_equal(replaying.errors, 1);
    assert_int_equal(replaying.last_err, KCP_EGONE);
    assert_int_equal(h.installs, 1);
    assert_int_equal(h.install_index, index);
    assert_int_equal(h.rev_in_hook, index);
    assert_int_equal(h.applied, 0); /* set after populate_b; the install is no entry */

    assert_int_equal(kcp_store_revision(b.s), index);
    assert_int_equal(kcp_store_applied_index(b.s), index);
    char *want = dump(a.s, 0), *got = dump(b.s, 0);
    assert_string_equal(got, want);
    free(got);
    kcp_store_stats(b.s, &st);
    assert_int_equal(st.objects, 4);
    assert_int_equal(st.history_floor, index);
    assert_int_equal(st.history_events, 0);
    assert_int_equal(st.watchers, 1);
    assert_int_equal(st.failed, 0);

    /* GET: the snapshot's versions, with their own revisions. */
    const char *k = "/core/configmaps/default/a";
    assert_int_equal(kcp_store_get(b.s, k, strlen(k), 0, &o), 0);
    assert_int_equal(kcp_store_get(a.s, k, strlen(k), 0, &oa), 0);
    assert_string_equal(o->json, oa->json);
    assert_int_equal(o->mod_revision, oa->mod_revision);
    assert_int_equal(o->create_revision, oa->create_revision);
    uint64_t mod_a = o->mod_revision;
    kcp_obj_unref(o);
    kcp_obj_unref(oa);
    o = NULL;
    assert_int_equal(kcp_store_get(b.s, "/core/configmaps/default/zz", 26, 0, &o), KCP_ENOTFOUND);
    assert_int_equal(kcp_store_get(b.s, k, strlen(k), index, &o), 0);
    kcp_obj_unref(o);
    o = NULL;

    /* The window restarts at index. */
    struct kcp_store_watch *w = NULL;
    assert_int_equal(kcp_store_get(b.s, k, strlen(k), index - 1, &o), KCP_EGONE);
    assert_int_equal(kcp_store_list(b.s, "", 0, index - 1, NULL, 0, 0, dump_on_obj, NULL, NULL),
                     KCP_EGONE);
    assert_int_equal(kcp_store_watch(b.s, "", 0, index - 1, ww_on_event, &replaying, &w),
                     KCP_EGONE);
    assert_int_equal(kcp_store_list(b.s, "", 0, index + 1, NULL, 0, 0, dump_on_obj, NULL, NULL),
                     KCP_ETIMEOUT);

    /* Apply continues at index + 1, against the snapshot's revisions. */
    struct kcp_buf e = KCP_BUF_INIT;
    struct kcp_store_op op = fx_op_put(k, "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0);
    fx_encode(&e, 0, 1, &op);
    assert_int_equal(kcp_store_apply(b.s, index, e.data, e.len, NULL), KCP_EEXIST);
    kcp_buf_free(&e);
    struct fx_outcome out;
    char *json = fx_configmap("default", "a", "after");
    assert_int_equal(fx_put(&b, k, json, KCP_STORE_IF_REVISION, mod_a, &out), 0);
    assert_int_equal(out.status, 0);
    assert_int_equal(out.err, 0);
    assert_int_equal(out.index, index + 1);
    assert_int_equal(out.obj[0]->create_revision, out.prev[0]->create_revision);
    fx_outcome_free(&out);
    free(json);
    assert_int_equal(live.events, 1);
    assert_int_equal(live.last_rev, index + 1);
    assert_int_equal(h.applied, 1);
    assert_int_equal(kcp_store_revision(b.s), index + 1);

    /* A restart comes back with the installed state and index. */
    kcp_store_watch_cancel(live.w);
    got = dump(b.s, 0);
    fx_reopen(&b);
    assert_int_equal(kcp_store_revision(b.s), index + 1);
    char *again = dump(b.s, 0);
    assert_string_equal(again, got);
    free(again);
    free(got);
    free(want);
    free(path);
    fx_teardown(&a);
    fx_teardown(&b);
}

static void test_install_empty(void **state)
{
    struct fx a, b;
    uint64_t rev = 99;
    fx_setup(&a, NULL);
    fx_setup(&b, NULL);
    populate_b(&b);
    char *path = path_in(&a, "snap");
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, path, NULL), 0); /* revision 0, nothing */
    char *got = parse(path, &rev);
    assert_int_equal(rev, 0);
    assert_string_equal(got, "");
    free(got);
    assert_int_equal(kcp_store_install(b.s, 7, path), 0);
    assert_int_equal(kcp_store_revision(b.s), 7);
    got = dump(b.s, 0);
    assert_string_equal(got, "");
    free(got);
    /* At the store's own revision: allowed (the state is the same one). */
    assert_int_equal(kcp_store_install(b.s, 7, path), 0);
    fx_reopen(&b);
    assert_int_equal(kcp_store_revision(b.s), 7);
    got = dump(b.s, 0);
    assert_string_equal(got, "");
    free(got);
    /* A snapshot of it carries the index as its revision. */
    assert_int_equal(kcp_store_snapshot_write(b.s, 0, path, NULL), 0);
    got = parse(path, &rev);
    assert_int_equal(rev, 7);
    free(got);
    free(path);
    fx_teardown(&a);
    fx_teardown(&b);
}

/* Each rejected file logs a line: the loops below would print thousands. */
static int quiet_begin(void)
{
    int saved = dup(2), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_true(saved >= 0 && null >= 0);
    dup2(null, 2);
    close(null);
    return saved;
}

static void quiet_end(int saved)
{
    dup2(saved, 2);
    close(saved);
}

static void expect_bad(struct fx *b, const char *path, uint64_t index)
{
    assert_int_equal(kcp_store_install(b->s, index, path), KCP_EBADREQUEST);
}

static void test_install_bad_file(void **state)
{
    struct fx a, b;
    struct ww watch = {0};
    struct hooks h = {0};
    size_t n;
    fx_setup(&a, NULL);
    fx_setup(&b, NULL);
    populate_a(&a);
    populate_b(&b);
    char *good = path_in(&a, "snap"), *bad = path_in(&a, "bad");
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, good, NULL), 0);
    uint64_t index = kcp_store_revision(a.s) + 1;
    unsigned char *bytes = slurp(good, &n);
    char *before = dump(b.s, 0);
    uint64_t rev_before = kcp_store_revision(b.s);
    h.s = b.s;
    kcp_store_set_install_hook(b.s, hooks_on_install, &h);
    watch.s = b.s;
    assert_int_equal(kcp_store_watch(b.s, "", 0, 0, ww_on_event, &watch, &watch.w), 0);

    /* Every byte flipped, every truncation, one byte too many. */
    int saved = quiet_begin();
    for (size_t i = 0; i < n; i++) {
        bytes[i] ^= (unsigned char)(1 + i % 255);
        spit(bad, bytes, n);
        bytes[i] ^= (unsigned char)(1 + i % 255);
        expect_bad(&b, bad, index);
    }
    for (size_t len = n; len-- > 0;) {
        spit(bad, bytes, len);
        expect_bad(&b, bad, index);
    }
    unsigned char *longer = kcp_malloc(n + 1);
    memcpy(longer, bytes, n);
    longer[n] = 0;
    spit(bad, longer, n + 1);
    expect_bad(&b, bad, index);
    free(longer);
    quiet_end(saved);

    /* Well-formed with a valid CRC, wrong in one way each. */
    const char *v5 = "{\"metadata\":{\"resourceVersion\":\"5\"}}";
    const char *v6 = "{\"metadata\":{\"resourceVersion\":\"6\"}}";
    struct snapb s;
    sb_begin(&s, "KCPSNAP2", 6, 0);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    sb_begin(&s, "KCPSNAP1", index + 1, 0); /* the snapshot is newer than its index */
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    sb_begin(&s, "KCPSNAP1", 6, 2); /* count says two, one follows */
    sb_obj(&s, "/x/y/_/a", 8, 5, 5, v5);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    sb_begin(&s, "KCPSNAP1", 6, 1); /* count says one, two follow */
    sb_obj(&s, "/x/y/_/a", 8, 5, 5, v5);
    sb_obj(&s, "/x/y/_/b", 8, 6, 6, v6);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    sb_begin(&s, "KCPSNAP1", 6, 2); /* out of order */
    sb_obj(&s, "/x/y/_/b", 8, 6, 6, v6);
    sb_obj(&s, "/x/y/_/a", 8, 5, 5, v5);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    sb_begin(&s, "KCPSNAP1", 6, 2); /* the same key twice */
    sb_obj(&s, "/x/y/_/a", 8, 5, 5, v5);
    sb_obj(&s, "/x/y/_/a", 8, 6, 6, v6);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    sb_begin(&s, "KCPSNAP1", 6, 1); /* a NUL in the key */
    sb_obj(&s, "/x/y/_/\0a", 9, 5, 5, v5);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    sb_begin(&s, "KCPSNAP1", 6, 1); /* an empty key */
    sb_obj(&s, "", 0, 5, 5, v5);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    char longkey[KCP_STORE_MAX_KEY + 1];
    memset(longkey, 'k', sizeof(longkey));
    sb_begin(&s, "KCPSNAP1", 6, 1); /* a key too long */
    sb_obj(&s, longkey, sizeof(longkey), 5, 5, v5);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    sb_begin(&s, "KCPSNAP1", 5, 1); /* mod revision above the snapshot's */
    sb_obj(&s, "/x/y/_/b", 8, 6, 6, v6);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    sb_begin(&s, "KCPSNAP1", 6, 1); /* created after modified */
    sb_obj(&s, "/x/y/_/a", 8, 5, 6, v5);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    sb_begin(&s, "KCPSNAP1", 6, 1); /* resourceVersion is not the mod revision */
    sb_obj(&s, "/x/y/_/a", 8, 5, 5, v6);
    sb_end(&s, bad);
    expect_bad(&b, bad, index);
    const char *values[] = {"[]", "{\"metadata\":[]}", "{\"kind\":\"x\"}", "{\"metadata\":{}",
                            "{\"metadata\":{\"resourceVersion\":\"5\"},\"a\":1,\"a\":2}"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        sb_begin(&s, "KCPSNAP1", 6, 1);
        sb_obj(&s, "/x/y/_/a", 8, 5, 5, values[i]);
        sb_end(&s, bad);
        expect_bad(&b, bad, index);
    }
    assert_int_equal(kcp_store_install(b.s, index, "/nonexistent/snapshot"), KCP_ENOTFOUND);
    /* Below the store's revision: the caller's mistake. */
    assert_int_equal(kcp_store_install(b.s, rev_before - 1, good), KCP_EINVAL);

    /* Nothing changed, the store still takes writes, and the watch is still there. */
    char *after = dump(b.s, 0);
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(kcp_store_revision(b.s), rev_before);
    assert_int_equal(watch.errors, 0);
    assert_int_equal(h.installs, 0);
    struct kcp_store_stats st;
    kcp_store_stats(b.s, &st);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.batches, 3);
    fx_reopen(&b);
    after = dump(b.s, 0);
    assert_string_equal(after, before);
    free(after);
    put(&b, "/core/configmaps/default/new", "v");
    assert_int_equal(kcp_store_revision(b.s), rev_before + 1);

    /* The format as documented: a file written by hand installs. */
    sb_begin(&s, "KCPSNAP1", 6, 2);
    sb_obj(&s, "/x/y/_/a", 8, 5, 3, v5);
    sb_obj(&s, "/x/y/_/b", 8, 6, 6, v6);
    sb_end(&s, bad);
    assert_int_equal(kcp_store_install(b.s, 40, bad), 0);
    after = dump(b.s, 0);
    assert_string_equal(after, "/x/y/_/a@5/3:{\"metadata\":{\"resourceVersion\":\"5\"}}\n"
                               "/x/y/_/b@6/6:{\"metadata\":{\"resourceVersion\":\"6\"}}\n");
    free(after);

    free(before);
    free(bytes);
    free(good);
    free(bad);
    fx_teardown(&a);
    fx_teardown(&b);
}

/* Tries to install from inside a write's callback (the batch is still in flight). */
struct inside {
    struct kcp_store_req req;
    struct kcp_store *s;
    const char *path;
    uint64_t index;
    bool done;
    bool idle;
    int rc;
};
static void inside_on_done(struct kcp_store_req *req, int status, const struct kcp_store_result *r)
{
    struct inside *x = req->data;
    (void)status;
    (void)r;
    x->done = true;
    x->idle = kcp_store_idle(x->s);
    x->rc = kcp_store_install(x->s, x->index, x->path);
}

static void closed_cb(void *data)
{
    *(bool *)data = true;
}

static void test_install_conflict(void **state)
{
    struct fx a, b;
    struct fx_outcome o;
    fx_setup(&a, NULL);
    fx_setup(&b, NULL);
    populate_a(&a);
    char *path = path_in(&a, "snap");
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, path, NULL), 0);
    uint64_t index = kcp_store_revision(a.s) + 100;
    char *before = dump(b.s, 0);

    /* Pending (applied, not yet in a batch). */
    struct kcp_store_op op = fx_op_put("/p/q/_/r", "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0);
    assert_int_equal(fx_propose(&b, 0, 1, &op, &o), 0);
    assert_false(kcp_store_idle(b.s));
    assert_int_equal(kcp_store_install(b.s, index, path), KCP_ECONFLICT);
    /* In flight: the batch is on the work pool. */
    uv_run(&b.loop.uv, UV_RUN_NOWAIT);
    if (!o.done) {
        assert_false(kcp_store_idle(b.s));
        assert_int_equal(kcp_store_install(b.s, index, path), KCP_ECONFLICT);
    }
    fx_run_until(&b, &o.done);
    assert_int_equal(o.status, 0);
    fx_outcome_free(&o);
    char *now = dump(b.s, 0);
    assert_string_not_equal(now, before);
    free(now);

    /* From the write's own callback: its batch still counts as in flight. */
    struct inside x = {.s = b.s, .path = path, .index = index};
    struct kcp_buf e = KCP_BUF_INIT;
    x.req.data = &x;
    x.req.cb = inside_on_done;
    fx_encode(&e, 0, 1, &op);
    assert_int_equal(kcp_store_propose(b.s, e.data, e.len, &x.req), 0);
    kcp_buf_free(&e);
    fx_run_until(&b, &x.done);
    assert_false(x.idle);
    assert_int_equal(x.rc, KCP_ECONFLICT);

    /* Once the loop turns, it is idle and the install goes through. */
    assert_true(kcp_store_idle(b.s));
    assert_int_equal(kcp_store_install(b.s, index, path), 0);
    char *want = dump(a.s, 0), *got = dump(b.s, 0);
    assert_string_equal(got, want);
    free(got);
    free(want);

    /* After close. */
    bool closed = false;
    kcp_store_close(b.s, closed_cb, &closed);
    assert_int_equal(kcp_store_install(b.s, index + 1, path), KCP_ECLOSED);
    fx_run_until(&b, &closed);
    b.s = NULL;

    free(before);
    free(path);
    fx_teardown(&a);
    fx_teardown(&b);
}

/* A snapshot that does not fit the map: LMDB fails, writes stop, the old state stays. */
static void test_install_disk_full(void **state)
{
    struct kcp_store_options opts;
    struct fx a, b;
    fx_setup(&a, NULL);
    kcp_store_options_default(&opts);
    opts.map_size = opts.max_map_size = 128 << 10;
    fx_setup(&b, &opts);
    populate_b(&b);
    size_t vlen = 10 << 10;
    char *v = kcp_malloc(vlen + 1);
    memset(v, ' ', vlen);
    memcpy(v, "{\"metadata\":{}", 14);
    v[vlen - 1] = '}';
    v[vlen] = '\0';
    for (int i = 0; i < 30; i++) { /* 300 KB */
        struct fx_outcome o;
        char key[32];
        snprintf(key, sizeof(key), "/big/%02d", i);
        assert_int_equal(fx_put(&a, key, v, KCP_STORE_IF_ANY, 0, &o), 0);
        fx_outcome_free(&o);
    }
    free(v);
    char *path = path_in(&a, "snap"), *before = dump(b.s, 0);
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, path, NULL), 0);
    assert_int_equal(kcp_store_install(b.s, 100, path), KCP_EIO);
    struct kcp_store_stats st;
    kcp_store_stats(b.s, &st);
    assert_int_equal(st.failed, KCP_EIO);
    char *now = dump(b.s, 0);
    assert_string_equal(now, before);
    free(now);
    assert_int_equal(kcp_store_revision(b.s), 3);
    assert_int_equal(kcp_store_install(b.s, 100, path), KCP_EUNAVAILABLE);
    struct fx_outcome o;
    struct kcp_store_op op = fx_op_put("/p/q/_/r", "{\"metadata\":{}}", KCP_STORE_IF_ANY, 0);
    assert_int_equal(fx_propose(&b, 0, 1, &op, &o), KCP_EUNAVAILABLE);
    fx_reopen(&b);
    assert_int_equal(kcp_store_revision(b.s), 3);
    now = dump(b.s, 0);
    assert_string_equal(now, before);
    free(now);
    free(before);
    free(path);
    fx_teardown(&a);
    fx_teardown(&b);
}

/* A map that has to grow for the install does. */
static void test_install_grows_map(void **state)
{
    struct kcp_store_options opts;
    struct fx a, b;
    fx_setup(&a, NULL);
    kcp_store_options_default(&opts);
    opts.map_size = 128 << 10;
    opts.max_map_size = 64 << 20;
    fx_setup(&b, &opts);
    size_t vlen = 10 << 10;
    char *v = kcp_malloc(vlen + 1);
    memset(v, ' ', vlen);
    memcpy(v, "{\"metadata\":{}", 14);
    v[vlen - 1] = '}';
    v[vlen] = '\0';
    for (int i = 0; i < 100; i++) { /* 1 MB */
        struct fx_outcome o;
        char key[32];
        snprintf(key, sizeof(key), "/big/%03d", i);
        assert_int_equal(fx_put(&a, key, v, KCP_STORE_IF_ANY, 0, &o), 0);
        fx_outcome_free(&o);
    }
    free(v);
    char *path = path_in(&a, "snap");
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, path, NULL), 0);
    assert_int_equal(kcp_store_install(b.s, 100, path), 0);
    struct kcp_store_stats st;
    kcp_store_stats(b.s, &st);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.objects, 100);
    assert_true(st.map_size >= (1u << 20));
    fx_reopen(&b);
    char *want = dump(a.s, 0), *got = dump(b.s, 0);
    assert_true(strcmp(got, want) == 0);
    free(got);
    free(want);
    free(path);
    fx_teardown(&a);
    fx_teardown(&b);
}

/* 20,000 objects: written by streaming, installed, reopened. */
static void test_many(void **state)
{
    enum { N = 20000, PER = 1000 };
    struct fx a, b;
    uint64_t bytes = 0;
    fx_setup(&a, NULL);
    fx_setup(&b, NULL);
    populate_b(&b);
    struct kcp_store_op *ops = kcp_calloc(PER, sizeof(*ops));
    char **keys = kcp_calloc(PER, sizeof(*keys)), **vals = kcp_calloc(PER, sizeof(*vals));
    for (int e = 0; e < N / PER; e++) {
        for (int i = 0; i < PER; i++) {
            char name[32];
            snprintf(name, sizeof(name), "cm-%05d", e * PER + i);
            keys[i] = kcp_sprintf("/core/configmaps/ns-%d/%s", i % 7, name);
            vals[i] = fx_configmap("ns", name, "some value that is not very long");
            ops[i] = fx_op_put(keys[i], vals[i], KCP_STORE_IF_ANY, 0);
        }
        struct fx_outcome o;
        assert_int_equal(fx_write(&a, 0, PER, ops, &o), 0);
        assert_int_equal(o.err, 0);
        fx_outcome_free(&o);
        for (int i = 0; i < PER; i++) {
            free(keys[i]);
            free(vals[i]);
        }
    }
    free(ops);
    free(keys);
    free(vals);
    char *path = path_in(&a, "snap");
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, path, &bytes), 0);
    assert_true(bytes > (uint64_t)N * 150);
    uint64_t index = kcp_store_revision(a.s) + 1;
    assert_int_equal(kcp_store_install(b.s, index, path), 0);
    struct kcp_store_stats st;
    kcp_store_stats(b.s, &st);
    assert_int_equal(st.objects, N);
    char *want = dump(a.s, 0), *got = dump(b.s, 0);
    assert_true(strcmp(got, want) == 0);
    free(got);
    fx_reopen(&b);
    kcp_store_stats(b.s, &st);
    assert_int_equal(st.objects, N);
    assert_int_equal(st.revision, index);
    got = dump(b.s, 0);
    assert_true(strcmp(got, want) == 0);
    free(got);
    free(want);
    free(path);
    fx_teardown(&a);
    fx_teardown(&b);
}

static int count_retained(void *ctx, uint64_t index, const void *entry, size_t len,
                          const struct kcp_store_result *result)
{
    (void)entry;
    (void)len;
    (void)result;
    *(uint64_t *)ctx = index;
    return 0;
}

static void test_install_retained(void **state)
{
    struct kcp_store_options opts;
    struct fx a, b;
    struct kcp_store_stats st;
    uint64_t last = 0, seen = 0;
    fx_setup(&a, NULL);
    kcp_store_options_default(&opts);
    opts.retain_entries = true;
    fx_setup(&b, &opts);
    populate_a(&a);
    populate_b(&b);
    assert_int_equal(kcp_store_retained(b.s, 0, 0, count_retained, &seen, &last), 0);
    assert_int_equal(last, 3);
    char *path = path_in(&a, "snap");
    assert_int_equal(kcp_store_snapshot_write(a.s, 0, path, NULL), 0);
    assert_int_equal(kcp_store_install(b.s, 50, path), 0);

    assert_int_equal(kcp_store_retained(b.s, 0, 0, count_retained, &seen, &last), KCP_EGONE);
    assert_int_equal(kcp_store_retained(b.s, 49, 0, count_retained, &seen, &last), KCP_EGONE);
    seen = 0;
    assert_int_equal(kcp_store_retained(b.s, 50, 0, count_retained, &seen, &last), 0);
    assert_int_equal(seen, 0);
    kcp_store_stats(b.s, &st);
    assert_int_equal(st.retained_trim, 50);

    put(&b, "/core/configmaps/default/after", "x");
    assert_int_equal(kcp_store_retained(b.s, 50, 0, count_retained, &seen, &last), 0);
    assert_int_equal(seen, 51);
    fx_reopen(&b);
    assert_int_equal(kcp_store_retained(b.s, 49, 0, count_retained, &seen, &last), KCP_EGONE);
    seen = 0;
    assert_int_equal(kcp_store_retained(b.s, 50, 0, count_retained, &seen, &last), 0);
    assert_int_equal(seen, 51);
    assert_int_equal(last, 51);
    free(path);
    fx_teardown(&a);
    fx_teardown(&b);
}

int test_snapshot_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_write_gone),
        cmocka_unit_test(test_install),
        cmocka_unit_test(test_install_empty),
        cmocka_unit_test(test_install_bad_file),
        cmocka_unit_test(test_install_conflict),
        cmocka_unit_test(test_install_disk_full),
        cmocka_unit_test(test_install_grows_map),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_install_retained),
    };
    return cmocka_run_group_tests_name("store.snapshot", tests, NULL, NULL);
}
