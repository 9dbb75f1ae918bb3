/*
 * The Raft log in segment files: logstore.h's API and contract (read its header comment) without
 * LMDB. The build takes this file or logstore.c (KCP_RAFT_LOG=segment|lmdb); both define the
 * same cl_logstore_* functions.
 *
 * Layout (DIR mode 0700, files 0600; integers little-endian):
 *   DIR/log-<20 digits>.seg: the segments, in the order of their numbers. A segment's number
 *     is the index of the first entry written into it (raised to one past the previous one's
 *     when a truncation went back further, so that names always sort in write order). A new
 *     segment is sized at once (ftruncate: sparse) to the segment size (map_size in the options,
 *     default 64 MiB, max_map_size unused; the batch's size if larger) and batches are written
 *     inside it, so a write never changes the file size: the fdatasync of a batch then flushes
 *     its data blocks (and, every few batches, a block allocation) instead of an inode and a
 *     journal commit each time.
 *     A batch that does not fit in what the segment has left goes whole into a new one.
 *     Records start at offset 0 and at every multiple of 8 after the previous one; zeros follow
 *     the last:
 *       u32 len | u32 crc32c | u64 index | u64 term | u8 type | data (len - 17 bytes) | 0 pad
 *     len counts the bytes from index to the end of data; the CRC-32C covers len then those bytes.
 *     type & 0x7f: 1, 2, 3  an entry (enum kcp_raft_entry_type) at index. Written at or below the
 *                           last index, it first deletes the entries from its index on (the
 *                           truncation of an append that replaces entries is the append itself);
 *                  16       TRUNCATE: entries >= index are deleted (a truncation with no append);
 *                  17       HARD_STATE: index = seq, term; data = u64 vote | u64 commit;
 *                  18       SNAPSHOT: index and term of the snapshot; data = u64 upto | config
 *                           (kcp_raft_config_encode), entries <= upto are deleted.
 *     type & 0x80: the last record of a batch. A batch is one write(2) and one fdatasync; the
 *     records of a batch that has no last record (a write cut short) do not count, so each
 *     batch, like an LMDB commit, applies whole or not at all. For the same reason a truncation
 *     is a record (or the replacing entry itself), never an ftruncate: a crash cannot leave the log
 *     cut without the entries that replace what was cut.
 *   DIR/meta: "kcpRlog" 0x01 | u32 count | count x (u32 name length | name | u32 length | value)
 *     | u32 crc32c of everything before it. Replaced whole and atomically (kcp_file_write_atomic:
 *     temporary file, fsync, rename, fsync of DIR) at creation and by each synchronous call:
 *     "hard_state" (u64 term | vote | commit | seq) saved with sync, "id", and the caller's
 *     names. Batches never write it.
 *
 * Hard state: a synchronous save rewrites DIR/meta; an unsynced one becomes a HARD_STATE record
 * of the next batch. Each save has a sequence number; the loaded one is the highest of the two
 * places, so a batch formed before a synchronous save never overrides it.
 *
 * Compaction: after a batch with a SNAPSHOT record is durable, the segments before the one it
 * went into whose entries are all <= upto (all of them if the snapshot took the whole log) are
 * deleted, oldest first. Such a batch always carries a HARD_STATE record too, so a deleted
 * segment never holds the newest hard state or snapshot. Nothing is rewritten: entries deleted
 * by a truncation stay in their segment until it goes the same way. Loading starts the log at
 * the first entry it finds; the checks of logstore.h then apply (contiguous entries, the first
 * at most snap_index + 1).
 *
 * Crash: open scans every segment. After the last complete batch of the last segment, anything
 * that is not zeros (a batch cut short by a crash, torn records) is dropped (the file truncated
 * back and extended again, synced) with a warning; a segment left with nothing is deleted. A
 * record that is corrupt while a later batch follows it (in the same segment or a later one)
 * is damage to acknowledged data: KCP_EIO.
 *
 * Threads: only the worker writes segments; the loop thread writes DIR/meta. lock guards the
 * segment table (the worker adds, deletes and marks batches durable under it, load reads under
 * it), so a load sees exactly the durable batches and never a segment being deleted. A
 * synchronous save does not wait for a batch being written. One store at a time has DIR open
 * (flock on DIR; another open is KCP_EIO).
 *
 * Failure: a batch whose write or sync fails stops the store as logstore.h says, and what it
 * wrote past the durable end is cut away. Should that fail too, a later open drops the batch if
 * it is incomplete, or loads it if the page cache kept it whole: entries that were never
 * acknowledged, as after a crash between a batch's sync and its callbacks (Raft allows both).
 */
#include "logstore.h"

#include <uv.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC_PREFIX 8  /* u32 len | u32 crc */
#define REC_HEADER 17 /* u64 index | u64 term | u8 type */
#define REC_ALIGN 8
/* Largest data of one record (len is a u32). */
#define REC_DATA_MAX ((size_t)UINT32_MAX - REC_HEADER - 64)
#define T_TRUNCATE 16
#define T_HARD_STATE 17
#define T_SNAPSHOT 18
#define T_BATCH_END 0x80
#define HS_DATA 16   /* u64 vote | u64 commit */
#define HS_RECORD 32 /* in DIR/meta: u64 term | vote | commit | seq */
/* Entry bytes that close a batch (which takes one op at least). */
#define BATCH_BYTES ((size_t)64 << 20)
#define DEFAULT_SEG_SIZE ((size_t)64 << 20)
#define MIN_SEG_SIZE ((size_t)64 << 10)
#define SEG_NAME_LEN 28 /* "log-" 20 digits ".seg" */
#define META_MAX ((size_t)1 << 30)

static const unsigned char meta_magic[8] = {'k', 'c', 'p', 'R', 'l', 'o', 'g', 1};

/* Names the log store writes itself; meta_put refuses them ("id" is shared: a u64 either way). */
static const char *const reserved_names[] = {"format", "hard_state", "snapshot"};

enum op_type { OP_APPEND, OP_COMPACT };

/* One queued call, freed once its batch is done. */
struct ls_op {
    struct ls_op *next;
    enum op_type type;
    /* OP_APPEND */
    uint64_t truncate_from;
    struct kcp_raft_entry *entries; /* the entries, then their data: one allocation */
    size_t n;
    size_t bytes;
    cl_logstore_cb cb;
    void *data;
    /* OP_COMPACT */
    uint64_t snap_index, snap_term, upto;
    struct kcp_buf config;
};

struct ls_batch {
    uv_work_t work;
    struct cl_logstore *ls;
    struct ls_op *head;
    bool has_hs;
    struct kcp_raft_hard_state hs;
    uint64_t hs_seq;
    /* Written by the worker, read after it. */
    int rc;
    const char *what; /* the call that failed */
    int err;          /* its errno */
    bool changed;     /* anything written: the batch synced */
    uint64_t entries, bytes;
};

struct seg {
    uint64_t num;       /* in its name */
    uint64_t size;      /* bytes of durable batches (under lock) */
    uint64_t cap;       /* file size */
    uint64_t max_index; /* largest entry index written into it (0: none) */
};

struct meta_item {
    char *name;
    unsigned char *val;
    size_t len;
};

struct cl_logstore {
    struct kcp_loop *loop;
    char *dir;
    int dir_fd;
    size_t seg_size;

    /* Held by the worker to change the table, by load to read the segments. */
    uv_mutex_t lock;
    struct seg *segs;
    size_t nsegs, segs_cap;
    /* The worker's (one batch at a time; open sets them before any). */
    int wfd;         /* the last segment, open for writing (-1: none) */
    uint64_t w_last; /* last index once every written batch applies */

    struct meta_item *meta; /* what DIR/meta holds (loop thread) */
    size_t nmeta;

    uint64_t last; /* last index once every queued op applies; the snapshot's if the log is empty */
    struct kcp_raft_hard_state hs; /* the latest saved */
    uint64_t hs_seq;               /* of the latest save; the ones on disk are never higher */
    bool hs_dirty;                 /* the latest was not written synchronously: a batch will */

    struct ls_op *pending, **pending_last;
    size_t pending_appends;
    struct ls_batch *inflight; /* the batch being written off the loop thread */
    uv_idle_t kick;            /* starts batches and the close at the next loop turn */
    bool kick_active;
    int failed; /* a write failed: everything stops (never diverge) */

    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
    struct cl_logstore_stats st;
};

/* ---- encoding --------------------------------------------------------------------------- */

static void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t rd_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t crc_table[8][256];
static uv_once_t crc_once = UV_ONCE_INIT;

static void crc_init(void)
{
    /* Castagnoli polynomial, reflected; slicing-by-8 tables. */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

/* CRC-32C, chainable: crc32c(crc32c(0, a), b) is the CRC of a then b. */
static uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uv_once(&crc_once, crc_init);
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ rd_le32(p);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

static size_t rec_size(size_t data_len)
{
    return (REC_PREFIX + REC_HEADER + data_len + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1);
}

/* The CRC of the record at p whose len field is len. */
static uint32_t rec_crc(const unsigned char *p, size_t len)
{
    return crc32c(crc32c(0, p, 4), p + REC_PREFIX, len);
}

/* Writes a record of data a then b at p; returns the end of its padding. */
static unsigned char *rec_put(unsigned char *p, unsigned type, uint64_t index, uint64_t term,
                              const void *a, size_t alen, const void *b, size_t blen)
{
    size_t len = REC_HEADER + alen + blen, total = rec_size(alen + blen);
    unsigned char *d = p + REC_PREFIX + REC_HEADER;
    le32(p, (uint32_t)len);
    le64(p + REC_PREFIX, index);
    le64(p + REC_PREFIX + 8, term);
    p[REC_PREFIX + 16] = (unsigned char)type;
    if (alen)
        memcpy(d, a, alen);
    if (blen)
        memcpy(d + alen, b, blen);
    memset(d + alen + blen, 0, total - REC_PREFIX - len);
    le32(p + 4, rec_crc(p, len));
    return p + total;
}

/* Marks the record at p the last of its batch. */
static void rec_set_end(unsigned char *p)
{
    p[REC_PREFIX + 16] |= T_BATCH_END;
    le32(p + 4, rec_crc(p, rd_le32(p)));
}

static bool entry_type_valid(unsigned t)
{
    return t == KCP_RAFT_ENTRY_NORMAL || t == KCP_RAFT_ENTRY_NOOP || t == KCP_RAFT_ENTRY_CONFIG;
}

struct rec {
    size_t size; /* with prefix and padding */
    uint64_t index, term;
    unsigned type; /* without T_BATCH_END */
    bool end;
    const unsigned char *data;
    size_t len;
};

enum { REC_VALID, REC_NONE, REC_BAD };

/*
 * The record at off of m[0, limit): REC_VALID (its CRC matches), REC_NONE (a zero header or the
 * limit: nothing was written there) or REC_BAD (anything else: torn or damaged).
 */
static int rec_parse(const unsigned char *m, size_t limit, size_t off, struct rec *r)
{
    if (off >= limit || limit - off < REC_PREFIX)
        return REC_NONE;
    const unsigned char *p = m + off;
    uint32_t len = rd_le32(p), crc = rd_le32(p + 4);
    if (len == 0 && crc == 0)
        return REC_NONE;
    if (len < REC_HEADER || len > limit - off - REC_PREFIX)
        return REC_BAD;
    if (rec_crc(p, len) != crc)
        return REC_BAD;
    r->size = rec_size(len - REC_HEADER);
    r->index = rd_le64(p + REC_PREFIX);
    r->term = rd_le64(p + REC_PREFIX + 8);
    r->type = p[REC_PREFIX + 16] & ~T_BATCH_END;
    r->end = (p[REC_PREFIX + 16] & T_BATCH_END) != 0;
    r->data = p + REC_PREFIX + REC_HEADER;
    r->len = len - REC_HEADER;
    return REC_VALID;
}

static int corrupt(const char *what)
{
    kcp_log(KCP_LOG_ERROR, "cluster", "raft log: corrupt %s", what);
    return KCP_EIO;
}

static int sys_err(const char *what, const char *path)
{
    kcp_log(KCP_LOG_ERROR, "cluster", "raft log: %s %s: %s", what, path, strerror(errno));
    return KCP_EIO;
}

/* ---- replay: the log that the records describe ------------------------------------------ */

struct replay {
    bool keep; /* keep the entries (load); open only counts them */
    struct kcp_raft_entry *e;
    size_t cap;
    uint64_t count; /* entries in the log */
    uint64_t base;  /* the index before the first entry */
    bool started;   /* an entry has set base: the log starts at the first entry found */
    bool has_snap;
    uint64_t snap_index, snap_term;
    struct kcp_buf snap_config;
    bool has_hs;
    struct kcp_raft_hard_state hs;
    uint64_t hs_seq;
};

static void replay_free(struct replay *r)
{
    for (uint64_t i = 0; r->keep && i < r->count; i++)
        free(r->e[i].data.base);
    free(r->e);
    kcp_buf_free(&r->snap_config);
    memset(r, 0, sizeof(*r));
}

/* Keeps the first n entries. */
static void replay_cut(struct replay *r, uint64_t n)
{
    for (uint64_t i = n; r->keep && i < r->count; i++)
        free(r->e[i].data.base);
    r->count = n;
}

/* Deletes the first n entries. */
static void replay_drop_front(struct replay *r, uint64_t n)
{
    if (r->keep) {
        for (uint64_t i = 0; i < n; i++)
            free(r->e[i].data.base);
        memmove(r->e, r->e + n, (size_t)(r->count - n) * sizeof(*r->e));
    }
    r->count -= n;
    r->base += n;
}

static int replay_entry(struct replay *r, const struct rec *rec)
{
    if (!r->started) {
        r->started = true;
        r->base = rec->index - 1;
    } else if (rec->index <= r->base) {
        replay_cut(r, 0);
        r->base = rec->index - 1;
    } else if (rec->index <= r->base + r->count) {
        replay_cut(r, rec->index - r->base - 1);
    } else if (rec->index != r->base + r->count + 1) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: gap after index %llu",
                (unsigned long long)(r->base + r->count));
        return KCP_EIO;
    }
    if (r->keep) {
        if (r->count == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 64;
            r->e = kcp_realloc(r->e, r->cap * sizeof(*r->e));
        }
        struct kcp_raft_entry *e = &r->e[r->count];
        e->index = rec->index;
        e->term = rec->term;
        e->type = (enum kcp_raft_entry_type)rec->type;
        e->data.len = rec->len;
        e->data.base = NULL;
        if (rec->len) {
            e->data.base = kcp_malloc(rec->len);
            memcpy(e->data.base, rec->data, rec->len);
        }
    }
    r->count++;
    return 0;
}

/* Applies one record of a complete batch. */
static int replay_rec(struct replay *r, const struct rec *rec, uint64_t *max_index)
{
    if (entry_type_valid(rec->type)) {
        if (rec->index == 0)
            return corrupt("log entry");
        if (rec->index > *max_index)
            *max_index = rec->index;
        return replay_entry(r, rec);
    }
    switch (rec->type) {
    case T_TRUNCATE:
        if (rec->len != 0 || rec->index == 0)
            return corrupt("truncation record");
        /* Before the first entry found, what it deleted is gone already. */
        if (r->started) {
            if (rec->index - 1 < r->base) {
                replay_cut(r, 0);
                r->base = rec->index - 1;
            } else if (rec->index - 1 < r->base + r->count) {
                replay_cut(r, rec->index - 1 - r->base);
            }
        }
        return 0;
    case T_HARD_STATE:
        if (rec->len != HS_DATA)
            return corrupt("hard state record");
        if (!r->has_hs || rec->index > r->hs_seq) {
            r->has_hs = true;
            r->hs_seq = rec->index;
            r->hs.term = rec->term;
            r->hs.vote = rd_le64(rec->data);
            r->hs.commit = rd_le64(rec->data + 8);
        }
        return 0;
    case T_SNAPSHOT: {
        struct kcp_raft_config *cfg = kcp_malloc(sizeof(*cfg));
        int rc = rec->len < 8 || kcp_raft_config_decode(cfg, rec->data + 8, rec->len - 8) != 0;
        free(cfg);
        if (rc)
            return corrupt("snapshot record");
        uint64_t upto = rd_le64(rec->data);
        r->has_snap = true;
        r->snap_index = rec->index;
        r->snap_term = rec->term;
        kcp_buf_reset(&r->snap_config);
        kcp_buf_append(&r->snap_config, rec->data + 8, rec->len - 8);
        /* Before the first entry found, there is nothing to delete (see replay_entry). */
        if (r->started) {
            if (upto >= r->base + r->count) {
                replay_cut(r, 0);
                r->base = rec->index; /* the next entry follows the snapshot */
            } else if (upto > r->base) {
                replay_drop_front(r, upto - r->base);
            }
        }
        return 0;
    }
    default:
        return corrupt("record type");
    }
}

/* Applies the records of m[from, to), a complete batch. */
static int replay_batch(struct replay *r, const unsigned char *m, size_t from, size_t to,
                        uint64_t *max_index)
{
    struct rec rec;
    for (size_t off = from; off < to; off += rec.size) {
        if (rec_parse(m, to, off, &rec) != REC_VALID)
            return corrupt("record"); /* parsed a moment ago */
        int rc = replay_rec(r, &rec, max_index);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The next offset >= off of fd that may hold data (SEEK_DATA), limit when none. */
static size_t next_data(int fd, size_t off, size_t limit)
{
    if (fd < 0)
        return off;
    off_t d = lseek(fd, (off_t)off, SEEK_DATA);
    if (d < 0)
        return errno == ENXIO ? limit : off; /* no data after off, or no SEEK_DATA */
    return (size_t)d < limit ? (size_t)d : limit;
}

static size_t next_hole(int fd, size_t off, size_t limit)
{
    if (fd < 0)
        return limit;
    off_t h = lseek(fd, (off_t)off, SEEK_HOLE);
    return h < 0 || (size_t)h > limit ? limit : (size_t)h;
}

/* Whether m[from, limit) holds anything but zeros (holes skipped with SEEK_DATA). */
static bool has_data_after(int fd, const unsigned char *m, size_t from, size_t limit)
{
    size_t p = from;
    while (p < limit) {
        p = next_data(fd, p, limit);
        size_t h = next_hole(fd, p, limit);
        if (h <= p)
            h = limit;
        for (; p < h; p++)
            if (m[p])
                return true;
    }
    return false;
}

/*
 * Whether a valid record follows a batch end in m[from, limit): a batch written after the one
 * torn or damaged at from (every batch is written after the previous one is durable, so a torn
 * write is the last one, and its records after a damaged one have no batch end before the end).
 */
static bool later_batch(int fd, const unsigned char *m, size_t from, size_t limit)
{
    size_t p = (from + REC_ALIGN) & ~(size_t)(REC_ALIGN - 1);
    while (p + REC_PREFIX <= limit) {
        size_t d = next_data(fd, p, limit);
        if (d > p)
            p = (d + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1);
        size_t h = next_hole(fd, p, limit);
        if (h <= p)
            h = limit;
        while (p + REC_PREFIX <= h) {
            struct rec rec;
            if (rec_parse(m, limit, p, &rec) != REC_VALID) {
                p += REC_ALIGN;
                continue;
            }
            bool seen_end = false;
            size_t q = p;
            while (rec_parse(m, limit, q, &rec) == REC_VALID) {
                if (seen_end)
                    return true;
                seen_end = rec.end;
                q += rec.size;
            }
            p = q > p ? q : p + REC_ALIGN;
        }
        if (p < h)
            p = h;
    }
    return false;
}

/*
 * Applies every complete batch of m[0, limit) to r. *end: the offset after the last complete
 * batch; *torn: something other than zeros follows it (fd >= 0: looked for past a zero header
 * too). KCP_EIO when a damaged record has a later batch after it.
 */
static int scan_seg(int fd, const unsigned char *m, size_t limit, struct replay *r,
                    uint64_t *max_index, size_t *end, bool *torn)
{
    size_t off = 0, batch = 0;
    struct rec rec;
    int v;
    *end = 0;
    *torn = false;
    while ((v = rec_parse(m, limit, off, &rec)) == REC_VALID) {
        off += rec.size;
        if (rec.end) {
            int rc = replay_batch(r, m, batch, off, max_index);
            if (rc != 0)
                return rc;
            batch = off;
        }
    }
    *end = batch;
    if (v == REC_NONE && off == batch && (fd < 0 || !has_data_after(fd, m, off, limit)))
        return 0;
    if (later_batch(fd, m, off, limit)) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: damaged record at %zu, before later ones",
                off);
        return KCP_EIO;
    }
    *torn = true;
    return 0;
}

/* ---- segments --------------------------------------------------------------------------- */

static char *seg_path(const struct cl_logstore *ls, uint64_t num)
{
    return kcp_sprintf("%s/log-%020llu.seg", ls->dir, (unsigned long long)num);
}

/* The number in a segment's file name; false for any other name. */
static bool seg_name(const char *name, uint64_t *num)
{
    if (strlen(name) != SEG_NAME_LEN || strncmp(name, "log-", 4) != 0 ||
        strcmp(name + 24, ".seg") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *num = v;
    return true;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num;
}

static void segs_push(struct cl_logstore *ls, const struct seg *s)
{
    if (ls->nsegs == ls->segs_cap) {
        ls->segs_cap = ls->segs_cap ? ls->segs_cap * 2 : 8;
        ls->segs = kcp_realloc(ls->segs, ls->segs_cap * sizeof(*ls->segs));
    }
    ls->segs[ls->nsegs++] = *s;
}

/* Lists DIR's segments into ls->segs, sorted; notes stray temporary files of DIR/meta. */
static int segs_list(struct cl_logstore *ls)
{
    DIR *d = opendir(ls->dir);
    struct dirent *e;
    if (!d)
        return sys_err("open directory", ls->dir);
    while ((e = readdir(d))) {
        struct seg s = {0};
        if (seg_name(e->d_name, &s.num)) {
            segs_push(ls, &s);
        } else if (strncmp(e->d_name, "meta.tmp.", 9) == 0) {
            /* A temporary file of a DIR/meta write that a crash cut short. */
            if (unlinkat(dirfd(d), e->d_name, 0) != 0)
                kcp_log(KCP_LOG_WARN, "cluster", "raft log: cannot remove %s/%s", ls->dir,
                        e->d_name);
        }
    }
    closedir(d);
    if (ls->nsegs)
        qsort(ls->segs, ls->nsegs, sizeof(*ls->segs), seg_cmp);
    return 0;
}

/*
 * Drops what follows the last complete batch of the last segment (torn: a crash cut a write
 * short), or the segment when it has none.
 */
static int seg_repair(struct cl_logstore *ls, struct seg *s, int fd, size_t end, bool torn)
{
    char *path = seg_path(ls, s->num);
    int rc = 0;
    if (torn)
        kcp_log(KCP_LOG_WARN, "cluster",
                "raft log: %s: dropping an unfinished write after offset %zu", path, end);
    if (end == 0) {
        if (unlink(path) != 0 || fsync(ls->dir_fd) != 0)
            rc = sys_err("remove", path);
        else
            ls->nsegs--;
    } else if (ftruncate(fd, (off_t)end) != 0 || ftruncate(fd, (off_t)s->cap) != 0 ||
               fsync(fd) != 0) {
        rc = sys_err("truncate", path);
    }
    free(path);
    return rc;
}

/*
 * Scans the segments at open: fills each one's size and max_index, repairs the last one's tail,
 * and replays the log into r (without the entries' data). Leaves ls->wfd open on the last one.
 */
static int segs_scan(struct cl_logstore *ls, struct replay *r)
{
    for (size_t i = 0; i < ls->nsegs; i++) {
        struct seg *s = &ls->segs[i];
        bool is_last = i + 1 == ls->nsegs, torn = false;
        char *path = seg_path(ls, s->num);
        struct stat st;
        size_t end = 0;
        int rc = 0;
        int fd = open(path, (is_last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0) {
            rc = sys_err("open", path);
            goto next;
        }
        s->cap = (uint64_t)st.st_size;
        if (st.st_size > 0) {
            void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) {
                rc = sys_err("map", path);
                goto next;
            }
            /* Zeros after the end matter only in the last segment: later batches go there. */
            rc = scan_seg(is_last ? fd : -1, m, (size_t)st.st_size, r, &s->max_index, &end, &torn);
            munmap(m, (size_t)st.st_size);
        }
        if (rc != 0) {
            kcp_log(KCP_LOG_ERROR, "cluster", "raft log: in %s", path);
            goto next;
        }
        s->size = end;
        if (torn && !is_last) {
            kcp_log(KCP_LOG_ERROR, "cluster",
                    "raft log: %s: damaged at offset %zu, and later segments follow", path, end);
            rc = KCP_EIO;
        } else if (is_last && (torn || end == 0)) {
            rc = seg_repair(ls, s, fd, end, torn);
            if (rc == 0 && end == 0) {
                close(fd);
                fd = -1;
            }
        }
        if (rc == 0 && is_last && fd >= 0) {
            ls->wfd = fd;
            fd = -1;
        }
    next:
        if (fd >= 0)
            close(fd);
        free(path);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- DIR/meta --------------------------------------------------------------------------- */

static void meta_free(struct cl_logstore *ls)
{
    for (size_t i = 0; i < ls->nmeta; i++) {
        free(ls->meta[i].name);
        free(ls->meta[i].val);
    }
    free(ls->meta);
    ls->meta = NULL;
    ls->nmeta = 0;
}

static struct meta_item *meta_find(const struct cl_logstore *ls, const char *name)
{
    for (size_t i = 0; i < ls->nmeta; i++)
        if (strcmp(ls->meta[i].name, name) == 0)
            return &ls->meta[i];
    return NULL;
}

static void put_u32(struct kcp_buf *b, uint32_t v)
{
    unsigned char x[4];
    le32(x, v);
    kcp_buf_append(b, x, 4);
}

/* DIR/meta's bytes with name set to val (NULL: the items as they are). */
static void meta_encode(const struct cl_logstore *ls, const char *name, const void *val, size_t len,
                        struct kcp_buf *out)
{
    bool found = false;
    kcp_buf_append(out, meta_magic, sizeof(meta_magic));
    size_t count_at = out->len;
    uint32_t count = 0;
    put_u32(out, 0);
    for (size_t i = 0; i <= ls->nmeta; i++) {
        const char *n;
        const void *v;
        size_t l;
        if (i < ls->nmeta) {
            n = ls->meta[i].name;
            v = ls->meta[i].val;
            l = ls->meta[i].len;
            if (name && strcmp(n, name) == 0) {
                v = val;
                l = len;
                found = true;
            }
        } else if (name && !found) {
            n = name;
            v = val;
            l = len;
        } else {
            break;
        }
        put_u32(out, (uint32_t)strlen(n));
        kcp_buf_puts(out, n);
        put_u32(out, (uint32_t)l);
        kcp_buf_append(out, v, l);
        count++;
    }
    le32((unsigned char *)out->data + count_at, count);
    put_u32(out, crc32c(0, out->data, out->len));
}

static int meta_decode(struct cl_logstore *ls, const unsigned char *p, size_t len)
{
    if (len < sizeof(meta_magic) + 8 || memcmp(p, meta_magic, sizeof(meta_magic)) != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: %s/meta: unknown format", ls->dir);
        return KCP_EIO;
    }
    if (crc32c(0, p, len - 4) != rd_le32(p + len - 4))
        return corrupt("meta file");
    size_t off = sizeof(meta_magic), body = len - 4;
    uint32_t count = rd_le32(p + off);
    off += 4;
    for (uint32_t i = 0; i < count; i++) {
        if (body - off < 4)
            return corrupt("meta file");
        size_t nl = rd_le32(p + off);
        off += 4;
        if (nl == 0 || nl > CL_LOGSTORE_META_NAME_MAX || body - off < nl + 4 ||
            memchr(p + off, 0, nl))
            return corrupt("meta file");
        const unsigned char *name = p + off;
        off += nl;
        size_t vl = rd_le32(p + off);
        off += 4;
        if (body - off < vl)
            return corrupt("meta file");
        ls->meta = kcp_realloc(ls->meta, (ls->nmeta + 1) * sizeof(*ls->meta));
        struct meta_item *it = &ls->meta[ls->nmeta++];
        it->name = kcp_strndup((const char *)name, nl);
        it->val = kcp_malloc(vl + 1);
        memcpy(it->val, p + off, vl);
        it->val[vl] = 0;
        it->len = vl;
        off += vl;
    }
    return off == body ? 0 : corrupt("meta file");
}

/* Replaces DIR/meta with name set to val, durable on return; then the items in memory too. */
static int meta_write(struct cl_logstore *ls, const char *name, const void *val, size_t len)
{
    struct kcp_buf b = KCP_BUF_INIT;
    char *path = kcp_sprintf("%s/meta", ls->dir);
    meta_encode(ls, name, val, len, &b);
    int rc = kcp_file_write_atomic(path, b.data, b.len, 0600);
    if (rc != 0)
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: write %s: %s", path, strerror(errno));
    free(path);
    kcp_buf_free(&b);
    if (rc != 0 || !name)
        return rc ? KCP_EIO : 0;
    struct meta_item *it = meta_find(ls, name);
    if (!it) {
        ls->meta = kcp_realloc(ls->meta, (ls->nmeta + 1) * sizeof(*ls->meta));
        it = &ls->meta[ls->nmeta++];
        it->name = kcp_strdup(name);
        it->val = NULL;
    }
    free(it->val);
    it->val = kcp_malloc(len + 1);
    if (len)
        memcpy(it->val, val, len);
    it->val[len] = 0;
    it->len = len;
    return 0;
}

/* Reads DIR/meta, or writes a fresh one where there is none and no log. */
static int meta_open(struct cl_logstore *ls)
{
    char *path = kcp_sprintf("%s/meta", ls->dir);
    char *data = NULL;
    size_t len = 0;
    int rc = kcp_file_read(path, META_MAX, &data, &len);
    if (rc == 0) {
        rc = meta_decode(ls, (const unsigned char *)data, len);
    } else if (rc == KCP_ENOTFOUND) {
        char *mdb = kcp_sprintf("%s/data.mdb", ls->dir);
        if (access(mdb, F_OK) == 0) {
            kcp_log(KCP_LOG_ERROR, "cluster", "raft log: %s holds an LMDB log (KCP_RAFT_LOG=lmdb)",
                    ls->dir);
            rc = KCP_EIO;
        } else if (ls->nsegs) {
            kcp_log(KCP_LOG_ERROR, "cluster", "raft log: %s has segments but no meta file",
                    ls->dir);
            rc = KCP_EIO;
        } else {
            rc = meta_write(ls, NULL, NULL, 0);
        }
        free(mdb);
    } else {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: cannot read %s", path);
        rc = KCP_EIO;
    }
    free(data);
    free(path);
    return rc;
}

/* The hard state DIR/meta holds (zero and seq 0 when never saved with sync). */
static int meta_hs(const struct cl_logstore *ls, struct kcp_raft_hard_state *hs, uint64_t *seq)
{
    const struct meta_item *it = meta_find(ls, "hard_state");
    memset(hs, 0, sizeof(*hs));
    *seq = 0;
    if (!it)
        return 0;
    if (it->len != HS_RECORD)
        return corrupt("hard state");
    hs->term = rd_le64(it->val);
    hs->vote = rd_le64(it->val + 8);
    hs->commit = rd_le64(it->val + 16);
    *seq = rd_le64(it->val + 24);
    return 0;
}

/* The newer of DIR/meta's hard state and the segments'. */
static int merged_hs(const struct cl_logstore *ls, const struct replay *r,
                     struct kcp_raft_hard_state *hs, uint64_t *seq)
{
    int rc = meta_hs(ls, hs, seq);
    if (rc == 0 && r->has_hs && r->hs_seq > *seq) {
        *hs = r->hs;
        *seq = r->hs_seq;
    }
    return rc;
}

/* ---- open ------------------------------------------------------------------------------- */

static void store_free(struct cl_logstore *ls)
{
    if (ls->wfd >= 0)
        close(ls->wfd);
    if (ls->dir_fd >= 0)
        close(ls->dir_fd);
    uv_mutex_destroy(&ls->lock);
    meta_free(ls);
    free(ls->segs);
    free(ls->dir);
    free(ls);
}

int cl_logstore_open_opts(struct cl_logstore **out, struct kcp_loop *loop, const char *dir,
                          const struct cl_logstore_options *opts)
{
    struct cl_logstore *ls = kcp_calloc(1, sizeof(*ls));
    struct replay r = {0};
    int rc;
    *out = NULL;
    ls->loop = loop;
    ls->dir = kcp_strdup(dir);
    ls->dir_fd = ls->wfd = -1;
    /* The options are LMDB's: map_size is taken as the segment size. */
    ls->seg_size = opts && opts->map_size ? opts->map_size : DEFAULT_SEG_SIZE;
    if (ls->seg_size < MIN_SEG_SIZE)
        ls->seg_size = MIN_SEG_SIZE;
    ls->seg_size = (ls->seg_size + 4095) & ~(size_t)4095;
    ls->pending_last = &ls->pending;
    if (uv_mutex_init(&ls->lock) != 0) {
        free(ls->dir);
        free(ls);
        return KCP_EIO;
    }
    if (kcp_mkdir_p(dir, 0700) != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: cannot create %s", dir);
        rc = KCP_EIO;
        goto done;
    }
    ls->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ls->dir_fd < 0) {
        rc = sys_err("open", dir);
        goto done;
    }
    /* One writer: LMDB's lock file allowed several; segments would be corrupted by two. */
    if (flock(ls->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = sys_err("lock (in use?)", dir);
        goto done;
    }
    if ((rc = segs_list(ls)) != 0 || (rc = meta_open(ls)) != 0 || (rc = segs_scan(ls, &r)) != 0 ||
        (rc = merged_hs(ls, &r, &ls->hs, &ls->hs_seq)) != 0)
        goto done;
    ls->last = r.started && r.count ? r.base + r.count : r.has_snap ? r.snap_index : 0;
    ls->w_last = ls->last;
    if (uv_idle_init(&loop->uv, &ls->kick) != 0) {
        rc = KCP_EIO;
        goto done;
    }
    ls->kick.data = ls;
    KCP_LOG_V(1, "cluster", "raft log %s opened: %zu segments, last index %llu, term %llu", dir,
              ls->nsegs, (unsigned long long)ls->last, (unsigned long long)ls->hs.term);
    *out = ls;
    ls = NULL;
done:
    replay_free(&r);
    if (ls)
        store_free(ls);
    return rc;
}

int cl_logstore_open(struct cl_logstore **out, struct kcp_loop *loop, const char *dir)
{
    return cl_logstore_open_opts(out, loop, dir, NULL);
}

/* ---- load ------------------------------------------------------------------------------- */

void cl_logstore_loaded_free(struct cl_logstore_loaded *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->entries[i].data.base);
    free(l->entries);
    memset(l, 0, sizeof(*l));
}

/* Replays the durable batches of every segment into r (lock held). */
static int load_segs(struct cl_logstore *ls, struct replay *r)
{
    for (size_t i = 0; i < ls->nsegs; i++) {
        const struct seg *s = &ls->segs[i];
        if (s->size == 0)
            continue;
        char *path = seg_path(ls, s->num);
        uint64_t max_index = 0;
        size_t end;
        bool torn;
        int rc = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        void *m = fd < 0 ? MAP_FAILED : mmap(NULL, (size_t)s->size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            rc = sys_err("read", path);
        } else {
            rc = scan_seg(-1, m, (size_t)s->size, r, &max_index, &end, &torn);
            if (rc == 0 && (torn || end != s->size)) {
                kcp_log(KCP_LOG_ERROR, "cluster", "raft log: %s changed under the store", path);
                rc = KCP_EIO;
            }
            munmap(m, (size_t)s->size);
        }
        if (fd >= 0)
            close(fd);
        free(path);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cl_logstore_load(struct cl_logstore *ls, struct cl_logstore_loaded *out)
{
    struct replay r = {.keep = true};
    uint64_t seq;
    memset(out, 0, sizeof(*out));
    uv_mutex_lock(&ls->lock);
    int rc = load_segs(ls, &r);
    uv_mutex_unlock(&ls->lock);
    if (rc == 0)
        rc = merged_hs(ls, &r, &out->hs, &seq);
    if (rc == 0 && r.has_snap) {
        out->has_snapshot = true;
        out->snap_index = r.snap_index;
        out->snap_term = r.snap_term;
        if (kcp_raft_config_decode(&out->snap_config, r.snap_config.data, r.snap_config.len) != 0)
            rc = corrupt("snapshot meta");
    }
    if (rc == 0 && r.count) {
        uint64_t first_max = out->has_snapshot ? out->snap_index + 1 : 1;
        if (r.e[0].index > first_max) {
            kcp_log(KCP_LOG_ERROR, "cluster",
                    "raft log: starts at %llu, after the snapshot at %llu",
                    (unsigned long long)r.e[0].index, (unsigned long long)out->snap_index);
            rc = KCP_EIO;
        } else {
            out->entries = r.e;
            out->n = (size_t)r.count;
            r.e = NULL;
            r.count = 0;
        }
    }
    replay_free(&r);
    if (rc != 0)
        cl_logstore_loaded_free(out);
    return rc;
}

/* ---- batches: the worker's side --------------------------------------------------------- */

/* An upper bound of the batch's bytes. */
static size_t batch_bound(const struct ls_batch *b)
{
    size_t n = rec_size(HS_DATA);
    for (const struct ls_op *op = b->head; op; op = op->next) {
        if (op->type == OP_COMPACT) {
            n += rec_size(8 + op->config.len);
        } else if (op->n == 0) {
            n += rec_size(0);
        } else {
            for (size_t i = 0; i < op->n; i++)
                n += rec_size(op->entries[i].data.len);
        }
    }
    return n;
}

struct encoded {
    unsigned char *buf;
    size_t len;
    uint64_t last;        /* w_last after the batch */
    uint64_t first_entry; /* index of its first entry record (0: none) */
    uint64_t max_index;   /* of its entry records */
    bool compacted;
    uint64_t removed; /* entries <= this are deleted by its snapshots */
};

/* The batch's records, in queue order, the last one marked. */
static void batch_encode(struct cl_logstore *ls, struct ls_batch *b, struct encoded *out)
{
    unsigned char *p, *rec = NULL;
    uint64_t last = ls->w_last;
    memset(out, 0, sizeof(*out));
    out->buf = p = kcp_malloc(batch_bound(b));
    for (const struct ls_op *op = b->head; op; op = op->next) {
        if (op->type == OP_COMPACT) {
            unsigned char upto[8];
            le64(upto, op->upto);
            rec = p;
            p = rec_put(p, T_SNAPSHOT, op->snap_index, op->snap_term, upto, 8, op->config.data,
                        op->config.len);
            out->compacted = true;
            if (op->upto >= last) {
                out->removed = UINT64_MAX; /* everything written before */
                last = op->snap_index;
            } else if (op->upto > out->removed) {
                out->removed = op->upto;
            }
            continue;
        }
        if (op->n == 0) {
            if (op->truncate_from && op->truncate_from <= last) {
                rec = p;
                p = rec_put(p, T_TRUNCATE, op->truncate_from, 0, NULL, 0, NULL, 0);
                last = op->truncate_from - 1;
            }
            continue;
        }
        /* The first entry's index says what it replaces (append checked it). */
        for (size_t i = 0; i < op->n; i++) {
            const struct kcp_raft_entry *e = &op->entries[i];
            rec = p;
            p = rec_put(p, (unsigned)e->type, e->index, e->term, e->data.base, e->data.len, NULL,
                        0);
            if (!out->first_entry)
                out->first_entry = e->index;
            if (e->index > out->max_index)
                out->max_index = e->index;
        }
        last = op->entries[op->n - 1].index;
        b->entries += op->n;
    }
    /* A batch with a snapshot carries the hard state too: see "Compaction" above. */
    if (b->has_hs || out->compacted) {
        unsigned char d[HS_DATA];
        le64(d, b->hs.vote);
        le64(d + 8, b->hs.commit);
        rec = p;
        p = rec_put(p, T_HARD_STATE, b->hs_seq, b->hs.term, d, HS_DATA, NULL, 0);
    }
    if (rec)
        rec_set_end(rec);
    out->len = (size_t)(p - out->buf);
    out->last = last;
}

/* Creates the segment the batch goes into; the worker's. */
static int seg_create(struct cl_logstore *ls, struct ls_batch *b, uint64_t num, size_t cap)
{
    char *path = seg_path(ls, num);
    int rc = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)cap) != 0 || fsync(ls->dir_fd) != 0) {
        b->what = fd < 0 ? "create" : "size";
        b->err = errno;
        rc = KCP_EIO;
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
    } else {
        struct seg s = {.num = num, .cap = cap};
        if (ls->wfd >= 0)
            close(ls->wfd);
        ls->wfd = fd;
        uv_mutex_lock(&ls->lock);
        segs_push(ls, &s);
        uv_mutex_unlock(&ls->lock);
    }
    free(path);
    return rc;
}

/* Deletes the segments, oldest first, that the batch's snapshots made useless; the worker's. */
static void segs_compact(struct cl_logstore *ls, uint64_t removed)
{
    size_t n = 0;
    /* Under the lock: a load never finds a segment of the table gone. */
    uv_mutex_lock(&ls->lock);
    /* Never the last: the snapshot record is there. */
    while (n + 1 < ls->nsegs && ls->segs[n].max_index <= removed) {
        char *path = seg_path(ls, ls->segs[n].num);
        int rc = unlink(path);
        if (rc != 0)
            kcp_log(KCP_LOG_WARN, "cluster", "raft log: cannot remove %s: %s", path,
                    strerror(errno));
        free(path);
        if (rc != 0)
            break;
        n++;
    }
    if (n) {
        memmove(ls->segs, ls->segs + n, (ls->nsegs - n) * sizeof(*ls->segs));
        ls->nsegs -= n;
    }
    uv_mutex_unlock(&ls->lock);
    /* Not needed for correctness: a segment that comes back is replayed, to the same log. */
    if (n)
        fsync(ls->dir_fd);
}

static bool write_all(int fd, const unsigned char *p, size_t len, uint64_t off)
{
    while (len) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return false;
        }
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return true;
}

static void batch_on_work(uv_work_t *work)
{
    struct ls_batch *b = work->data;
    struct cl_logstore *ls = b->ls;
    struct encoded enc;
    batch_encode(ls, b, &enc);
    b->changed = enc.len != 0;
    if (!b->changed) { /* a barrier, or a truncation past the end */
        free(enc.buf);
        return;
    }
    struct seg *cur = ls->nsegs ? &ls->segs[ls->nsegs - 1] : NULL;
    if (!cur || ls->wfd < 0 || cur->cap - cur->size < enc.len) {
        uint64_t num = enc.first_entry ? enc.first_entry : ls->w_last + 1;
        size_t cap = enc.len > ls->seg_size ? (enc.len + 4095) & ~(size_t)4095 : ls->seg_size;
        if (cur && num <= cur->num)
            num = cur->num + 1;
        if ((b->rc = seg_create(ls, b, num, cap)) != 0) {
            free(enc.buf);
            return;
        }
        cur = &ls->segs[ls->nsegs - 1];
    }
    bool written = write_all(ls->wfd, enc.buf, enc.len, cur->size);
    if (!written || fdatasync(ls->wfd) != 0) {
        b->what = written ? "sync" : "write";
        b->err = errno;
        b->rc = KCP_EIO;
        /* Best effort: what follows the durable end goes (open drops it otherwise). */
        if (ftruncate(ls->wfd, (off_t)cur->size) == 0 && ftruncate(ls->wfd, (off_t)cur->cap) == 0)
            fdatasync(ls->wfd);
        free(enc.buf);
        return;
    }
    free(enc.buf);
    uv_mutex_lock(&ls->lock);
    cur->size += enc.len;
    if (enc.max_index > cur->max_index)
        cur->max_index = enc.max_index;
    uv_mutex_unlock(&ls->lock);
    ls->w_last = enc.last;
    b->bytes = enc.len;
    if (enc.compacted)
        segs_compact(ls, enc.removed);
}

/* ---- batches: the loop's side ----------------------------------------------------------- */

static void op_free(struct ls_op *op)
{
    free(op->entries);
    kcp_buf_free(&op->config);
    free(op);
}

static void ops_finish(struct cl_logstore *ls, struct ls_op *op, int status)
{
    while (op) {
        struct ls_op *next = op->next;
        if (op->type == OP_APPEND)
            op->cb(ls, status, op->data);
        op_free(op);
        op = next;
    }
}

static void kick(struct cl_logstore *ls);

/* A write failed: KCP_EIO for batch_head, KCP_EUNAVAILABLE for the queue and from now on. */
static void store_fail(struct cl_logstore *ls, struct ls_op *batch_head)
{
    struct ls_op *pending = ls->pending;
    ls->failed = KCP_EIO;
    ls->pending = NULL;
    ls->pending_last = &ls->pending;
    ls->pending_appends = 0;
    ls->hs_dirty = false;
    ops_finish(ls, batch_head, KCP_EIO);
    ops_finish(ls, pending, KCP_EUNAVAILABLE);
    kick(ls); /* a close waiting for the queue can finish */
}

static bool batch_wanted(const struct cl_logstore *ls)
{
    if (ls->failed || ls->inflight)
        return false;
    /* Compactions and unsynced hard states ride with appends; a close flushes them. */
    return ls->pending_appends || (ls->closing && (ls->pending || ls->hs_dirty));
}

static void batch_on_done(uv_work_t *work, int status);

static void batch_start(struct cl_logstore *ls)
{
    struct ls_batch *b = kcp_calloc(1, sizeof(*b));
    struct ls_op **tail = &ls->pending;
    size_t bytes = 0;
    b->ls = ls;
    b->head = ls->pending;
    while (*tail && bytes < BATCH_BYTES) {
        bytes += (*tail)->bytes;
        if ((*tail)->type == OP_APPEND)
            ls->pending_appends--;
        tail = &(*tail)->next;
    }
    /* Split the queue after the batch's last op. */
    ls->pending = *tail;
    *tail = NULL;
    if (!ls->pending)
        ls->pending_last = &ls->pending;
    /* The latest hard state: written if unsynced, or with a snapshot (see batch_encode). */
    b->has_hs = ls->hs_dirty;
    b->hs = ls->hs;
    b->hs_seq = ls->hs_seq;
    ls->hs_dirty = false;
    b->work.data = b;
    ls->inflight = b;
    int rc = uv_queue_work(&ls->loop->uv, &b->work, batch_on_work, batch_on_done);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: queue work: %s", uv_strerror(rc));
        ls->inflight = NULL;
        store_fail(ls, b->head);
        free(b);
    }
}

static void batch_on_done(uv_work_t *work, int status)
{
    struct ls_batch *b = work->data;
    struct cl_logstore *ls = b->ls;
    ls->inflight = NULL;
    if (b->rc != 0 || status != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: %s: %s; writes stopped",
                b->rc ? b->what : "batch", b->rc ? strerror(b->err) : "cancelled");
        store_fail(ls, b->head);
        free(b);
        return;
    }
    ls->st.batches++;
    if (b->changed) /* a batch that writes nothing does not sync */
        ls->st.fsyncs++;
    ls->st.entries_written += b->entries;
    ls->st.bytes_written += b->bytes;
    /* Callbacks may queue more: that waits for the batch started below. */
    ops_finish(ls, b->head, 0);
    free(b);
    if (batch_wanted(ls))
        batch_start(ls); /* what arrived meanwhile is the next batch, at once */
    else
        kick(ls);
}

/* ---- close ------------------------------------------------------------------------------ */

static void kick_on_close(uv_handle_t *h)
{
    struct cl_logstore *ls = h->data;
    void (*cb)(void *) = ls->close_cb;
    void *data = ls->close_data;
    store_free(ls);
    if (cb)
        cb(data);
}

static void kick_on_idle(uv_idle_t *idle)
{
    struct cl_logstore *ls = idle->data;
    uv_idle_stop(idle);
    ls->kick_active = false;
    if (batch_wanted(ls))
        batch_start(ls);
    if (ls->closing && !ls->inflight && !ls->pending && !uv_is_closing((uv_handle_t *)idle))
        uv_close((uv_handle_t *)idle, kick_on_close);
}

static void kick(struct cl_logstore *ls)
{
    if (ls->kick_active || uv_is_closing((uv_handle_t *)&ls->kick))
        return;
    ls->kick_active = true;
    uv_idle_start(&ls->kick, kick_on_idle);
}

void cl_logstore_close(struct cl_logstore *ls, void (*cb)(void *data), void *data)
{
    if (ls->closing)
        return;
    ls->closing = true;
    ls->close_cb = cb;
    ls->close_data = data;
    /* Never synchronously: the caller may be inside one of our callbacks. */
    kick(ls);
}

/* ---- queueing --------------------------------------------------------------------------- */

static int writable(const struct cl_logstore *ls)
{
    if (ls->closing)
        return KCP_ECLOSED;
    return ls->failed ? KCP_EUNAVAILABLE : 0;
}

static void enqueue(struct cl_logstore *ls, struct ls_op *op)
{
    *ls->pending_last = op;
    ls->pending_last = &op->next;
}

int cl_logstore_append(struct cl_logstore *ls, uint64_t truncate_from,
                       const struct kcp_raft_entry *entries, size_t n, cl_logstore_cb cb,
                       void *data)
{
    int rc = writable(ls);
    if (rc != 0)
        return rc;
    if (!cb || (n && !entries))
        return KCP_EINVAL;
    uint64_t last = ls->last;
    if (truncate_from && truncate_from - 1 < last)
        last = truncate_from - 1;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const struct kcp_raft_entry *e = &entries[i];
        if (e->index != last + 1 + i || !entry_type_valid(e->type) ||
            (e->data.len && !e->data.base) || e->data.len > REC_DATA_MAX ||
            e->data.len > SIZE_MAX / 2 - bytes)
            return KCP_EINVAL;
        bytes += e->data.len;
    }
    struct ls_op *op = kcp_calloc(1, sizeof(*op));
    op->type = OP_APPEND;
    op->truncate_from = truncate_from;
    op->n = n;
    op->bytes = bytes;
    op->cb = cb;
    op->data = data;
    if (n) {
        op->entries = kcp_malloc(n * sizeof(*entries) + bytes);
        unsigned char *p = (unsigned char *)(op->entries + n);
        for (size_t i = 0; i < n; i++) {
            op->entries[i] = entries[i];
            if (entries[i].data.len) {
                memcpy(p, entries[i].data.base, entries[i].data.len);
                op->entries[i].data.base = p;
                p += entries[i].data.len;
            }
        }
    }
    ls->last = n ? entries[n - 1].index : last;
    enqueue(ls, op);
    ls->pending_appends++;
    kick(ls);
    return 0;
}

int cl_logstore_compact(struct cl_logstore *ls, uint64_t snap_index, uint64_t snap_term,
                        const struct kcp_raft_config *cfg, uint64_t upto)
{
    int rc = writable(ls);
    if (rc != 0)
        return rc;
    if (!cfg || (upto > snap_index && upto < ls->last))
        return KCP_EINVAL;
    struct ls_op *op = kcp_calloc(1, sizeof(*op));
    op->type = OP_COMPACT;
    op->snap_index = snap_index;
    op->snap_term = snap_term;
    op->upto = upto;
    kcp_raft_config_encode(cfg, &op->config);
    if (upto >= ls->last)
        ls->last = snap_index; /* the log is empty: the next entry follows the snapshot */
    enqueue(ls, op);
    return 0;
}

/* ---- synchronous writes on the loop thread ---------------------------------------------- */

/* Sets one meta item, durable on return (DIR/meta rewritten; no wait for a batch). */
static int put_sync(struct cl_logstore *ls, const char *name, const void *val, size_t len)
{
    int rc = meta_write(ls, name, val, len);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "cluster", "raft log: write %s failed; writes stopped", name);
        store_fail(ls, NULL);
        return KCP_EIO;
    }
    ls->st.fsyncs++;
    ls->st.bytes_written += strlen(name) + len;
    return 0;
}

static int get_copy(struct cl_logstore *ls, const char *name, void **out, size_t *out_len)
{
    const struct meta_item *it = meta_find(ls, name);
    *out = NULL;
    *out_len = 0;
    if (!it)
        return KCP_ENOTFOUND;
    char *copy = kcp_malloc(it->len + 1);
    memcpy(copy, it->val, it->len);
    copy[it->len] = '\0';
    *out = copy;
    *out_len = it->len;
    return 0;
}

int cl_logstore_save_hard_state(struct cl_logstore *ls, const struct kcp_raft_hard_state *hs,
                                bool sync)
{
    unsigned char rec[HS_RECORD];
    int rc = writable(ls);
    if (rc != 0)
        return rc;
    ls->hs = *hs;
    ls->hs_seq++;
    ls->hs_dirty = !sync;
    if (!sync)
        return 0;
    le64(rec, hs->term);
    le64(rec + 8, hs->vote);
    le64(rec + 16, hs->commit);
    le64(rec + 24, ls->hs_seq);
    return put_sync(ls, "hard_state", rec, sizeof(rec));
}

static bool name_valid(const char *name)
{
    size_t len = name ? strnlen(name, CL_LOGSTORE_META_NAME_MAX + 1) : 0;
    if (len == 0 || len > CL_LOGSTORE_META_NAME_MAX)
        return false;
    for (size_t i = 0; i < sizeof(reserved_names) / sizeof(reserved_names[0]); i++)
        if (strcmp(name, reserved_names[i]) == 0)
            return false;
    return true;
}

int cl_logstore_meta_put(struct cl_logstore *ls, const char *name, const void *val, size_t len)
{
    int rc = writable(ls);
    if (rc != 0)
        return rc;
    if (!name_valid(name) || (len && !val))
        return KCP_EINVAL;
    if (len > CL_LOGSTORE_META_VALUE_MAX)
        return KCP_ETOOLARGE;
    return put_sync(ls, name, len ? val : "", len);
}

int cl_logstore_meta_get(struct cl_logstore *ls, const char *name, void **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!name_valid(name))
        return KCP_EINVAL;
    return get_copy(ls, name, out, out_len);
}

int cl_logstore_id_set(struct cl_logstore *ls, uint64_t id)
{
    unsigned char rec[8];
    int rc = writable(ls);
    if (rc != 0)
        return rc;
    le64(rec, id);
    return put_sync(ls, "id", rec, sizeof(rec));
}

int cl_logstore_id_get(struct cl_logstore *ls, uint64_t *out)
{
    void *val = NULL;
    size_t len = 0;
    *out = 0;
    int rc = get_copy(ls, "id", &val, &len);
    if (rc == 0 && len != 8)
        rc = corrupt("node id");
    if (rc == 0)
        *out = rd_le64(val);
    free(val);
    return rc;
}

void cl_logstore_stats(const struct cl_logstore *ls, struct cl_logstore_stats *out)
{
    *out = ls->st;
}
