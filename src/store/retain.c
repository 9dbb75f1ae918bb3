/* Retained entries: applied entries kept in LMDB until the history module has recorded them. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * Layout (docs/STORE.md, "Retained entries"):
 *   entries: u64 big-endian index (so LMDB's order is index order and appends are cheap)
 *            -> u8 record version (2) | u64 Raft term | u32 nops | nops x (u8 applied, u8 -err)
 *               | entry bytes  (version 1, without the term, is still read: term 0)
 *   meta:    "retain_floor" -> u64: every entry above it is in `entries` (until trimmed)
 * Written in the batch's own transaction: the entry, its objects and its retained copy become
 * durable together, with the one sync the batch already pays.
 */
#define RETAIN_VERSION 2
#define RETAIN_HEAD 13 /* version, term, nops */
#define TRIM_PER_BATCH 10000 /* keeps one transaction's deletions bounded */

void store_be64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t rd_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint64_t rd_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int put_floor(struct kcp_store *s, MDB_txn *txn, uint64_t floor)
{
    unsigned char buf[8];
    MDB_val k = {12, "retain_floor"}, v = {8, buf};
    put_le64(buf, floor);
    return mdb_put(txn, s->dbi_meta, &k, &v, 0);
}

static int get_floor(struct kcp_store *s, MDB_txn *txn, uint64_t *out)
{
    MDB_val k = {12, "retain_floor"}, v;
    int rc = mdb_get(txn, s->dbi_meta, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        *out = rd_le64(v.mv_data);
    return rc == 0 && v.mv_size != 8 ? MDB_CORRUPTED : rc;
}

int store_retain_open(struct kcp_store *s, MDB_txn *txn)
{
    uint64_t floor = 0;
    int rc = get_floor(s, txn, &floor);
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto fail;
    if (s->opts.retain_entries) {
        /* Retention starts now: entries applied before this open were never kept. */
        if (rc == MDB_NOTFOUND && (rc = put_floor(s, txn, s->durable)) != 0)
            goto fail;
        return 0;
    }
    /* Retention off: what was kept would leave a hole if it were turned on again later. */
    if (rc == 0) {
        MDB_val k = {12, "retain_floor"};
        if ((rc = mdb_del(txn, s->dbi_meta, &k, NULL)) != 0 ||
            (rc = mdb_drop(txn, s->dbi_entries, 0)) != 0)
            goto fail;
    }
    return 0;
fail:
    kcp_log(KCP_LOG_ERROR, "store", "lmdb retained entries: %s", mdb_strerror(rc));
    return KCP_EIO;
}

static int trim(struct kcp_store *s, MDB_txn *txn, uint64_t upto)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t floor = 0;
    int rc = get_floor(s, txn, &floor);
    if (rc != 0 || upto <= floor)
        return rc == MDB_NOTFOUND ? 0 : rc;
    if ((rc = mdb_cursor_open(txn, s->dbi_entries, &cur)) != 0)
        return rc;
    uint64_t last = floor;
    int n = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < TRIM_PER_BATCH;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), n++) {
        uint64_t idx = k.mv_size == 8 ? rd_be64(k.mv_data) : 0;
        if (idx > upto)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            goto done;
        last = idx;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto done;
    /* Past the per-batch bound the floor stops at the last deleted entry; the rest next time. */
    rc = put_floor(s, txn, n < TRIM_PER_BATCH ? upto : last);
done:
    mdb_cursor_close(cur);
    return rc;
}

int store_retain_write(struct kcp_store *s, MDB_txn *txn, struct store_batch *b)
{
    MDB_val k, v;
    unsigned char key[8];
    int rc;
    if (!s->opts.retain_entries)
        return 0;
    for (struct store_applied *a = b->head; a; a = a->next) {
        size_t n = a->result.nops;
        store_be64(key, a->index);
        k.mv_data = key;
        k.mv_size = 8;
        v.mv_size = RETAIN_HEAD + 2 * n + a->len;
        if ((rc = mdb_put(txn, s->dbi_entries, &k, &v, MDB_RESERVE | MDB_APPEND)) != 0)
            return rc;
        unsigned char *p = v.mv_data;
        p[0] = RETAIN_VERSION;
        put_le64(p + 1, a->result.term);
        for (int i = 0; i < 4; i++)
            p[9 + i] = (unsigned char)((uint32_t)n >> (8 * i));
        for (size_t i = 0; i < n; i++) {
            p[RETAIN_HEAD + 2 * i] = a->ops[i].applied;
            p[RETAIN_HEAD + 1 + 2 * i] = (unsigned char)(-a->ops[i].err);
        }
        memcpy(p + RETAIN_HEAD + 2 * n, a->bytes, a->len);
        b->bytes += 8 + v.mv_size;
    }
    return b->trim_to ? trim(s, txn, b->trim_to) : 0;
}

int store_retain_reset(struct kcp_store *s, MDB_txn *txn, uint64_t floor)
{
    int rc;
    if (!s->opts.retain_entries)
        return 0; /* dropped at open already */
    if ((rc = mdb_drop(txn, s->dbi_entries, 0)) != 0)
        return rc;
    return put_floor(s, txn, floor);
}

void kcp_store_trim_retained(struct kcp_store *s, uint64_t upto)
{
    if (upto > s->trim_to)
        s->trim_to = upto;
}

/* One published entry from memory, as the table would give it (err and applied only). */
static int retained_mem(struct store_applied *a, kcp_store_retained_cb cb, void *ctx,
                        struct kcp_store_op_result **ops, size_t *ops_cap)
{
    size_t n = a->result.nops;
    if (n > *ops_cap) {
        *ops_cap = n;
        *ops = kcp_realloc(*ops, n * sizeof(**ops));
    }
    struct kcp_store_result res = a->result;
    for (size_t i = 0; i < n; i++)
        (*ops)[i] =
            (struct kcp_store_op_result){.err = a->ops[i].err, .applied = a->ops[i].applied};
    res.ops = *ops;
    return cb(ctx, a->index, a->bytes, a->len, &res);
}

/*
 * Deferred durability: the entries after the table's come from the batch being written and the
 * unsynced queue (index order, both still ours on the loop thread; the worker only reads them).
 */
static int retained_from_memory(struct kcp_store *s, size_t limit, size_t n,
                                kcp_store_retained_cb cb, void *ctx, uint64_t *last,
                                struct kcp_store_op_result **ops, size_t *ops_cap)
{
    struct store_applied *lists[2] = {
        s->inflight && s->inflight->deferred ? s->inflight->head : NULL, s->unsynced};
    for (int l = 0; l < 2; l++)
        for (struct store_applied *a = lists[l]; a && (!limit || n < limit); a = a->next) {
            if (a->index <= *last)
                continue;
            if (a->index > s->durable)
                return 0;
            int rc = retained_mem(a, cb, ctx, ops, ops_cap);
            if (rc != 0)
                return rc;
            *last = a->index;
            n++;
        }
    return 0;
}

int kcp_store_retained(struct kcp_store *s, uint64_t after, size_t limit, kcp_store_retained_cb cb,
                       void *ctx, uint64_t *out_last)
{
    uint64_t last = after;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    unsigned char key[8];
    struct kcp_store_op_result *ops = NULL;
    size_t ops_cap = 0, n = 0;
    uint64_t floor = 0;
    if (out_last)
        *out_last = after;
    if (!s->opts.retain_entries)
        return KCP_EINVAL;
    uv_mutex_lock(&s->resize_lock);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        rc = KCP_EIO;
        goto done;
    }
    if ((rc = get_floor(s, txn, &floor)) != 0) {
        rc = KCP_EIO;
        goto done;
    }
    if (after < floor) {
        rc = KCP_EGONE;
        goto done;
    }
    if (mdb_cursor_open(txn, s->dbi_entries, &cur) != 0) {
        rc = KCP_EIO;
        goto done;
    }
    store_be64(key, after + 1);
    k.mv_data = key;
    k.mv_size = 8;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && (!limit || n < limit);
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), n++) {
        const unsigned char *p = v.mv_data;
        uint64_t idx = k.mv_size == 8 ? rd_be64(k.mv_data) : 0;
        if (idx > s->durable)
            break; /* committed by the worker, not yet published: the hook will deliver it */
        uint32_t nops = 0;
        uint64_t term = 0;
        size_t head = v.mv_size >= 1 && p[0] == 1 ? 5 : RETAIN_HEAD;
        if (v.mv_size >= head) {
            const unsigned char *q = p + head - 4;
            nops = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
            if (head == RETAIN_HEAD)
                term = rd_le64(p + 1);
        }
        if (k.mv_size != 8 || v.mv_size < head || (p[0] != 1 && p[0] != RETAIN_VERSION) ||
            nops > KCP_STORE_MAX_OPS || v.mv_size < head + 2 * (size_t)nops) {
            kcp_log(KCP_LOG_ERROR, "store", "corrupt retained entry %llu", (unsigned long long)idx);
            rc = KCP_EIO;
            goto done;
        }
        if (nops > ops_cap) {
            ops_cap = nops;
            ops = kcp_realloc(ops, ops_cap * sizeof(*ops));
        }
        struct kcp_store_result res = {.index = idx, .term = term, .nops = nops, .ops = ops};
        for (uint32_t i = 0; i < nops; i++) {
            ops[i] = (struct kcp_store_op_result){.applied = p[head + 2 * i] != 0,
                                                  .err = -(int)p[head + 1 + 2 * i]};
            if (!res.err && ops[i].err)
                res.err = ops[i].err;
        }
        if (!nops)
            res.err = KCP_EBADREQUEST;
        size_t off = head + 2 * (size_t)nops;
        if ((rc = cb(ctx, idx, p + off, v.mv_size - off, &res)) != 0)
            goto done;
        last = idx;
        if (out_last)
            *out_last = idx;
    }
    rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : KCP_EIO;
    if (rc == 0 && (!limit || n < limit)) {
        rc = retained_from_memory(s, limit, n, cb, ctx, &last, &ops, &ops_cap);
        if (out_last)
            *out_last = last;
    }
done:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    uv_mutex_unlock(&s->resize_lock);
    free(ops);
    return rc;
}
