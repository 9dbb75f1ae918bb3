/*
 * Folding: every HISTORY_PACKS_MAX batches, the packs written since the last fold become one.
 * A batch's pack cannot hold a delta against an object of another pack (git reads no such
 * pack), so a directory's first version in each batch is whole: in a namespace of 10,000
 * objects, 400 KB. The fold reads its objects back, in order, and adds each again against its
 * previous version, now found across batches; it also keeps the count of packs, which every
 * lookup walks, small.
 */
#include "pack.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

/* A pack's objects and offsets, from its index file (version 2). */
static int index_read(const char *path, struct history_pack_ent **out, size_t *out_n)
{
    char *text = NULL;
    size_t len = 0;
    int rc = KCP_EIO;
    *out = NULL;
    *out_n = 0;
    if (kcp_file_read(path, SIZE_MAX, &text, &len) != 0)
        return KCP_EIO;
    const unsigned char *d = (const unsigned char *)text;
    if (len < 8 + 1024 + 40 || memcmp(d, "\377tOc\0\0\0\2", 8) != 0)
        goto done;
    size_t n = history_be32(d + 8 + 255 * 4);
    if (n > (len - 8 - 1024 - 40) / 28)
        goto done;
    const unsigned char *ids = d + 8 + 1024, *ofs = ids + n * 24, *big = ofs + n * 4;
    struct history_pack_ent *e = kcp_calloc(n ? n : 1, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        uint64_t o = history_be32(ofs + i * 4);
        if (o & 0x80000000u) {
            size_t j = o & 0x7fffffffu;
            if (j >= (size_t)(d + len - 40 - big) / 8) {
                free(e);
                goto done;
            }
            o = (uint64_t)history_be32(big + j * 8) << 32 | history_be32(big + j * 8 + 4);
        }
        memcpy(e[i].id.id, ids + i * 20, 20);
        e[i].off = o;
    }
    *out = e;
    *out_n = n;
    rc = 0;
done:
    free(text);
    return rc;
}

static int off_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct history_pack_ent *)a)->off,
             y = ((const struct history_pack_ent *)b)->off;
    return (x > y) - (x < y);
}

static int hint_cmp(const void *a, const void *b)
{
    return git_oid_cmp(&((const struct history_hint *)a)->id,
                       &((const struct history_hint *)b)->id);
}

/* Inflates exactly size bytes from d[0..len) into a new buffer; NULL if it is not that. */
static unsigned char *inflate_exact(const unsigned char *d, size_t len, size_t size)
{
    z_stream z;
    unsigned char *out = kcp_malloc(size ? size : 1);
    memset(&z, 0, sizeof(z));
    if (inflateInit(&z) != Z_OK) {
        free(out);
        return NULL;
    }
    z.next_in = (unsigned char *)d;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)size;
    int zr = inflate(&z, Z_FINISH);
    bool ok = zr == Z_STREAM_END && z.total_out == size;
    inflateEnd(&z);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/*
 * Adds the objects of one small pack (written by this file: whole objects and OFS deltas whose
 * bases come first) to the batch, in order, each whole: they become deltas against the previous
 * version again, now also across the packs the batches were written in.
 */
static int fold_pack(struct history_pack *p, const char *pack_path, const char *idx_path)
{
    static const git_object_t type_of[8] = {
        GIT_OBJECT_INVALID, GIT_OBJECT_COMMIT,  GIT_OBJECT_TREE,    GIT_OBJECT_BLOB,
        GIT_OBJECT_TAG,     GIT_OBJECT_INVALID, GIT_OBJECT_INVALID, GIT_OBJECT_INVALID};
    char *text = NULL;
    struct history_pack_ent *e = NULL;
    size_t n = 0, len = 0;
    int rc = KCP_EIO;
    if (kcp_file_read(pack_path, SIZE_MAX, &text, &len) != 0 || len < 32 ||
        memcmp(text, history_pack_magic, 8) != 0 || index_read(idx_path, &e, &n) != 0 ||
        n != history_be32((const unsigned char *)text + 8))
        goto done;
    qsort(e, n, sizeof(*e), off_cmp);
    const unsigned char *d = (const unsigned char *)text, *end = d + len - 20;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *at = d + e[i].off, *stop = i + 1 < n ? d + e[i + 1].off : end;
        if (at >= stop || stop > end)
            goto done;
        unsigned c = *at++, kind = (c >> 4) & 7, shift = 4;
        size_t size = c & 15;
        while (c & 0x80) {
            if (at >= stop || shift > 57)
                goto done;
            c = *at++;
            size |= (size_t)(c & 0x7f) << shift;
            shift += 7;
        }
        const git_oid *base = NULL;
        uint32_t b = HISTORY_NONE;
        if (kind == 6) {
            uint64_t ofs;
            if (at >= stop)
                goto done;
            c = *at++;
            ofs = c & 0x7f;
            while (c & 0x80) {
                if (at >= stop || ofs > (UINT64_MAX >> 8))
                    goto done;
                c = *at++;
                ofs = ((ofs + 1) << 7) | (c & 0x7f);
            }
            /* the entry that starts ofs bytes before this one */
            size_t lo = 0, hi = i;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (e[mid].off < e[i].off - ofs)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo >= i || e[lo].off != e[i].off - ofs ||
                (b = history_pack_find(p, &e[lo].id)) == HISTORY_NONE)
                goto done;
            base = &e[lo].id;
        } else if (type_of[kind] == GIT_OBJECT_INVALID) {
            goto done; /* not written by this file */
        }
        unsigned char *raw = inflate_exact(at, (size_t)(stop - at), size), *full = raw;
        if (!raw)
            goto done;
        git_object_t type = b == HISTORY_NONE ? type_of[kind] : p->o[b].type;
        size_t full_len = size;
        if (b != HISTORY_NONE) {
            bool bown;
            unsigned char *bd = history_pack_materialize(p, b, &bown);
            const unsigned char *q = raw, *qe = raw + size;
            size_t bsz;
            full = NULL;
            if (bd && history_varint_get(&q, qe, &bsz) == 0 &&
                history_varint_get(&q, qe, &full_len) == 0)
                full = history_delta_apply(bd, p->o[b].size, raw, size, full_len);
            if (bown)
                free(bd);
            free(raw);
            if (!full)
                goto done;
        } else {
            struct history_hint key, *h;
            git_oid_cpy(&key.id, &e[i].id);
            h = p->nhint ? bsearch(&key, p->hint, p->nhint, sizeof(*p->hint), hint_cmp) : NULL;
            base = h ? &h->base : NULL;
        }
        history_pack_add(p, type, NULL, full_len, &full, &e[i].id, base);
    }
    rc = 0;
done:
    if (rc != 0)
        kcp_log(KCP_LOG_WARN, "history", "cannot read pack %s", pack_path);
    free(e);
    free(text);
    return rc;
}

/*
 * Every HISTORY_PACKS_MAX batches, their packs become one: each object is read back and added
 * again in order, which finds the deltas across batches that one pack per batch could not (a
 * directory's first version in each batch is whole: in a namespace of 10,000 objects, 400 KB).
 */
int history_pack_fold(struct history_rec *r)
{
    struct history_pack *p = r->pack;
    char *dir = history_pack_dir(r);
    size_t nsmall = r->nsmall;
    int rc = 0;
    if (nsmall < HISTORY_PACKS_MAX || p->n)
        goto done;
    if (p->nhint)
        qsort(p->hint, p->nhint, sizeof(*p->hint), hint_cmp);
    for (size_t i = 0; i < nsmall && rc == 0; i++) {
        char *pp = kcp_sprintf("%s/pack-%s.pack", dir, r->small[i]);
        char *pi = kcp_sprintf("%s/pack-%s.idx", dir, r->small[i]);
        rc = fold_pack(p, pp, pi);
        free(pp);
        free(pi);
    }
    if (rc != 0 || (rc = history_pack_emit(r)) != 0) {
        history_pack_reset(p); /* the small packs stay, and hold everything */
        goto done;
    }
    /* The new pack holds everything the small ones did: drop them. */
    for (size_t i = 0; i < nsmall; i++) {
        if (strcmp(r->small[i], r->small[nsmall]) != 0) {
            char *pp = kcp_sprintf("%s/pack-%s.pack", dir, r->small[i]);
            char *x = kcp_sprintf("%s/pack-%s.idx", dir, r->small[i]);
            unlink(x);
            unlink(pp);
            free(pp);
            free(x);
        }
    }
done:
    if (nsmall >= HISTORY_PACKS_MAX) {
        /* Folded, or left as they are (not retried over and over): not small any more. */
        for (size_t i = 0; i < r->nsmall; i++)
            free(r->small[i]);
        r->nsmall = 0;
        p->nhint = 0;
    }
    free(dir);
    return rc;
}
