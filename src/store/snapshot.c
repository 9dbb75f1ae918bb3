/* Snapshots: the objects at a revision written to a file, and a store replaced by such a file. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Format, version 1, little-endian (docs/STORE.md, "Snapshots"):
 *   header   8 magic "KCPSNAP1" | u64 revision | u64 object count
 *   object   u32 key length | u32 value length | u64 mod revision | u64 create revision | key |
 *            value (the stored JSON text, metadata.resourceVersion = mod revision); in key order
 *   trailer  u32 CRC-32C (the entry codec's) of every byte before it
 * It is the state machine Raft ships to a follower, so install trusts nothing in it: every length
 * is checked against the bytes left before it is used, and the whole file is validated inside an
 * uncommitted transaction and a private cache, so a bad file changes nothing.
 */
#define SNAP_MAGIC "KCPSNAP1"
#define SNAP_HEADER 24
#define SNAP_RECORD 24
#define SNAP_TRAILER 4
#define SNAP_BUFFER (256u << 10) /* stdio buffer: large sequential writes and reads */
/* A stored value is an entry's value plus its stamped resourceVersion: never past this. */
#define SNAP_MAX_VALUE (KCP_STORE_MAX_ENTRY + 4096u)

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

bool kcp_store_idle(const struct kcp_store *s)
{
    return !s->pending && !s->inflight && !s->unsynced;
}

void kcp_store_set_install_hook(struct kcp_store *s, kcp_store_install_cb cb, void *data)
{
    s->install_hook = cb;
    s->install_data = data;
}

/* ---- write ------------------------------------------------------------------------------ */

struct snap_out {
    FILE *f;
    uint32_t crc;
    uint64_t bytes;
    uint64_t count;
    bool err;
};

static void emit(struct snap_out *o, const void *p, size_t n)
{
    if (o->err || n == 0)
        return;
    o->crc = store_crc32c(o->crc, p, n);
    if (fwrite(p, 1, n, o->f) != n)
        o->err = true;
    o->bytes += n;
}

static int count_on_obj(void *ctx, const struct kcp_obj *obj)
{
    (void)obj;
    (*(uint64_t *)ctx)++;
    return 0;
}

static int write_on_obj(void *ctx, const struct kcp_obj *obj)
{
    struct snap_out *o = ctx;
    unsigned char r[SNAP_RECORD];
    if (obj->json_len > UINT32_MAX)
        return KCP_EIO;
    put32(r, (uint32_t)obj->key_len);
    put32(r + 4, (uint32_t)obj->json_len);
    put64(r + 8, obj->mod_revision);
    put64(r + 16, obj->create_revision);
    emit(o, r, SNAP_RECORD);
    emit(o, obj->key, obj->key_len);
    emit(o, obj->json, obj->json_len);
    o->count++;
    return o->err ? KCP_EIO : 0;
}

/* fsync of the directory holding path, so that the rename itself is durable. */
static int sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir =
        slash ? kcp_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : kcp_strdup(".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : KCP_EIO;
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

int kcp_store_snapshot_write(struct kcp_store *s, uint64_t revision, const char *path,
                             uint64_t *out_bytes)
{
    struct snap_out o = {0};
    struct kcp_store_list_result res;
    unsigned char h[SNAP_HEADER];
    uint64_t count = 0;
    char *tmp = NULL;
    int fd = -1, rc;
    if (out_bytes)
        *out_bytes = 0;
    /* Two walks of the same state (nothing changes in between: this runs on the loop thread),
     * so the header can carry the count without holding the objects. */
    if ((rc = kcp_store_list(s, "", 0, revision, NULL, 0, 0, count_on_obj, &count, &res)) != 0)
        return rc;
    revision = res.revision;
    tmp = kcp_sprintf("%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || !(o.f = fdopen(fd, "wb"))) {
        kcp_log(KCP_LOG_ERROR, "store", "snapshot %s: %s", tmp, strerror(errno));
        rc = KCP_EIO;
        goto done;
    }
    fd = -1; /* the FILE owns it */
    setvbuf(o.f, NULL, _IOFBF, SNAP_BUFFER);
    memcpy(h, SNAP_MAGIC, 8);
    put64(h + 8, revision);
    put64(h + 16, count);
    emit(&o, h, SNAP_HEADER);
    rc = kcp_store_list(s, "", 0, revision, NULL, 0, 0, write_on_obj, &o, &res);
    if (rc == 0 && o.count != count)
        rc = KCP_EIO; /* cannot happen: the state did not change between the walks */
    unsigned char t[SNAP_TRAILER];
    put32(t, o.crc);
    if (!o.err && fwrite(t, 1, SNAP_TRAILER, o.f) != SNAP_TRAILER)
        o.err = true;
    o.bytes += SNAP_TRAILER;
    if (o.err || fflush(o.f) != 0 || fsync(fileno(o.f)) != 0) {
        kcp_log(KCP_LOG_ERROR, "store", "snapshot %s: %s", tmp, strerror(errno));
        rc = KCP_EIO;
    }
    if (fclose(o.f) != 0 && rc == 0) {
        kcp_log(KCP_LOG_ERROR, "store", "snapshot %s: %s", tmp, strerror(errno));
        rc = KCP_EIO;
    }
    o.f = NULL;
    if (rc != 0)
        goto done;
    if (rename(tmp, path) != 0) {
        kcp_log(KCP_LOG_ERROR, "store", "snapshot: rename to %s: %s", path, strerror(errno));
        rc = KCP_EIO;
        goto done;
    }
    if ((rc = sync_dir(path)) != 0) {
        /* path holds the whole snapshot; only the rename's durability is in doubt. */
        kcp_log(KCP_LOG_ERROR, "store", "snapshot: sync of the directory of %s: %s", path,
                strerror(errno));
        goto done;
    }
    if (out_bytes)
        *out_bytes = o.bytes;
    KCP_LOG_V(1, "store", "snapshot at %llu: %llu objects, %llu bytes in %s",
              (unsigned long long)revision, (unsigned long long)count, (unsigned long long)o.bytes,
              path);
done:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- install ---------------------------------------------------------------------------- */

struct snap_in {
    FILE *f;
    uint64_t left; /* bytes of the file not read yet */
    uint32_t crc;
    int mdb_rc; /* an LMDB error: the store stops writes */
    char *val;
    size_t val_cap;
    const char *why; /* what made the file bad */
};

static int bad(struct snap_in *in, const char *why)
{
    in->why = why;
    return KCP_EBADREQUEST;
}

static int in_read(struct snap_in *in, void *p, size_t n)
{
    if (n > in->left)
        return bad(in, "truncated");
    if (n && fread(p, 1, n, in->f) != n) {
        kcp_log(KCP_LOG_ERROR, "store", "reading snapshot: %s",
                ferror(in->f) ? strerror(errno) : "file shrank");
        return KCP_EIO;
    }
    in->crc = store_crc32c(in->crc, p, n);
    in->left -= n;
    return 0;
}

static int lmdb_failed(struct snap_in *in, int rc)
{
    in->mdb_rc = rc;
    return KCP_EIO;
}

/* Apply writes "resourceVersion":"<mod revision>"; a snapshot's objects must carry the same. */
static bool rv_matches(const struct kcp_obj *obj)
{
    char want[24];
    json_t *md = json_object_get(obj->doc, "metadata");
    const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
    snprintf(want, sizeof(want), "%llu", (unsigned long long)obj->mod_revision);
    return rv && strcmp(rv, want) == 0;
}

/* One attempt: the whole file into txn and fresh, validated as it goes. */
static int load(struct kcp_store *s, struct snap_in *in, uint64_t index, MDB_txn *txn,
                struct store_map *fresh, uint64_t *bytes)
{
    unsigned char h[SNAP_HEADER], r[SNAP_RECORD], t[SNAP_TRAILER];
    char key[KCP_STORE_MAX_KEY], prev[KCP_STORE_MAX_KEY];
    size_t prev_len = 0;
    int rc;
    if ((rc = in_read(in, h, SNAP_HEADER)) != 0)
        return rc;
    if (memcmp(h, SNAP_MAGIC, 8) != 0)
        return bad(in, "not a snapshot (magic)");
    uint64_t revision = get64(h + 8), count = get64(h + 16);
    if (revision > index)
        return bad(in, "revision above the index it is installed at");
    if (count > in->left / (SNAP_RECORD + 2))
        return bad(in, "object count larger than the file");
    if ((rc = mdb_drop(txn, s->dbi_objects, 0)) != 0)
        return lmdb_failed(in, rc);
    for (uint64_t i = 0; i < count; i++) {
        if ((rc = in_read(in, r, SNAP_RECORD)) != 0)
            return rc;
        uint32_t klen = get32(r), vlen = get32(r + 4);
        uint64_t mod = get64(r + 8), created = get64(r + 16);
        if (klen == 0 || klen > KCP_STORE_MAX_KEY)
            return bad(in, "key length");
        if (vlen == 0 || vlen > SNAP_MAX_VALUE || vlen > in->left)
            return bad(in, "value length");
        if (mod == 0 || mod > revision || created == 0 || created > mod)
            return bad(in, "revisions");
        if ((rc = in_read(in, key, klen)) != 0)
            return rc;
        if (memchr(key, '\0', klen))
            return bad(in, "NUL in a key");
        /* Strictly ascending: no duplicates, and LMDB can append. */
        if (i && store_key_cmp(prev, prev_len, key, klen) >= 0)
            return bad(in, "keys out of order");
        if (vlen > in->val_cap) {
            in->val_cap = vlen;
            in->val = kcp_realloc(in->val, in->val_cap);
        }
        if ((rc = in_read(in, in->val, vlen)) != 0)
            return rc;
        struct kcp_obj *obj = NULL;
        if (store_obj_load(&obj, key, klen, in->val, vlen, mod, created) != 0)
            return bad(in, "a value that is not a JSON object with an object metadata");
        if (!rv_matches(obj)) {
            kcp_obj_unref(obj);
            return bad(in, "resourceVersion differs from the mod revision");
        }
        if ((rc = store_lmdb_put_object(s, txn, obj, MDB_APPEND, bytes)) != 0) {
            kcp_obj_unref(obj);
            return lmdb_failed(in, rc);
        }
        store_map_put(fresh, obj->key, obj->key_len, obj, 0);
        memcpy(prev, key, klen);
        prev_len = klen;
    }
    if (in->left != SNAP_TRAILER)
        return bad(in, in->left < SNAP_TRAILER ? "truncated" : "bytes after the last object");
    uint32_t crc = in->crc;
    if ((rc = in_read(in, t, SNAP_TRAILER)) != 0)
        return rc;
    if (get32(t) != crc)
        return bad(in, "CRC mismatch");
    if ((rc = store_lmdb_put_applied(s, txn, index, bytes)) != 0 ||
        (rc = store_retain_reset(s, txn, index)) != 0)
        return lmdb_failed(in, rc);
    return 0;
}

/* Doubles the map, as a batch does on MDB_MAP_FULL (up to max_map_size). */
static int grow_map(struct kcp_store *s)
{
    size_t size = s->map_size * 2;
    if (size > s->opts.max_map_size)
        return MDB_MAP_FULL;
    /* No transaction is open: no batch is in flight, and retained reads are synchronous. */
    uv_mutex_lock(&s->resize_lock);
    int rc = mdb_env_set_mapsize(s->env, size);
    uv_mutex_unlock(&s->resize_lock);
    if (rc == 0)
        s->map_size = size;
    return rc;
}

int kcp_store_install(struct kcp_store *s, uint64_t index, const char *path)
{
    struct snap_in in = {0};
    struct store_map fresh;
    struct stat st;
    uint64_t bytes = 0;
    int rc;
    if (s->closing)
        return KCP_ECLOSED;
    if (s->failed)
        return KCP_EUNAVAILABLE;
    if (!kcp_store_idle(s))
        return KCP_ECONFLICT;
    if (index < s->durable)
        return KCP_EINVAL;
    if (!(in.f = fopen(path, "rbe"))) {
        rc = errno == ENOENT ? KCP_ENOTFOUND : KCP_EIO;
        kcp_log(KCP_LOG_ERROR, "store", "snapshot %s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fileno(in.f), &st) != 0) {
        kcp_log(KCP_LOG_ERROR, "store", "snapshot %s: %s", path, strerror(errno));
        fclose(in.f);
        return KCP_EIO;
    }
    setvbuf(in.f, NULL, _IOFBF, SNAP_BUFFER);
    store_map_init(&fresh);
    for (;;) {
        MDB_txn *txn = NULL;
        in.left = (uint64_t)st.st_size;
        in.crc = 0;
        in.mdb_rc = 0;
        in.why = NULL;
        bytes = 0;
        if (fseek(in.f, 0, SEEK_SET) != 0) {
            rc = KCP_EIO;
            break;
        }
        if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
            rc = lmdb_failed(&in, rc);
            break;
        }
        rc = load(s, &in, index, txn, &fresh, &bytes);
        if (rc == 0) {
            if ((rc = mdb_txn_commit(txn)) != 0) /* one sync, as a batch's */
                rc = lmdb_failed(&in, rc);
        } else {
            mdb_txn_abort(txn);
        }
        /* A full map grows and the whole file is read again (LMDB cannot resume). */
        if (in.mdb_rc == MDB_MAP_FULL && grow_map(s) == 0) {
            store_map_free(&fresh);
            store_map_init(&fresh);
            continue;
        }
        break;
    }
    fclose(in.f);
    free(in.val);
    if (rc != 0) {
        store_map_free(&fresh);
        if (in.mdb_rc) {
            kcp_log(KCP_LOG_ERROR, "store",
                    "installing snapshot %s at %llu: lmdb: %s; writes "
                    "stopped",
                    path, (unsigned long long)index, mdb_strerror(in.mdb_rc));
            store_fail(s, KCP_EIO, NULL);
        } else {
            kcp_log(KCP_LOG_ERROR, "store", "snapshot %s not installed: %s", path,
                    in.why ? in.why : kcp_error_message(rc));
        }
        return rc;
    }

    /* Durable: now the memory follows, then the watchers and the hook see the new state. */
    store_map_free(&s->cache);
    s->cache = fresh;
    store_history_free(&s->hist);
    store_history_init(&s->hist, s->opts.history_events, s->opts.history_bytes, index);
    s->durable = s->tail = s->delivered = s->synced = index;
    if (s->opts.retain_entries && s->trim_to < index)
        s->trim_to = index;
    s->st.batches++;
    s->st.fsyncs++;
    s->st.bytes_written += bytes;
    kcp_log(KCP_LOG_INFO, "store", "installed a snapshot at %llu: %zu objects",
            (unsigned long long)index, s->cache.count);
    store_watch_end_all(s, KCP_EGONE);
    if (s->install_hook)
        s->install_hook(s->install_data, index);
    return 0;
}
