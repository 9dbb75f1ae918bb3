/* LMDB: the environment, the records of the objects and meta databases, loading, batch writes. */
#include "store_int.h"

#include <fcntl.h>
#include <string.h>

/*
 * Layout (docs/STORE.md): DIR/data.mdb and DIR/lock.mdb, mode 0600.
 *   objects: key -> u8 record version (1) | u64 mod revision | u64 create revision | JSON text
 *   meta:    "format" -> u32 1; "applied" -> u64 index of the last applied entry
 *   entries: retained entries (retain.c), only with opts.retain_entries
 * Integers are little-endian. Both databases change in the same transaction, so the applied
 * index and the objects always agree, and resourceVersion stays monotonic across restarts.
 */
#define RECORD_VERSION 1
#define FORMAT_VERSION 1

static void le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int lmdb_err(const char *what, int rc)
{
    kcp_log(KCP_LOG_ERROR, "store", "lmdb %s: %s", what, mdb_strerror(rc));
    return KCP_EIO;
}

/* Reads the meta records, writing the format on a fresh store. */
static int meta_init(struct kcp_store *s)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    unsigned char buf[8];
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        return lmdb_err("begin", rc);
    if ((rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &s->dbi_objects)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->dbi_meta)) != 0 ||
        (rc = mdb_dbi_open(txn, "entries", MDB_CREATE, &s->dbi_entries)) != 0) {
        rc = lmdb_err("open databases", rc);
        goto done;
    }
    k.mv_data = "format";
    k.mv_size = 6;
    rc = mdb_get(txn, s->dbi_meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        buf[0] = FORMAT_VERSION;
        buf[1] = buf[2] = buf[3] = 0;
        v.mv_data = buf;
        v.mv_size = 4;
        if ((rc = mdb_put(txn, s->dbi_meta, &k, &v, 0)) != 0) {
            rc = lmdb_err("put format", rc);
            goto done;
        }
    } else if (rc != 0) {
        rc = lmdb_err("get format", rc);
        goto done;
    } else if (v.mv_size != 4 || ((unsigned char *)v.mv_data)[0] != FORMAT_VERSION) {
        kcp_log(KCP_LOG_ERROR, "store", "unknown store format");
        rc = KCP_EIO;
        goto done;
    }
    k.mv_data = "applied";
    k.mv_size = 7;
    rc = mdb_get(txn, s->dbi_meta, &k, &v);
    if (rc == 0 && v.mv_size == 8) {
        s->durable = rd64(v.mv_data);
    } else if (rc == MDB_NOTFOUND) {
        s->durable = 0;
    } else {
        rc = rc ? lmdb_err("get applied", rc) : KCP_EIO;
        goto done;
    }
    if ((rc = store_retain_open(s, txn)) != 0)
        goto done;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        rc = lmdb_err("commit", rc);
done:
    if (txn)
        mdb_txn_abort(txn);
    return rc;
}

/* Every object into the cache: reads are served from memory from then on. */
static int load_objects(struct kcp_store *s)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return lmdb_err("begin", rc);
    if ((rc = mdb_cursor_open(txn, s->dbi_objects, &cur)) != 0) {
        rc = lmdb_err("cursor", rc);
        goto done;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *r = v.mv_data;
        struct kcp_obj *obj = NULL;
        if (v.mv_size < STORE_RECORD_HEADER || r[0] != RECORD_VERSION || k.mv_size == 0 ||
            k.mv_size > KCP_STORE_MAX_KEY ||
            store_obj_load(&obj, k.mv_data, k.mv_size, (const char *)r + STORE_RECORD_HEADER,
                           v.mv_size - STORE_RECORD_HEADER, rd64(r + 1), rd64(r + 9)) != 0) {
            kcp_log(KCP_LOG_ERROR, "store", "corrupt record for key %.*s", (int)k.mv_size,
                    (const char *)k.mv_data);
            rc = KCP_EIO;
            goto done;
        }
        store_map_put(&s->cache, obj->key, obj->key_len, obj, 0);
    }
    rc = rc == MDB_NOTFOUND ? 0 : lmdb_err("cursor get", rc);
done:
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

int store_lmdb_open(struct kcp_store *s, const char *dir)
{
    MDB_envinfo info;
    int rc = kcp_mkdir_p(dir, 0700);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "store", "cannot create %s", dir);
        return rc;
    }
    if ((rc = mdb_env_create(&s->env)) != 0)
        return lmdb_err("env create", rc);
    if ((rc = mdb_env_set_maxdbs(s->env, 4)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, s->opts.map_size)) != 0)
        return lmdb_err("env setup", rc);
    /* MDB_NOTLS: read transactions are not tied to threads (batches commit on the work pool). */
    if ((rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600)) != 0) {
        kcp_log(KCP_LOG_ERROR, "store", "lmdb open %s: %s", dir, mdb_strerror(rc));
        return KCP_EIO;
    }
    /* LMDB 0.9.24 opens data.mdb without O_CLOEXEC: a child process must not inherit it. */
    mdb_filehandle_t fd;
    if (mdb_env_get_fd(s->env, &fd) == 0)
        fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    if (mdb_env_get_maxkeysize(s->env) < KCP_STORE_MAX_KEY) {
        kcp_log(KCP_LOG_ERROR, "store", "lmdb built with keys under %d bytes", KCP_STORE_MAX_KEY);
        return KCP_EIO;
    }
    mdb_env_info(s->env, &info);
    s->map_size = info.me_mapsize;
    if ((rc = meta_init(s)) != 0)
        return rc;
    return load_objects(s);
}

void store_lmdb_close(struct kcp_store *s)
{
    if (s->env)
        mdb_env_close(s->env);
    s->env = NULL;
}

int store_lmdb_put_object(struct kcp_store *s, MDB_txn *txn, const struct kcp_obj *obj,
                          unsigned flags, uint64_t *bytes)
{
    MDB_val k = {obj->key_len, (void *)obj->key}, v;
    /* MDB_RESERVE: the record is written in place, no intermediate copy. */
    v.mv_size = STORE_RECORD_HEADER + obj->json_len;
    int rc = mdb_put(txn, s->dbi_objects, &k, &v, flags | MDB_RESERVE);
    if (rc != 0)
        return rc;
    unsigned char *p = v.mv_data;
    p[0] = RECORD_VERSION;
    le64(p + 1, obj->mod_revision);
    le64(p + 9, obj->create_revision);
    memcpy(p + STORE_RECORD_HEADER, obj->json, obj->json_len);
    *bytes += k.mv_size + v.mv_size;
    return 0;
}

int store_lmdb_put_applied(struct kcp_store *s, MDB_txn *txn, uint64_t index, uint64_t *bytes)
{
    unsigned char idx[8];
    MDB_val k = {7, "applied"}, v = {8, idx};
    le64(idx, index);
    *bytes += 15;
    return mdb_put(txn, s->dbi_meta, &k, &v, 0);
}

static int write_entries(struct kcp_store *s, MDB_txn *txn, struct store_batch *b)
{
    MDB_val k;
    int rc;
    b->bytes = 0;
    for (struct store_applied *a = b->head; a; a = a->next) {
        for (size_t i = 0; i < a->result.nops; i++) {
            const struct kcp_store_op_result *r = &a->ops[i];
            if (!r->applied)
                continue;
            if (a->entry.ops[i].type == KCP_STORE_DELETE) {
                k.mv_data = (void *)r->obj->key;
                k.mv_size = r->obj->key_len;
                rc = mdb_del(txn, s->dbi_objects, &k, NULL);
                if (rc != 0 && rc != MDB_NOTFOUND)
                    return rc;
                b->bytes += k.mv_size;
                continue;
            }
            if ((rc = store_lmdb_put_object(s, txn, r->obj, 0, &b->bytes)) != 0)
                return rc;
        }
    }
    if ((rc = store_lmdb_put_applied(s, txn, b->last_index, &b->bytes)) != 0)
        return rc;
    return store_retain_write(s, txn, b);
}

int store_lmdb_write(struct kcp_store *s, struct store_batch *b)
{
    for (;;) {
        MDB_txn *txn = NULL;
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc != 0)
            return rc;
        rc = write_entries(s, txn, b);
        if (rc == 0)
            rc = mdb_txn_commit(txn); /* durable on return: LMDB syncs unless told not to */
        else
            mdb_txn_abort(txn);
        /* A full map grows (no other transaction is open: the loop thread's retained reads
         * hold resize_lock, and an install never overlaps a batch), then the whole batch is
         * written again. */
        if (rc == MDB_MAP_FULL && b->map_size * 2 <= s->opts.max_map_size) {
            uv_mutex_lock(&s->resize_lock);
            int grown = mdb_env_set_mapsize(s->env, b->map_size * 2);
            uv_mutex_unlock(&s->resize_lock);
            if (grown != 0)
                return rc;
            b->map_size *= 2;
            continue;
        }
        return rc;
    }
}
