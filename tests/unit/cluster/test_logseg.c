/* The segment store's own (logseg.c): torn tails, damage, segments rolled and deleted, failure. */
#include "fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static struct {
    size_t n;
    int status[64];
} acks;

static void ack_cb(struct cl_logstore *ls, int status, void *data)
{
    (void)ls;
    (void)data;
    assert_true(acks.n < 64);
    acks.status[acks.n++] = status;
}

static void wait_acks(struct fx *f, size_t n)
{
    while (acks.n < n)
        if (!uv_run(&f->loop.uv, UV_RUN_ONCE) && acks.n < n)
            fail_msg("loop ran dry with %zu of %zu acks", acks.n, n);
}

/* Queues from..to of term with fx payloads (n = 0 when to < from). */
static int append_range(struct fx *f, uint64_t truncate_from, uint64_t from, uint64_t to,
                        uint64_t term)
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
    int rc = cl_logstore_append(f->ls, truncate_from, n ? e : NULL, n, ack_cb, NULL);
    for (size_t i = 0; i < n; i++)
        free(e[i].data.base);
    free(e);
    return rc;
}

static void append_sync(struct fx *f, uint64_t truncate_from, uint64_t from, uint64_t to,
                        uint64_t term)
{
    acks.n = 0;
    assert_int_equal(append_range(f, truncate_from, from, to, term), 0);
    wait_acks(f, 1);
    assert_int_equal(acks.status[0], 0);
}

/* The loaded log is first..last, term terms[i - first] or term when terms is NULL. */
static void check_loaded(struct fx *f, uint64_t first, uint64_t last, uint64_t term)
{
    struct cl_logstore_loaded l;
    assert_int_equal(cl_logstore_load(f->ls, &l), 0);
    assert_int_equal(l.n, last >= first ? last - first + 1 : 0);
    for (size_t i = 0; i < l.n; i++)
        fx_check_entry(&l.entries[i], first + i, term);
    cl_logstore_loaded_free(&l);
}

/* The numbers of DIR's segments, sorted; returns how many. */
static size_t seg_list(const char *dir, uint64_t *nums, size_t max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "log-", 4) == 0 && n < max)
            nums[n++] = strtoull(e->d_name + 4, NULL, 10);
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && nums[j - 1] > nums[j]; j--) {
            uint64_t t = nums[j];
            nums[j] = nums[j - 1];
            nums[j - 1] = t;
        }
    return n;
}

static void seg_path(const struct fx *f, uint64_t num, char *path, size_t size)
{
    snprintf(path, size, "%s/log-%020llu.seg", f->dir, (unsigned long long)num);
}

static void last_seg_path(const struct fx *f, char *path, size_t size)
{
    uint64_t nums[64];
    size_t n = seg_list(f->dir, nums, 64);
    assert_true(n > 0);
    seg_path(f, nums[n - 1], path, size);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Offsets of the records of a segment (walking len fields to the first zero header). */
static size_t seg_records(const char *path, size_t *offs, size_t max, size_t *end)
{
    int fd = open(path, O_RDONLY);
    unsigned char h[8];
    size_t n = 0, off = 0;
    assert_true(fd >= 0);
    while (pread(fd, h, 8, (off_t)off) == 8 && rd32(h) != 0) {
        if (n < max)
            offs[n++] = off;
        off += (8 + rd32(h) + 7) & ~(size_t)7;
    }
    close(fd);
    *end = off;
    return n;
}

static void write_at(const char *path, off_t off, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, off), (ssize_t)len);
    close(fd);
}

static uint32_t crc32c_bitwise(uint32_t crc, const unsigned char *p, size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

/* A valid record (logseg.c's layout) of an entry at index, of data_len bytes; returns its size. */
static size_t make_record(unsigned char *p, uint64_t index, uint64_t term, size_t data_len,
                          bool batch_end)
{
    uint32_t len = (uint32_t)(17 + data_len);
    size_t total = (8 + len + 7) & ~(size_t)7;
    memset(p, 0, total);
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(len >> (8 * i));
    for (int i = 0; i < 8; i++) {
        p[8 + i] = (unsigned char)(index >> (8 * i));
        p[16 + i] = (unsigned char)(term >> (8 * i));
    }
    p[24] = (unsigned char)(KCP_RAFT_ENTRY_NORMAL | (batch_end ? 0x80 : 0));
    fx_fill(p + 25, index, term, data_len);
    uint32_t crc = crc32c_bitwise(crc32c_bitwise(0, p, 4), p + 8, len);
    for (int i = 0; i < 4; i++)
        p[4 + i] = (unsigned char)(crc >> (8 * i));
    return total;
}

/* Whether path holds only zeros from off to the end. */
static bool zeros_from(const char *path, size_t off)
{
    unsigned char buf[4096];
    int fd = open(path, O_RDONLY);
    ssize_t r;
    bool zero = true;
    assert_true(fd >= 0);
    while (zero && (r = pread(fd, buf, sizeof(buf), (off_t)off)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            zero = zero && buf[i] == 0;
        off += (size_t)r;
    }
    close(fd);
    return zero;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* A crash mid-write: half a record at the end of the last segment; the log ends before it. */
static void test_torn_tail(void **state)
{
    (void)state;
    struct fx f;
    char path[256];
    size_t offs[64], end;
    fx_setup(&f, NULL);
    for (uint64_t i = 1; i <= 10; i++)
        append_sync(&f, 0, i, i, 1);
    fx_close(&f);
    last_seg_path(&f, path, sizeof(path));
    assert_int_equal(seg_records(path, offs, 64, &end), 10);

    /* The first 100 bytes of a record of 1000. */
    unsigned char rec[1200];
    make_record(rec, 11, 1, 1000, true);
    write_at(path, (off_t)end, rec, 100);
    fx_open(&f);
    check_loaded(&f, 1, 10, 1);
    assert_true(zeros_from(path, end)); /* cut away at open */
    append_sync(&f, 0, 11, 11, 1);
    fx_reopen(&f);
    check_loaded(&f, 1, 11, 1);
    fx_close(&f);

    /* A record whole but for its last byte; then a header alone. */
    seg_records(path, offs, 64, &end);
    size_t size = make_record(rec, 12, 1, 1000, true);
    write_at(path, (off_t)end, rec, size - 8);
    fx_open(&f);
    check_loaded(&f, 1, 11, 1);
    fx_close(&f);
    write_at(path, (off_t)end, rec, 8);
    fx_open(&f);
    check_loaded(&f, 1, 11, 1);
    fx_close(&f);

    /* Records whole and valid, but their batch has no end: a write cut between records. */
    size = make_record(rec, 12, 1, 300, false);
    write_at(path, (off_t)end, rec, size);
    fx_open(&f);
    check_loaded(&f, 1, 11, 1);
    assert_true(zeros_from(path, end));
    fx_close(&f);

    /* The same record ending its batch is a batch like any other (a write that completed). */
    size = make_record(rec, 12, 1, 300, true);
    write_at(path, (off_t)end, rec, size);
    fx_open(&f);
    struct cl_logstore_loaded l;
    assert_int_equal(cl_logstore_load(f.ls, &l), 0);
    assert_int_equal(l.n, 12);
    assert_int_equal(l.entries[11].data.len, 300);
    cl_logstore_loaded_free(&l);
    fx_teardown(&f);
}

/* A damaged record with later batches after it is damage to acknowledged data: KCP_EIO. */
static void test_damage_before_later_batches(void **state)
{
    (void)state;
    struct fx f;
    char path[256];
    size_t offs[64], end;
    unsigned char byte;
    fx_setup(&f, NULL);
    for (uint64_t i = 1; i <= 10; i++)
        append_sync(&f, 0, i, i, 1);
    fx_close(&f);
    last_seg_path(&f, path, sizeof(path));
    assert_int_equal(seg_records(path, offs, 64, &end), 10);

    /* One bit of entry 4's payload. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &byte, 1, (off_t)offs[3] + 30), 1);
    byte ^= 0x10;
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)offs[3] + 30), 1);
    assert_int_equal(cl_logstore_open(&f.ls, &f.loop, f.dir), KCP_EIO);
    assert_null(f.ls);
    byte ^= 0x10;
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)offs[3] + 30), 1);
    fx_open(&f);
    check_loaded(&f, 1, 10, 1);
    fx_close(&f);

    /* A damaged length: the records after it cannot be reached, yet they are found. */
    unsigned char len[4] = {0xff, 0xff, 0, 0};
    assert_int_equal(pwrite(fd, len, 4, (off_t)offs[6]), 4);
    assert_int_equal(cl_logstore_open(&f.ls, &f.loop, f.dir), KCP_EIO);

    close(fd);
    fx_teardown(&f);
}

static void test_damage_in_last_batch(void **state)
{
    (void)state;
    struct fx f;
    char path[256];
    size_t offs[64], end;
    fx_setup(&f, NULL);
    append_sync(&f, 0, 1, 5, 1);
    append_sync(&f, 0, 6, 10, 1); /* one batch of five records */
    fx_close(&f);
    last_seg_path(&f, path, sizeof(path));
    assert_int_equal(seg_records(path, offs, 64, &end), 10);
    /* Entry 7's payload: the last batch (6..10) is torn; 1..5 stay. */
    unsigned char byte = 0x5a;
    write_at(path, (off_t)offs[6] + 40, &byte, 1);
    fx_open(&f);
    check_loaded(&f, 1, 5, 1);
    assert_true(zeros_from(path, offs[5]));
    append_sync(&f, 0, 6, 7, 2);
    fx_reopen(&f);
    struct cl_logstore_loaded l;
    assert_int_equal(cl_logstore_load(f.ls, &l), 0);
    assert_int_equal(l.n, 7);
    fx_check_entry(&l.entries[4], 5, 1);
    fx_check_entry(&l.entries[6], 7, 2);
    cl_logstore_loaded_free(&l);
    fx_teardown(&f);
}

/* Small segments: roll over, truncate back across them, compact them away whole. */
static void test_segments(void **state)
{
    (void)state;
    struct fx f;
    uint64_t nums[64];
    struct cl_logstore_options opts = {.map_size = 64 << 10};
    struct kcp_raft_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.n = 1;
    cfg.servers[0].id = 1;
    cfg.servers[0].role = KCP_RAFT_VOTER;
    strcpy(cfg.servers[0].address, "a@127.0.0.1:1");
    fx_setup(&f, &opts);
    /* ~600 B per entry, 64 KiB per segment: about 100 entries each. */
    for (uint64_t i = 0; i < 40; i++)
        append_sync(&f, 0, 1 + i * 10, 10 + i * 10, 1);
    size_t n = seg_list(f.dir, nums, 64);
    assert_true(n >= 3);
    assert_int_equal(nums[0], 1);
    for (size_t i = 1; i < n; i++)
        assert_true(nums[i] > nums[i - 1] && (nums[i] - 1) % 10 == 0);

    /* Back into the first segment, from a later one; then past the next roll-over. */
    append_sync(&f, 50, 50, 60, 2);
    for (uint64_t i = 0; i < 20; i++)
        append_sync(&f, 0, 61 + i * 10, 70 + i * 10, 2);
    size_t n2 = seg_list(f.dir, nums, 64);
    assert_true(n2 > n);
    fx_reopen(&f);
    struct cl_logstore_loaded l;
    assert_int_equal(cl_logstore_load(f.ls, &l), 0);
    assert_int_equal(l.n, 260);
    for (size_t i = 0; i < l.n; i++)
        fx_check_entry(&l.entries[i], i + 1, i < 49 ? 1 : 2);
    cl_logstore_loaded_free(&l);

    /* Compaction to 150: the segments whose entries are all <= 150 go: the first (1..~100, of
     * which 50.. were truncated away); not the one that holds 50..60 of term 2 and later ones. */
    assert_int_equal(cl_logstore_compact(f.ls, 150, 2, &cfg, 150), 0);
    append_sync(&f, 0, 261, 261, 2);
    size_t n3 = seg_list(f.dir, nums, 64);
    assert_true(n3 < n2 + 1);
    assert_true(nums[0] > 1);
    fx_reopen(&f);
    assert_int_equal(cl_logstore_load(f.ls, &l), 0);
    assert_true(l.has_snapshot);
    assert_int_equal(l.snap_index, 150);
    assert_int_equal(l.n, 261 - 150);
    for (size_t i = 0; i < l.n; i++)
        fx_check_entry(&l.entries[i], 151 + i, 2);
    cl_logstore_loaded_free(&l);

    /* An install takes the whole log: every segment but the one it went into goes. */
    assert_int_equal(cl_logstore_compact(f.ls, 1000, 3, &cfg, UINT64_MAX), 0);
    acks.n = 0;
    assert_int_equal(cl_logstore_append(f.ls, 0, NULL, 0, ack_cb, NULL), 0);
    wait_acks(&f, 1);
    assert_int_equal(seg_list(f.dir, nums, 64), 1);
    append_sync(&f, 0, 1001, 1002, 3);
    fx_reopen(&f);
    assert_int_equal(cl_logstore_load(f.ls, &l), 0);
    assert_int_equal(l.snap_index, 1000);
    assert_int_equal(l.n, 2);
    fx_check_entry(&l.entries[0], 1001, 3);
    cl_logstore_loaded_free(&l);
    fx_teardown(&f);
}

/* A write that fails (the file size limit): KCP_EIO, then KCP_EUNAVAILABLE; the disk keeps the
 * durable batches. */
static void test_write_failure(void **state)
{
    (void)state;
    struct fx f;
    struct rlimit old, lim;
    fx_setup(&f, NULL);
    append_sync(&f, 0, 1, 1, 1);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1 << 20;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

    struct kcp_raft_entry big = {.index = 2, .term = 1, .type = KCP_RAFT_ENTRY_NORMAL};
    big.data.len = 2 << 20;
    big.data.base = kcp_calloc(1, big.data.len);
    acks.n = 0;
    assert_int_equal(cl_logstore_append(f.ls, 0, &big, 1, ack_cb, NULL), 0);
    free(big.data.base);
    uv_run(&f.loop.uv, UV_RUN_NOWAIT); /* the batch is on the work queue */
    int rc = append_range(&f, 0, 3, 3, 1);
    assert_true(rc == 0 || rc == KCP_EUNAVAILABLE);
    wait_acks(&f, rc == 0 ? 2 : 1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(acks.status[0], KCP_EIO);
    if (rc == 0)
        assert_int_equal(acks.status[1], KCP_EUNAVAILABLE);
    struct kcp_raft_hard_state hs = {2, 0, 0};
    assert_int_equal(append_range(&f, 0, 2, 2, 1), KCP_EUNAVAILABLE);
    assert_int_equal(cl_logstore_save_hard_state(f.ls, &hs, true), KCP_EUNAVAILABLE);
    check_loaded(&f, 1, 1, 1);
    fx_reopen(&f);
    check_loaded(&f, 1, 1, 1);
    append_sync(&f, 0, 2, 2, 1);
    fx_reopen(&f);
    check_loaded(&f, 1, 2, 1);
    fx_teardown(&f);
}

/* A directory of the other store is refused rather than taken for an empty log. */
static void test_lmdb_dir_refused(void **state)
{
    (void)state;
    struct fx f;
    char path[256];
    fx_setup(&f, NULL);
    fx_close(&f);
    snprintf(path, sizeof(path), "%s/meta", f.dir);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/data.mdb", f.dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(cl_logstore_open(&f.ls, &f.loop, f.dir), KCP_EIO);
    unlink(path);
    fx_open(&f);
    /* Nor can a second store open a directory in use. */
    struct cl_logstore *other = NULL;
    assert_int_equal(cl_logstore_open(&other, &f.loop, f.dir), KCP_EIO);
    assert_null(other);
    fx_teardown(&f);
}

int test_logseg_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_damage_before_later_batches),
        cmocka_unit_test(test_damage_in_last_batch),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_write_failure),
        cmocka_unit_test(test_lmdb_dir_refused),
    };
    return cmocka_run_group_tests_name("cluster/logseg", tests, NULL, NULL);
}
