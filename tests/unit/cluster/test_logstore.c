/* The Raft log store: round trips, truncation, group commit, hard state, meta, compaction. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- helpers ---------------------------------------------------------------------------- */

#define MAX_ACKS 20000
static struct {
    size_t n;
    int status[MAX_ACKS];
    uintptr_t id[MAX_ACKS];
} acks;

static void acks_reset(void)
{
    acks.n = 0;
}

static void ack_cb(struct cl_logstore *ls, int status, void *data)
{
    (void)ls;
    assert_true(acks.n < MAX_ACKS);
    acks.status[acks.n] = status;
    acks.id[acks.n++] = (uintptr_t)data;
}

static void wait_acks(struct fx *f, size_t n)
{
    while (acks.n < n)
        if (!uv_run(&f->loop.uv, UV_RUN_ONCE) && acks.n < n)
            fail_msg("loop ran dry with %zu of %zu acks", acks.n, n);
}

/* Queues entries from..to (none when to < from) of term with fx payloads, acked with id. */
static int append_range(struct fx *f, uint64_t truncate_from, uint64_t from, uint64_t to,
                        uint64_t term, uintptr_t id)
{
    size_t n = to >= from ? (size_t)(to - from + 1) : 0;
    struct kcp_raft_entry *e = kcp_calloc(n ? n : 1, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        e[i].index = from + i;
        e[i].term = term;
        e[i].type = KCP_RAFT_ENTRY_NORMAL;
        e[i].data.len = fx_data_len(from + i, term);
        e[i].data.base = kcp_malloc(e[i].data.len + 1);
        fx_fill(e[i].data.base, from + i, term, e[i].data.len);
    }
    int rc = cl_logstore_append(f->ls, truncate_from, n ? e : NULL, n, ack_cb, (void *)id);
    for (size_t i = 0; i < n; i++)
        free(e[i].data.base);
    free(e);
    return rc;
}

/* Appends and waits for the callback, which must report success. */
static void append_sync(struct fx *f, uint64_t truncate_from, uint64_t from, uint64_t to,
                        uint64_t term)
{
    size_t before = acks.n;
    assert_int_equal(append_range(f, truncate_from, from, to, term, 0), 0);
    wait_acks(f, before + 1);
    assert_int_equal(acks.status[before], 0);
}

/* The loaded log is entries first.. with terms[i], payloads per fx_fill. */
static void check_log(const struct cl_logstore_loaded *l, uint64_t first, const uint64_t *terms,
                      size_t n)
{
    assert_int_equal(l->n, n);
    for (size_t i = 0; i < n; i++)
        fx_check_entry(&l->entries[i], first + i, terms[i]);
}

static void load(struct fx *f, struct cl_logstore_loaded *out)
{
    assert_int_equal(cl_logstore_load(f->ls, out), 0);
}

static void assert_hs(const struct kcp_raft_hard_state *hs, uint64_t term, uint64_t vote,
                      uint64_t commit)
{
    assert_int_equal(hs->term, term);
    assert_int_equal(hs->vote, vote);
    assert_int_equal(hs->commit, commit);
}

static struct kcp_raft_config two_servers(void)
{
    struct kcp_raft_config c;
    memset(&c, 0, sizeof(c));
    c.n = 2;
    c.servers[0].id = 7;
    c.servers[0].role = KCP_RAFT_VOTER;
    strcpy(c.servers[0].address, "node-a@10.0.0.1:6443");
    c.servers[1].id = 9;
    c.servers[1].role = KCP_RAFT_LEARNER;
    strcpy(c.servers[1].address, "node-b@10.0.0.2:6443");
    return c;
}

static void assert_config_equal(const struct kcp_raft_config *a, const struct kcp_raft_config *b)
{
    assert_int_equal(a->n, b->n);
    for (uint32_t i = 0; i < a->n; i++) {
        assert_int_equal(a->servers[i].id, b->servers[i].id);
        assert_int_equal(a->servers[i].role, b->servers[i].role);
        assert_string_equal(a->servers[i].address, b->servers[i].address);
    }
}

static void assert_loaded_equal(const struct cl_logstore_loaded *a,
                                const struct cl_logstore_loaded *b)
{
    assert_hs(&a->hs, b->hs.term, b->hs.vote, b->hs.commit);
    assert_int_equal(a->has_snapshot, b->has_snapshot);
    assert_int_equal(a->snap_index, b->snap_index);
    assert_int_equal(a->snap_term, b->snap_term);
    assert_config_equal(&a->snap_config, &b->snap_config);
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->entries[i].index, b->entries[i].index);
        assert_int_equal(a->entries[i].term, b->entries[i].term);
        assert_int_equal(a->entries[i].type, b->entries[i].type);
        assert_int_equal(a->entries[i].data.len, b->entries[i].data.len);
        if (a->entries[i].data.len)
            assert_memory_equal(a->entries[i].data.base, b->entries[i].data.base,
                                a->entries[i].data.len);
    }
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_roundtrip(void **state)
{
    (void)state;
    struct fx f;
    struct cl_logstore_loaded l;
    struct cl_logstore_stats st;
    fx_setup(&f, NULL);
    acks_reset();

    load(&f, &l);
    assert_int_equal(l.n, 0);
    assert_false(l.has_snapshot);
    assert_hs(&l.hs, 0, 0, 0);
    cl_logstore_loaded_free(&l);

    assert_int_equal(append_range(&f, 0, 1, 3, 1, 1), 0);
    assert_int_equal(append_range(&f, 0, 4, 4, 1, 2), 0);
    struct kcp_raft_entry noop = {.index = 5, .term = 2, .type = KCP_RAFT_ENTRY_NOOP};
    assert_int_equal(cl_logstore_append(f.ls, 0, &noop, 1, ack_cb, (void *)3), 0);
    /* Nothing is on disk before its callback. */
    load(&f, &l);
    assert_int_equal(l.n, 0);
    cl_logstore_loaded_free(&l);
    wait_acks(&f, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(acks.status[i], 0);
        assert_int_equal(acks.id[i], i + 1);
    }

    load(&f, &l);
    assert_int_equal(l.n, 5);
    uint64_t terms[] = {1, 1, 1, 1};
    for (size_t i = 0; i < 4; i++)
        fx_check_entry(&l.entries[i], i + 1, terms[i]);
    assert_int_equal(l.entries[0].type, KCP_RAFT_ENTRY_NORMAL);
    assert_int_equal(l.entries[4].index, 5);
    assert_int_equal(l.entries[4].term, 2);
    assert_int_equal(l.entries[4].type, KCP_RAFT_ENTRY_NOOP);
    assert_int_equal(l.entries[4].data.len, 0);
    assert_null(l.entries[4].data.base);
    cl_logstore_loaded_free(&l);

    cl_logstore_stats(f.ls, &st);
    assert_int_equal(st.entries_written, 5);
    assert_true(st.batches >= 1 && st.batches <= 3);
    assert_int_equal(st.fsyncs, st.batches);
    assert_true(st.bytes_written > 4 * (8 + 9));
    fx_teardown(&f);
}

static void test_append_checks(void **state)
{
    (void)state;
    struct fx f;
    fx_setup(&f, NULL);
    acks_reset();
    /* The first entry of a log without a snapshot is 1. */
    assert_int_equal(append_range(&f, 0, 2, 3, 1, 0), KCP_EINVAL);
    append_sync(&f, 0, 1, 3, 1);
    /* A gap, an overlap without truncation, entries out of order, an unknown type. */
    assert_int_equal(append_range(&f, 0, 5, 5, 1, 0), KCP_EINVAL);
    assert_int_equal(append_range(&f, 0, 3, 4, 1, 0), KCP_EINVAL);
    struct kcp_raft_entry e[2] = {{.index = 4, .term = 1, .type = KCP_RAFT_ENTRY_NORMAL},
                                  {.index = 6, .term = 1, .type = KCP_RAFT_ENTRY_NORMAL}};
    assert_int_equal(cl_logstore_append(f.ls, 0, e, 2, ack_cb, NULL), KCP_EINVAL);
    e[1].index = 5;
    e[1].type = 0;
    assert_int_equal(cl_logstore_append(f.ls, 0, e, 2, ack_cb, NULL), KCP_EINVAL);
    assert_int_equal(cl_logstore_append(f.ls, 0, e, 1, NULL, NULL), KCP_EINVAL);
    /* Refusals queued nothing. */
    assert_int_equal(acks.n, 1);
    e[1].type = KCP_RAFT_ENTRY_CONFIG;
    assert_int_equal(cl_logstore_append(f.ls, 0, e, 2, ack_cb, NULL), 0);
    wait_acks(&f, 2);
    assert_int_equal(acks.status[1], 0);
    fx_teardown(&f);
}

static void test_truncate_then_append(void **state)
{
    (void)state;
    struct fx f;
    struct cl_logstore_loaded l;
    fx_setup(&f, NULL);
    acks_reset();
    append_sync(&f, 0, 1, 10, 1);
    /* Both in one batch: the second truncation must see the first's entries. */
    assert_int_equal(append_range(&f, 6, 6, 8, 2, 1), 0);
    assert_int_equal(append_range(&f, 8, 8, 9, 3, 2), 0);
    wait_acks(&f, 3);
    assert_int_equal(acks.status[1], 0);
    assert_int_equal(acks.status[2], 0);
    load(&f, &l);
    uint64_t t1[] = {1, 1, 1, 1, 1, 2, 2, 3, 3};
    check_log(&l, 1, t1, 9);
    cl_logstore_loaded_free(&l);

    /* A truncation alone, then an append after it, then one past the end of the log. */
    assert_int_equal(append_range(&f, 9, 1, 0, 0, 3), 0);
    assert_int_equal(append_range(&f, 0, 9, 9, 4, 4), 0);
    assert_int_equal(append_range(&f, 12, 10, 10, 4, 5), 0);
    wait_acks(&f, 6);
    load(&f, &l);
    uint64_t t2[] = {1, 1, 1, 1, 1, 2, 2, 3, 4, 4};
    check_log(&l, 1, t2, 10);
    cl_logstore_loaded_free(&l);

    /* Everything. */
    append_sync(&f, 1, 1, 2, 5);
    fx_reopen(&f);
    load(&f, &l);
    uint64_t t3[] = {5, 5};
    check_log(&l, 1, t3, 2);
    cl_logstore_loaded_free(&l);
    fx_teardown(&f);
}

static void test_group_commit(void **state)
{
    (void)state;
    struct fx f;
    struct cl_logstore_stats st;
    struct cl_logstore_loaded l;
    fx_setup(&f, NULL);
    acks_reset();
    assert_int_equal(append_range(&f, 0, 1, 1, 1, 0), 0);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT); /* the first batch is on the work queue */
    for (uint64_t i = 1; i <= 100; i++)
        assert_int_equal(append_range(&f, 0, i + 1, i + 1, 1, i), 0);
    wait_acks(&f, 101);
    for (size_t i = 0; i < 101; i++) {
        assert_int_equal(acks.status[i], 0);
        assert_int_equal(acks.id[i], i);
    }
    cl_logstore_stats(f.ls, &st);
    /* The 100 queued while the first batch was in flight became one batch. */
    assert_int_equal(st.batches, 2);
    assert_true(st.fsyncs < 101);
    assert_int_equal(st.entries_written, 101);
    load(&f, &l);
    assert_int_equal(l.n, 101);
    cl_logstore_loaded_free(&l);
    fx_teardown(&f);
}

static void test_hard_state(void **state)
{
    (void)state;
    struct fx f;
    struct cl_logstore_loaded l;
    struct cl_logstore_stats st;
    fx_setup(&f, NULL);
    acks_reset();

    /* Synchronous: durable on return, with no batch. */
    struct kcp_raft_hard_state hs = {5, 2, 0};
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, true), 0);
    cl_logstore_stats(f.ls, &st);
    assert_int_equal(st.fsyncs, 1);
    assert_int_equal(st.batches, 0);
    load(&f, &l);
    assert_hs(&l.hs, 5, 2, 0);
    cl_logstore_loaded_free(&l);
    fx_reopen(&f);
    load(&f, &l);
    assert_hs(&l.hs, 5, 2, 0);
    cl_logstore_loaded_free(&l);

    /* Not synchronous: waits for the next batch. */
    hs = (struct kcp_raft_hard_state){6, 0, 0};
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, false), 0);
    load(&f, &l);
    assert_hs(&l.hs, 5, 2, 0);
    cl_logstore_loaded_free(&l);
    append_sync(&f, 0, 1, 1, 6);
    hs.commit = 1;
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, false), 0);
    append_sync(&f, 0, 2, 2, 6);
    fx_reopen(&f);
    load(&f, &l);
    assert_hs(&l.hs, 6, 0, 1);
    cl_logstore_loaded_free(&l);

    /* Close writes one still pending. */
    hs = (struct kcp_raft_hard_state){7, 0, 2};
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, false), 0);
    fx_reopen(&f);
    load(&f, &l);
    assert_hs(&l.hs, 7, 0, 2);
    cl_logstore_loaded_free(&l);

    /* A synchronous save while a batch carries an older one: the newer stays. */
    hs = (struct kcp_raft_hard_state){8, 0, 2};
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, false), 0);
    assert_int_equal(append_range(&f, 0, 3, 3, 8, 0), 0);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT);
    hs = (struct kcp_raft_hard_state){9, 3, 2};
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, true), 0);
    size_t n = acks.n;
    assert_int_equal(append_range(&f, 0, 4, 4, 9, 0), 0);
    wait_acks(&f, n + 1);
    fx_reopen(&f);
    load(&f, &l);
    assert_hs(&l.hs, 9, 3, 2);
    cl_logstore_loaded_free(&l);

    /* A synchronous save supersedes an unsynced one queued before it. */
    hs = (struct kcp_raft_hard_state){10, 0, 3};
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, false), 0);
    hs = (struct kcp_raft_hard_state){11, 1, 3};
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, true), 0);
    append_sync(&f, 0, 5, 5, 11);
    fx_reopen(&f);
    load(&f, &l);
    assert_hs(&l.hs, 11, 1, 3);
    assert_int_equal(l.n, 5);
    cl_logstore_loaded_free(&l);
    fx_teardown(&f);
}

static void test_meta(void **state)
{
    (void)state;
    struct fx f;
    void *v = NULL;
    size_t len = 0;
    uint64_t id = 0;
    char long_name[CL_LOGSTORE_META_NAME_MAX + 2];
    fx_setup(&f, NULL);

    assert_int_equal(cl_logstore_meta_get(f.ls, "name", &v, &len), KCP_ENOTFOUND);
    assert_null(v);
    assert_int_equal(cl_logstore_meta_put(f.ls, "name", "node-a", 6), 0);
    assert_int_equal(cl_logstore_meta_get(f.ls, "name", &v, &len), 0);
    assert_int_equal(len, 6);
    assert_string_equal(v, "node-a"); /* NUL-terminated */
    free(v);
    assert_int_equal(cl_logstore_meta_put(f.ls, "empty", NULL, 0), 0);
    assert_int_equal(cl_logstore_meta_get(f.ls, "empty", &v, &len), 0);
    assert_int_equal(len, 0);
    free(v);

    /* Names the store owns, and bounds. */
    assert_int_equal(cl_logstore_meta_put(f.ls, "hard_state", "x", 1), KCP_EINVAL);
    assert_int_equal(cl_logstore_meta_put(f.ls, "format", "x", 1), KCP_EINVAL);
    assert_int_equal(cl_logstore_meta_get(f.ls, "snapshot", &v, &len), KCP_EINVAL);
    assert_int_equal(cl_logstore_meta_put(f.ls, "", "x", 1), KCP_EINVAL);
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(cl_logstore_meta_put(f.ls, long_name, "x", 1), KCP_EINVAL);
    long_name[CL_LOGSTORE_META_NAME_MAX] = '\0';
    assert_int_equal(cl_logstore_meta_put(f.ls, long_name, "x", 1), 0);
    char *big = kcp_calloc(1, CL_LOGSTORE_META_VALUE_MAX + 1);
    assert_int_equal(cl_logstore_meta_put(f.ls, "big", big, CL_LOGSTORE_META_VALUE_MAX + 1),
                     KCP_ETOOLARGE);
    assert_int_equal(cl_logstore_meta_put(f.ls, "big", big, CL_LOGSTORE_META_VALUE_MAX), 0);
    free(big);

    /* The node id, also readable as 8 bytes under "id". */
    assert_int_equal(cl_logstore_id_get(f.ls, &id), KCP_ENOTFOUND);
    assert_int_equal(cl_logstore_id_set(f.ls, 0x0102030405060708ull), 0);
    assert_int_equal(cl_logstore_id_get(f.ls, &id), 0);
    assert_int_equal(id, 0x0102030405060708ull);
    assert_int_equal(cl_logstore_meta_get(f.ls, "id", &v, &len), 0);
    assert_int_equal(len, 8);
    assert_int_equal(((unsigned char *)v)[0], 0x08);
    free(v);

    fx_reopen(&f);
    assert_int_equal(cl_logstore_meta_get(f.ls, "name", &v, &len), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(v, "node-a", 6);
    free(v);
    assert_int_equal(cl_logstore_meta_put(f.ls, "name", "node-b!", 7), 0);
    assert_int_equal(cl_logstore_id_get(f.ls, &id), 0);
    assert_int_equal(id, 0x0102030405060708ull);
    fx_reopen(&f);
    assert_int_equal(cl_logstore_meta_get(f.ls, "name", &v, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(v, "node-b!", 7);
    free(v);
    fx_teardown(&f);
}

static void test_compact(void **state)
{
    (void)state;
    struct fx f;
    struct cl_logstore_loaded l;
    struct cl_logstore_stats st;
    struct kcp_raft_config cfg = two_servers();
    fx_setup(&f, NULL);
    acks_reset();
    append_sync(&f, 0, 1, 10, 1);
    append_sync(&f, 0, 11, 20, 2);

    /* It rides with the next append and starts no batch by itself. */
    assert_int_equal(cl_logstore_compact(f.ls, 15, 2, &cfg, 12), 0);
    cl_logstore_stats(f.ls, &st);
    for (int i = 0; i < 5; i++)
        uv_run(&f.loop.uv, UV_RUN_NOWAIT);
    struct cl_logstore_stats st2;
    cl_logstore_stats(f.ls, &st2);
    assert_int_equal(st2.batches, st.batches);
    load(&f, &l);
    assert_false(l.has_snapshot);
    assert_int_equal(l.n, 20);
    cl_logstore_loaded_free(&l);
    append_sync(&f, 0, 21, 21, 2);
    load(&f, &l);
    assert_true(l.has_snapshot);
    assert_int_equal(l.snap_index, 15);
    assert_int_equal(l.snap_term, 2);
    assert_config_equal(&l.snap_config, &cfg);
    uint64_t t1[] = {2, 2, 2, 2, 2, 2, 2, 2, 2};
    check_log(&l, 13, t1, 9);
    cl_logstore_loaded_free(&l);

    /* A log that would start after the snapshot's next entry, and no configuration. */
    assert_int_equal(cl_logstore_compact(f.ls, 15, 2, &cfg, 17), KCP_EINVAL);
    assert_int_equal(cl_logstore_compact(f.ls, 18, 2, NULL, 16), KCP_EINVAL);

    /* An install: the whole log goes, then a barrier says it is durable. */
    cfg.n = 1;
    assert_int_equal(cl_logstore_compact(f.ls, 40, 3, &cfg, UINT64_MAX), 0);
    size_t n = acks.n;
    assert_int_equal(cl_logstore_append(f.ls, 0, NULL, 0, ack_cb, NULL), 0);
    wait_acks(&f, n + 1);
    assert_int_equal(acks.status[n], 0);
    load(&f, &l);
    assert_int_equal(l.n, 0);
    assert_true(l.has_snapshot);
    assert_int_equal(l.snap_index, 40);
    assert_int_equal(l.snap_term, 3);
    assert_config_equal(&l.snap_config, &cfg);
    cl_logstore_loaded_free(&l);
    /* The log continues after the snapshot. */
    assert_int_equal(append_range(&f, 0, 22, 22, 3, 0), KCP_EINVAL);
    append_sync(&f, 0, 41, 42, 3);
    fx_reopen(&f);
    load(&f, &l);
    assert_int_equal(l.snap_index, 40);
    uint64_t t2[] = {3, 3};
    check_log(&l, 41, t2, 2);
    cl_logstore_loaded_free(&l);
    assert_int_equal(append_range(&f, 0, 43, 43, 3, 0), 0);
    fx_teardown(&f);
}

static void test_reopen_identical(void **state)
{
    (void)state;
    struct fx f;
    struct cl_logstore_loaded a, b;
    struct kcp_raft_config cfg = two_servers();
    fx_setup(&f, NULL);
    acks_reset();
    struct kcp_raft_hard_state hs = {3, 7, 0};
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, true), 0);
    for (uint64_t i = 0; i < 30; i++)
        assert_int_equal(append_range(&f, 0, 1 + i * 4, 4 + i * 4, 3, i), 0);
    assert_int_equal(append_range(&f, 100, 100, 130, 4, 30), 0);
    hs.commit = 90;
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, false), 0);
    assert_int_equal(cl_logstore_compact(f.ls, 60, 3, &cfg, 50), 0);
    assert_int_equal(append_range(&f, 0, 131, 131, 4, 31), 0);
    wait_acks(&f, 32);
    load(&f, &a);
    assert_int_equal(a.n, 131 - 50);
    assert_hs(&a.hs, 3, 7, 90);
    fx_reopen(&f);
    load(&f, &b);
    assert_loaded_equal(&a, &b);
    cl_logstore_loaded_free(&b);
    fx_reopen(&f);
    load(&f, &b);
    assert_loaded_equal(&a, &b);
    cl_logstore_loaded_free(&a);
    cl_logstore_loaded_free(&b);
    fx_teardown(&f);
}

static void close_on_done(void *data)
{
    *(size_t *)data = acks.n + 1; /* acks seen at close, plus one so that 0 means "not yet" */
}

static void test_close_finishes_queue(void **state)
{
    (void)state;
    struct fx f;
    struct cl_logstore_loaded l;
    size_t at_close = 0;
    fx_setup(&f, NULL);
    acks_reset();
    for (uint64_t i = 1; i <= 5; i++)
        assert_int_equal(append_range(&f, 0, i, i, 1, i), 0);
    struct kcp_raft_config cfg = two_servers();
    assert_int_equal(cl_logstore_compact(f.ls, 2, 1, &cfg, 1), 0);
    cl_logstore_close(f.ls, close_on_done, &at_close);
    struct kcp_raft_hard_state hs = {1, 0, 0};
    assert_int_equal(append_range(&f, 0, 6, 6, 1, 6), KCP_ECLOSED);
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, true), KCP_ECLOSED);
    assert_int_equal(cl_logstore_meta_put(f.ls, "x", "y", 1), KCP_ECLOSED);
    assert_int_equal(cl_logstore_compact(f.ls, 3, 1, &cfg, 1), KCP_ECLOSED);
    while (!at_close)
        assert_true(uv_run(&f.loop.uv, UV_RUN_ONCE) || at_close);
    f.ls = NULL;
    assert_int_equal(at_close, 6); /* every callback came first */
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(acks.status[i], 0);
    fx_open(&f);
    load(&f, &l);
    assert_true(l.has_snapshot);
    uint64_t t[] = {1, 1, 1, 1};
    check_log(&l, 2, t, 4);
    cl_logstore_loaded_free(&l);
    fx_teardown(&f);
}

static void test_write_failure_stops(void **state)
{
    (void)state;
#ifdef KCP_TEST_LOGSEG
    /* A full LMDB map is this test's failure; segments have none (test_logseg.c fails a write
     * with RLIMIT_FSIZE instead). */
    skip();
#endif
    struct fx f;
    struct cl_logstore_loaded l;
    struct cl_logstore_options opts = {.map_size = 256 << 10, .max_map_size = 256 << 10};
    struct kcp_raft_config cfg = two_servers();
    fx_setup(&f, &opts);
    acks_reset();
    append_sync(&f, 0, 1, 1, 1);

    /* An entry larger than the map: MDB_MAP_FULL with no room to grow. */
    struct kcp_raft_entry big = {.index = 2, .term = 1, .type = KCP_RAFT_ENTRY_NORMAL};
    big.data.len = 1 << 20;
    big.data.base = kcp_calloc(1, big.data.len);
    assert_int_equal(cl_logstore_append(f.ls, 0, &big, 1, ack_cb, (void *)2), 0);
    free(big.data.base);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT); /* the batch is on the work queue */
    int rc = append_range(&f, 0, 3, 3, 1, 3);
    assert_true(rc == 0 || rc == KCP_EUNAVAILABLE);
    wait_acks(&f, rc == 0 ? 3 : 2);
    assert_int_equal(acks.id[1], 2);
    assert_int_equal(acks.status[1], KCP_EIO);
    if (rc == 0) {
        assert_int_equal(acks.id[2], 3);
        assert_int_equal(acks.status[2], KCP_EUNAVAILABLE);
    }

    /* Stopped: every write is refused; reads still work. */
    struct kcp_raft_hard_state hs = {2, 0, 0};
    assert_int_equal(append_range(&f, 0, 2, 2, 1, 0), KCP_EUNAVAILABLE);
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, false), KCP_EUNAVAILABLE);
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, true), KCP_EUNAVAILABLE);
    assert_int_equal(cl_logstore_meta_put(f.ls, "x", "y", 1), KCP_EUNAVAILABLE);
    assert_int_equal(cl_logstore_compact(f.ls, 1, 1, &cfg, 1), KCP_EUNAVAILABLE);
    load(&f, &l);
    uint64_t t[] = {1};
    check_log(&l, 1, t, 1);
    cl_logstore_loaded_free(&l);

    /* The disk kept the last good batch. */
    fx_reopen(&f);
    load(&f, &l);
    check_log(&l, 1, t, 1);
    cl_logstore_loaded_free(&l);
    append_sync(&f, 0, 2, 2, 1);
    fx_teardown(&f);
}

/* On segments, map_size is the segment size: this is then a test of many small segments. */
static void test_map_grows(void **state)
{
    (void)state;
    struct fx f;
    struct cl_logstore_loaded l;
    struct cl_logstore_options opts = {.map_size = 128 << 10, .max_map_size = 64 << 20};
    fx_setup(&f, &opts);
    acks_reset();
    /* ~1.4 MB in batches of ten appends, against a 128 KiB map. */
    for (uint64_t g = 0; g < 20; g++) {
        size_t n = acks.n;
        for (uint64_t i = 0; i < 10; i++) {
            uint64_t idx = 1 + g * 100 + i * 10;
            assert_int_equal(append_range(&f, 0, idx, idx + 9, 1, 0), 0);
        }
        wait_acks(&f, n + 10);
        for (size_t i = n; i < n + 10; i++)
            assert_int_equal(acks.status[i], 0);
    }
    /* A synchronous write grows it too, even while a batch that also needs room is in flight. */
    struct kcp_raft_entry e = {.index = 2001, .term = 1, .type = KCP_RAFT_ENTRY_NORMAL};
    e.data.len = 3 << 20;
    e.data.base = kcp_calloc(1, e.data.len);
    size_t n = acks.n;
    assert_int_equal(cl_logstore_append(f.ls, 0, &e, 1, ack_cb, NULL), 0);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT);
    assert_int_equal(cl_logstore_meta_put(f.ls, "big", e.data.base, CL_LOGSTORE_META_VALUE_MAX), 0);
    free(e.data.base);
    wait_acks(&f, n + 1);
    assert_int_equal(acks.status[n], 0);
    fx_reopen(&f);
    load(&f, &l);
    assert_int_equal(l.n, 2001);
    for (size_t i = 0; i < 2000; i++)
        fx_check_entry(&l.entries[i], i + 1, 1);
    assert_int_equal(l.entries[2000].data.len, 3 << 20);
    cl_logstore_loaded_free(&l);
    append_sync(&f, 0, 2002, 2100, 1);
    fx_teardown(&f);
}

/* ---- the figure: 10,000 appends of 1 KiB, 64 queued at a time ------------------------------ */

/* A counter of /proc/self/io ("wchar: ", "write_bytes: "), 0 where there is none. */
static uint64_t proc_io(const char *field)
{
    FILE *fp = fopen("/proc/self/io", "r");
    char line[128];
    uint64_t v = 0;
    size_t flen = strlen(field);
    if (!fp)
        return 0;
    while (fgets(line, sizeof(line), fp))
        if (strncmp(line, field, flen) == 0) {
            v = strtoull(line + flen, NULL, 10);
            break;
        }
    fclose(fp);
    return v;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define BENCH_ENTRIES 10000
#define BENCH_DEPTH 64
#define BENCH_BYTES 1024

static struct {
    struct cl_logstore *ls;
    uint64_t next; /* index of the next entry to queue */
    unsigned char payload[BENCH_BYTES];
} bench;

static void bench_queue(cl_logstore_cb cb)
{
    struct kcp_raft_entry e = {.index = bench.next, .term = 1, .type = KCP_RAFT_ENTRY_NORMAL};
    e.data.base = bench.payload;
    e.data.len = sizeof(bench.payload);
    bench.payload[0] = (unsigned char)bench.next;
    assert_int_equal(cl_logstore_append(bench.ls, 0, &e, 1, cb, NULL), 0);
    bench.next++;
}

/* Sliding window: each completion queues the next append, keeping BENCH_DEPTH queued. */
static void bench_refill_cb(struct cl_logstore *ls, int status, void *data)
{
    ack_cb(ls, status, data);
    if (bench.next <= BENCH_ENTRIES)
        bench_queue(bench_refill_cb);
}

/*
 * Groups: BENCH_DEPTH appends queued in one loop turn, then wait for all of them. Window: the
 * same depth kept queued by the callbacks. "put" is what the records hold (key and value);
 * "written" is what LMDB hands to write(2) (/proc/self/io wchar: every B-tree page a batch
 * dirties, the free list, the meta page); "device" is what the kernel submitted for this process
 * (write_bytes), file system overhead included.
 */
static void bench_run(bool window)
{
    struct fx f;
    struct cl_logstore_stats st;
    struct stat sb;
    char path[128];
    fx_setup(&f, NULL);
    acks_reset();
    memset(&bench, 0, sizeof(bench));
    memset(bench.payload, 0xab, sizeof(bench.payload));
    bench.ls = f.ls;
    bench.next = 1;
    uint64_t wchar0 = proc_io("wchar: "), dev0 = proc_io("write_bytes: "), t0 = mono_ms();
    if (window) {
        for (int i = 0; i < BENCH_DEPTH; i++)
            bench_queue(bench_refill_cb);
        wait_acks(&f, BENCH_ENTRIES);
    } else {
        while (bench.next <= BENCH_ENTRIES) {
            for (int i = 0; i < BENCH_DEPTH && bench.next <= BENCH_ENTRIES; i++)
                bench_queue(ack_cb);
            wait_acks(&f, (size_t)(bench.next - 1));
        }
    }
    uint64_t ms = mono_ms() - t0;
    cl_logstore_stats(f.ls, &st);
    fx_close(&f);
    uint64_t wchar = proc_io("wchar: ") - wchar0, dev = proc_io("write_bytes: ") - dev0;
#ifdef KCP_TEST_LOGSEG
    snprintf(path, sizeof(path), "%s/log-%020d.seg", f.dir, 1);
    assert_int_equal(stat(path, &sb), 0);
    sb.st_size = (off_t)sb.st_blocks * 512; /* allocated: the segment is sized (sparse) up front */
#else
    snprintf(path, sizeof(path), "%s/data.mdb", f.dir);
    assert_int_equal(stat(path, &sb), 0);
#endif
    assert_int_equal(acks.n, BENCH_ENTRIES);
    for (size_t i = 0; i < acks.n; i++)
        assert_int_equal(acks.status[i], 0);
    assert_int_equal(st.entries_written, BENCH_ENTRIES);
    if (!window) /* one batch per group: deterministic */
        assert_int_equal(st.batches, (BENCH_ENTRIES + BENCH_DEPTH - 1) / BENCH_DEPTH);
    print_message("logstore %s of %d, %d appends of %d B: %llu batches, %llu fsyncs (%.4f per "
                  "entry); B/entry put %.0f, written %.0f, device %.0f; %s %lld B; %llu ms\n",
                  window ? "window" : "groups", BENCH_DEPTH, BENCH_ENTRIES, BENCH_BYTES,
                  (unsigned long long)st.batches, (unsigned long long)st.fsyncs,
                  (double)st.fsyncs / BENCH_ENTRIES, (double)st.bytes_written / BENCH_ENTRIES,
                  (double)wchar / BENCH_ENTRIES, (double)dev / BENCH_ENTRIES,
#ifdef KCP_TEST_LOGSEG
                  "segment",
#else
                  "data.mdb",
#endif
                  (long long)sb.st_size, (unsigned long long)ms);
    fx_open(&f);
    fx_teardown(&f);
}

static void test_bench_figures(void **state)
{
    (void)state;
    bench_run(false);
    bench_run(true);
}

int test_logstore_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_append_checks),
        cmocka_unit_test(test_truncate_then_append),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_hard_state),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_reopen_identical),
        cmocka_unit_test(test_close_finishes_queue),
        cmocka_unit_test(test_write_failure_stops),
        cmocka_unit_test(test_map_grows),
        cmocka_unit_test(test_bench_figures),
    };
    return cmocka_run_group_tests_name("cluster/logstore", tests, NULL, NULL);
}
