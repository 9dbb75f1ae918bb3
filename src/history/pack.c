/*
 * Where the recorder's objects go. A batch's objects are held in memory, in an odb backend (so
 * libgit2 reads them like any other), each whole or as a delta against the previous version of
 * the same file or directory (the caller names it: no delta search, delta.c), then written as
 * one pack and its index by hand. libgit2 did it with loose-object semantics (every new object
 * looked up in every pack, then a rescan of the pack directory: a third of the recorder's CPU),
 * a packbuilder with a delta search, and an indexer that inflated and hashed it all again.
 * Objects are not looked up on disk: one already in an earlier pack (a value set back) is
 * packed again, which git allows. fold.c merges the batches' packs.
 */
#include "pack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/sha1.h>

static int fail(const char *what)
{
    const git_error *e = git_error_last();
    kcp_log(KCP_LOG_ERROR, "history", "git %s: %s", what, e && e->message ? e->message : "error");
    return KCP_EIO;
}

char *history_pack_dir(struct history_rec *r)
{
    return kcp_sprintf("%sobjects/pack", git_repository_path(r->repo));
}

/* ---- the batch's objects ---------------------------------------------------------------- */

static size_t slot_of(const struct history_pack *p, const git_oid *id)
{
    uint32_t h;
    memcpy(&h, id->id, sizeof(h));
    return h & (p->nslot - 1);
}

uint32_t history_pack_find(const struct history_pack *p, const git_oid *id)
{
    if (!p->nslot)
        return HISTORY_NONE;
    for (size_t s = slot_of(p, id);; s = (s + 1) & (p->nslot - 1)) {
        if (!p->slot[s])
            return HISTORY_NONE;
        if (git_oid_equal(&p->o[p->slot[s] - 1].id, id))
            return p->slot[s] - 1;
    }
}

static void index_add(struct history_pack *p, uint32_t i)
{
    if ((p->n + 1) * 2 > p->nslot) {
        free(p->slot);
        p->nslot = p->nslot ? p->nslot * 2 : 1024;
        p->slot = kcp_calloc(p->nslot, sizeof(*p->slot));
        for (uint32_t j = 0; j < i; j++)
            index_add(p, j);
    }
    size_t s = slot_of(p, &p->o[i].id);
    while (p->slot[s])
        s = (s + 1) & (p->nslot - 1);
    p->slot[s] = i + 1;
}

void history_pack_reset(struct history_pack *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->o[i].data);
        free(p->o[i].full);
    }
    free(p->o);
    free(p->slot);
    p->o = NULL;
    p->slot = NULL;
    p->n = p->cap = p->nslot = 0;
}

unsigned char *history_pack_materialize(struct history_pack *p, uint32_t i, bool *owned)
{
    struct history_pobj *o = &p->o[i];
    *owned = false;
    if (o->base == HISTORY_NONE)
        return o->data;
    if (o->full)
        return o->full;
    bool bown;
    unsigned char *b = history_pack_materialize(p, o->base, &bown);
    unsigned char *full =
        b ? history_delta_apply(b, p->o[o->base].size, o->data, o->len, o->size) : NULL;
    if (bown)
        free(b);
    *owned = full != NULL;
    return full;
}

bool history_pack_add(struct history_pack *p, git_object_t type, const void *data, size_t len,
                      unsigned char **own, const git_oid *id, const git_oid *base)
{
    if (history_pack_find(p, id) != HISTORY_NONE) {
        if (own) {
            free(*own);
            *own = NULL;
        }
        return false;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 256;
        p->o = kcp_realloc(p->o, p->cap * sizeof(*p->o));
    }
    struct history_pobj *o = &p->o[p->n];
    unsigned char *copy = own ? *own : NULL;
    if (own)
        *own = NULL;
    if (!copy) {
        copy = kcp_malloc(len ? len : 1);
        memcpy(copy, data, len);
    }
    *o = (struct history_pobj){
        .type = type, .base = HISTORY_NONE, .root = (uint32_t)p->n, .size = len};
    git_oid_cpy(&o->id, id);
    uint32_t b = base ? history_pack_find(p, base) : HISTORY_NONE;
    if (b != HISTORY_NONE && p->o[b].type == type) {
        /* Against the previous version; when that chain is as long as it may be, against its
         * first (whole) version: a larger delta, still far smaller than a whole tree. */
        uint32_t against = p->o[b].depth < HISTORY_DELTA_DEPTH ? b : p->o[b].root;
        bool bown;
        struct kcp_buf d = KCP_BUF_INIT;
        unsigned char *bd = history_pack_materialize(p, against, &bown);
        if (bd && type == GIT_OBJECT_TREE && against != b)
            history_delta_tree(&d, bd, p->o[against].size, copy, len);
        else if (bd)
            history_delta_make(&d, bd, p->o[against].size, copy, len);
        if (bd && d.len < len / 2) {
            o->base = against;
            o->root = p->o[against].root;
            o->depth = p->o[against].depth + 1;
            o->len = d.len;
            o->data = (unsigned char *)kcp_buf_detach(&d);
            o->full = copy; /* the newest of its chain: the next version's base */
            copy = NULL;
            free(p->o[b].full);
            p->o[b].full = NULL;
        }
        if (bown)
            free(bd);
        kcp_buf_free(&d);
    }
    if (o->base == HISTORY_NONE) {
        o->data = copy;
        o->len = len;
    }
    index_add(p, (uint32_t)p->n);
    p->n++;
    return o->base == HISTORY_NONE;
}

int history_pack_put(struct history_rec *r, git_object_t type, const void *data, size_t len,
                     const git_oid *base, git_oid *out)
{
    struct history_pack *p = r->pack;
    git_oid id;
    /* libgit2's collision-detecting SHA-1, as git's: the content is the API clients'. */
    if (git_odb_hash(&id, data, len, type) != 0)
        return fail("hash");
    if (out)
        git_oid_cpy(out, &id);
    /* Not looked up on disk (a miss costs a search and an error message per pack): an object
     * already in an earlier pack (a value set back) is packed again, which git allows; a pack
     * holds it once, and so does a fold of packs. */
    if (history_pack_find(p, &id) != HISTORY_NONE)
        return 0;
    /* Whole because its previous version is in an earlier pack: the fold makes it a delta. */
    if (history_pack_add(p, type, data, len, NULL, &id, base) && base &&
        history_pack_find(p, base) == HISTORY_NONE) {
        if (p->nhint == p->caphint) {
            p->caphint = p->caphint ? p->caphint * 2 : 256;
            p->hint = kcp_realloc(p->hint, p->caphint * sizeof(*p->hint));
        }
        git_oid_cpy(&p->hint[p->nhint].id, &id);
        git_oid_cpy(&p->hint[p->nhint].base, base);
        p->nhint++;
    }
    return 0;
}

/* ---- the batch as an odb backend: libgit2's reads and writes of the repository -------- */

static int be_read(void **out, size_t *len, git_object_t *type, git_odb_backend *be,
                   const git_oid *id)
{
    struct history_pack *p = (struct history_pack *)be;
    uint32_t i = history_pack_find(p, id);
    bool owned;
    if (i == HISTORY_NONE)
        return GIT_ENOTFOUND;
    unsigned char *full = history_pack_materialize(p, i, &owned);
    if (!full) {
        git_error_set_str(GIT_ERROR_ODB, "corrupt delta in the recorder's batch");
        return -1;
    }
    *out = git_odb_backend_data_alloc(be, p->o[i].size ? p->o[i].size : 1);
    if (!*out) {
        if (owned)
            free(full);
        return -1;
    }
    memcpy(*out, full, p->o[i].size);
    *len = p->o[i].size;
    *type = p->o[i].type;
    if (owned)
        free(full);
    return 0;
}

static int be_read_header(size_t *len, git_object_t *type, git_odb_backend *be, const git_oid *id)
{
    struct history_pack *p = (struct history_pack *)be;
    uint32_t i = history_pack_find(p, id);
    if (i == HISTORY_NONE)
        return GIT_ENOTFOUND;
    *len = p->o[i].size;
    *type = p->o[i].type;
    return 0;
}

static int be_exists(git_odb_backend *be, const git_oid *id)
{
    return history_pack_find((struct history_pack *)be, id) != HISTORY_NONE;
}

/* libgit2's own writes (git_odb_write already skipped what exists): kept whole. */
static int be_write(git_odb_backend *be, const git_oid *id, const void *data, size_t len,
                    git_object_t type)
{
    history_pack_add((struct history_pack *)be, type, data, len, NULL, id, NULL);
    return 0;
}

static void be_free(git_odb_backend *be)
{
    struct history_pack *p = (struct history_pack *)be;
    history_pack_reset(p);
    if (p->z_ready)
        deflateEnd(&p->z);
    free(p->hint);
    free(p);
}

int history_pack_open(struct history_rec *r)
{
    struct history_pack *p = kcp_calloc(1, sizeof(*p));
    git_odb_init_backend(&p->parent, GIT_ODB_BACKEND_VERSION);
    p->parent.read = be_read;
    p->parent.read_header = be_read_header;
    p->parent.exists = be_exists;
    p->parent.write = be_write;
    p->parent.free = be_free;
    /* The highest priority: it takes libgit2's writes, and the batch is read first. */
    if (git_odb_add_backend(r->odb, &p->parent, 1000) != 0) {
        free(p);
        return fail("in-memory object store");
    }
    r->pack = p;
    return 0;
}

/* ---- pack and index files --------------------------------------------------------------- */

static void put_be32(struct kcp_buf *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    kcp_buf_append(b, c, 4);
}

uint32_t history_be32(const unsigned char *c)
{
    return (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
}

static void sha1_append(struct kcp_buf *b, size_t from)
{
    unsigned char sum[20];
    mbedtls_sha1_ret((const unsigned char *)b->data + from, b->len - from, sum);
    kcp_buf_append(b, sum, sizeof(sum));
}

static int ent_cmp(const void *a, const void *b)
{
    return git_oid_cmp(&((const struct history_pack_ent *)a)->id,
                       &((const struct history_pack_ent *)b)->id);
}

/* The version 2 index of a pack whose checksum is sum; e sorted by id. */
static void index_make(struct kcp_buf *out, const struct history_pack_ent *e, size_t n,
                       const unsigned char *sum)
{
    static const unsigned char magic[8] = {0xff, 't', 'O', 'c', 0, 0, 0, 2};
    size_t big = 0;
    kcp_buf_append(out, magic, sizeof(magic));
    for (unsigned f = 0, i = 0; f < 256; f++) {
        while (i < n && e[i].id.id[0] <= f)
            i++;
        put_be32(out, (uint32_t)i);
    }
    for (size_t i = 0; i < n; i++)
        kcp_buf_append(out, e[i].id.id, GIT_OID_RAWSZ);
    for (size_t i = 0; i < n; i++)
        put_be32(out, e[i].crc);
    for (size_t i = 0; i < n; i++)
        put_be32(out, e[i].off < 0x80000000u ? (uint32_t)e[i].off : 0x80000000u | (uint32_t)big++);
    for (size_t i = 0; i < n; i++)
        if (e[i].off >= 0x80000000u) {
            put_be32(out, (uint32_t)(e[i].off >> 32));
            put_be32(out, (uint32_t)e[i].off);
        }
    kcp_buf_append(out, sum, 20);
    sha1_append(out, 0);
}

static int file_put(const char *path, const void *data, size_t len)
{
    /* A crash may have left one behind, read-only. */
    (void)unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    const char *p = data;
    if (fd < 0)
        return -1;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd);
}

/* Writes objects/pack/pack-<checksum>.{pack,idx} (the index last: it makes the pack seen). The
 * pack's name (hex checksum) is appended to the small packs. */
static int pack_files(struct history_rec *r, struct kcp_buf *pack, struct history_pack_ent *e,
                      size_t n)
{
    struct kcp_buf idx = KCP_BUF_INIT;
    char hex[GIT_OID_HEXSZ + 1];
    git_oid sum;
    char *dir = history_pack_dir(r);
    char *tmp = kcp_sprintf("%s/tmp_kcp_pack", dir), *tmpi = kcp_sprintf("%s/tmp_kcp_idx", dir);
    char *dst = NULL, *dsti = NULL;
    int rc = 0;
    qsort(e, n, sizeof(*e), ent_cmp);
    for (size_t i = 1; i < n; i++)
        if (git_oid_equal(&e[i - 1].id, &e[i].id)) {
            kcp_log(KCP_LOG_WARN, "history", "an object twice in one pack; not written");
            rc = KCP_EIO;
            goto done;
        }
    memcpy(sum.id, pack->data + pack->len - 20, 20);
    git_oid_tostr(hex, sizeof(hex), &sum);
    index_make(&idx, e, n, sum.id);
    dst = kcp_sprintf("%s/pack-%s.pack", dir, hex);
    dsti = kcp_sprintf("%s/pack-%s.idx", dir, hex);
    if (file_put(tmp, pack->data, pack->len) != 0 || file_put(tmpi, idx.data, idx.len) != 0 ||
        rename(tmp, dst) != 0 || rename(tmpi, dsti) != 0) {
        kcp_log(KCP_LOG_ERROR, "history", "cannot write %s: %s", dst, strerror(errno));
        unlink(tmp);
        unlink(tmpi);
        rc = KCP_EIO;
        goto done;
    }
    r->small = kcp_realloc(r->small, (r->nsmall + 1) * sizeof(*r->small));
    r->small[r->nsmall++] = kcp_strdup(hex);
done:
    kcp_buf_free(&idx);
    free(dir);
    free(tmp);
    free(tmpi);
    free(dst);
    free(dsti);
    return rc;
}

const unsigned char history_pack_magic[8] = {'P', 'A', 'C', 'K', 0, 0, 0, 2};

/*
 * An object as a zlib stream of stored blocks, written by hand: what deflate at level 0 writes,
 * without a stream reset per object (which clears its tables: most of the cost for objects
 * of a few dozen bytes).
 */
static void store_into(struct kcp_buf *out, const unsigned char *d, size_t len)
{
    static const unsigned char header[2] = {0x78, 0x01}; /* deflate, 32 KiB window, no dict */
    uLong adler = adler32(adler32(0, NULL, 0), d, (uInt)len);
    kcp_buf_reserve(out, 2 + len + 5 * (len / 65535 + 1) + 4);
    kcp_buf_append(out, header, 2);
    do {
        size_t n = len > 65535 ? 65535 : len;
        unsigned char b[5] = {len == n ? 1 : 0, (unsigned char)n, (unsigned char)(n >> 8),
                              (unsigned char)~n, (unsigned char)(~n >> 8)};
        kcp_buf_append(out, b, 5);
        kcp_buf_append(out, d, n);
        d += n;
        len -= n;
    } while (len);
    put_be32(out, (uint32_t)adler);
}

/*
 * The object's zlib stream: stored under STORE_BELOW bytes, else deflated at level 1. zlib
 * costs about 80,000 instructions per stream however small (a commit of 300 bytes: 25 us here,
 * a quarter of recording it) for a third of its bytes; the commits, small trees and deltas
 * that make most of a pack are left as they are (a squash repacks them with compression).
 * Level 1: level 6 costs twice the CPU for 1% of the bytes here (a directory's tree is half
 * object ids, which no level compresses).
 */
#define STORE_BELOW 512

static int compress_into(struct history_pack *p, struct kcp_buf *out, const unsigned char *d,
                         size_t len)
{
    if (len < STORE_BELOW) {
        store_into(out, d, len);
        return 0;
    }
    z_stream *z = &p->z;
    if (!p->z_ready) {
        memset(z, 0, sizeof(*z));
        if (deflateInit2(z, 1, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return -1;
        p->z_ready = true;
    } else if (deflateReset(z) != Z_OK) {
        return -1;
    }
    size_t bound = deflateBound(z, (uLong)len);
    kcp_buf_reserve(out, bound);
    z->next_in = (unsigned char *)d;
    z->avail_in = (uInt)len;
    z->next_out = (unsigned char *)out->data + out->len;
    z->avail_out = (uInt)bound;
    if (deflate(z, Z_FINISH) != Z_STREAM_END)
        return -1;
    out->len += bound - z->avail_out;
    out->data[out->len] = '\0';
    return 0;
}

int history_pack_emit(struct history_rec *r)
{
    static const int code[] = {[GIT_OBJECT_COMMIT] = 1,
                               [GIT_OBJECT_TREE] = 2,
                               [GIT_OBJECT_BLOB] = 3,
                               [GIT_OBJECT_TAG] = 4};
    struct history_pack *p = r->pack;
    struct kcp_buf pack = KCP_BUF_INIT;
    struct history_pack_ent *e = NULL;
    uint64_t *off = NULL;
    int rc = 0;
    if (!p->n)
        return 0;
    e = kcp_calloc(p->n, sizeof(*e));
    off = kcp_calloc(p->n, sizeof(*off));
    kcp_buf_append(&pack, history_pack_magic, sizeof(history_pack_magic));
    put_be32(&pack, (uint32_t)p->n);
    for (size_t i = 0; i < p->n; i++) {
        struct history_pobj *o = &p->o[i];
        size_t start = pack.len, sz = o->len;
        unsigned char c[16];
        size_t k = 0;
        if (o->type < GIT_OBJECT_COMMIT || o->type > GIT_OBJECT_TAG) {
            rc = KCP_EIO;
            goto done;
        }
        /* type and size: 3 bits and 4 bits, then 7 bits a byte */
        c[k] = (unsigned char)((o->base == HISTORY_NONE ? code[o->type] : 6) << 4 | (sz & 0x0f));
        sz >>= 4;
        while (sz) {
            c[k++] |= 0x80;
            c[k] = sz & 0x7f;
            sz >>= 7;
        }
        kcp_buf_append(&pack, c, k + 1);
        if (o->base != HISTORY_NONE) {
            /* the distance back to the base, git's "offset encoding" */
            uint64_t d = start - off[o->base];
            unsigned char v[16];
            size_t pos = sizeof(v) - 1;
            v[pos] = d & 0x7f;
            while (d >>= 7)
                v[--pos] = 0x80 | (--d & 0x7f);
            kcp_buf_append(&pack, v + pos, sizeof(v) - pos);
        }
        if (compress_into(p, &pack, o->data, o->len) != 0) {
            kcp_log(KCP_LOG_ERROR, "history", "zlib failed");
            rc = KCP_EIO;
            goto done;
        }
        off[i] = start;
        git_oid_cpy(&e[i].id, &o->id);
        e[i].off = start;
        e[i].crc =
            (uint32_t)crc32(0, (const unsigned char *)pack.data + start, (uInt)(pack.len - start));
    }
    sha1_append(&pack, 0);
    if ((rc = pack_files(r, &pack, e, p->n)) != 0)
        goto done;
    git_odb_refresh(r->odb);
    history_pack_reset(p);
done:
    free(e);
    free(off);
    kcp_buf_free(&pack);
    return rc;
}

int history_pack_write(struct history_rec *r)
{
    return history_pack_emit(r);
}

void history_pack_free(struct history_rec *r)
{
    for (size_t i = 0; i < r->nsmall; i++)
        free(r->small[i]);
    free(r->small);
    r->small = NULL;
    r->nsmall = 0;
}
