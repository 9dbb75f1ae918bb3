/*
 * git's delta format (the instructions that rebuild an object from a base: copy a range of the
 * base, or insert bytes), written without a delta search: the recorder knows each object's
 * previous version, and a new version differs from it in one place (a field of a file, an entry
 * of a directory), which a common prefix and suffix find in one pass of memcmp.
 */
#include "pack.h"

#include <string.h>

static void put_varint(struct kcp_buf *b, size_t v)
{
    unsigned char c[10];
    size_t n = 0;
    do {
        c[n] = v & 0x7f;
        v >>= 7;
        if (v)
            c[n] |= 0x80;
        n++;
    } while (v);
    kcp_buf_append(b, c, n);
}

static void put_copy(struct kcp_buf *b, size_t off, size_t len)
{
    while (len) {
        /* 64 KiB at most, as git writes them: older readers take no more. */
        size_t n = len > 0x10000 ? 0x10000 : len;
        unsigned char c[8], op = 0x80;
        size_t k = 1;
        for (int i = 0; i < 4; i++)
            if ((off >> (8 * i)) & 0xff) {
                op |= (unsigned char)(1 << i);
                c[k++] = (off >> (8 * i)) & 0xff;
            }
        for (int i = 0; i < 3; i++)
            if ((n >> (8 * i)) & 0xff) {
                op |= (unsigned char)(0x10 << i);
                c[k++] = (n >> (8 * i)) & 0xff;
            }
        c[0] = op;
        kcp_buf_append(b, c, k);
        off += n;
        len -= n;
    }
}

static void put_insert(struct kcp_buf *b, const unsigned char *d, size_t len)
{
    while (len) {
        unsigned char n = len > 127 ? 127 : (unsigned char)len;
        kcp_buf_append(b, &n, 1);
        kcp_buf_append(b, d, n);
        d += n;
        len -= n;
    }
}

/*
 * The delta from base to obj as common prefix, the middle, common suffix: a new version of a
 * file or a directory differs from the previous one in one place (a field, an entry), so this
 * finds what a delta search would, in one pass of memcmp.
 */
void history_delta_make(struct kcp_buf *out, const unsigned char *base, size_t blen,
                        const unsigned char *obj, size_t len)
{
    size_t pre = 0, suf = 0, max = blen < len ? blen : len;
    while (pre + 64 <= max && memcmp(base + pre, obj + pre, 64) == 0)
        pre += 64;
    while (pre < max && base[pre] == obj[pre])
        pre++;
    while (suf + 64 <= max - pre && memcmp(base + blen - suf - 64, obj + len - suf - 64, 64) == 0)
        suf += 64;
    while (suf < max - pre && base[blen - 1 - suf] == obj[len - 1 - suf])
        suf++;
    put_varint(out, blen);
    put_varint(out, len);
    put_copy(out, 0, pre);
    put_insert(out, obj + pre, len - pre - suf);
    put_copy(out, blen - suf, suf);
}

/* One entry of a tree object at t[0..end): its length, 0 if malformed. */
static size_t tree_entry(const unsigned char *t, const unsigned char *end,
                         const unsigned char **name, size_t *nlen, bool *isdir)
{
    const unsigned char *sp = memchr(t, ' ', (size_t)(end - t));
    const unsigned char *nul = sp ? memchr(sp + 1, '\0', (size_t)(end - sp - 1)) : NULL;
    if (!nul || end - nul - 1 < GIT_OID_RAWSZ)
        return 0;
    *name = sp + 1;
    *nlen = (size_t)(nul - sp - 1);
    *isdir = sp - t == 5 && memcmp(t, "40000", 5) == 0;
    return (size_t)(nul + 1 + GIT_OID_RAWSZ - t);
}

static int entry_cmp(const unsigned char *a, size_t alen, bool adir, const unsigned char *b,
                     size_t blen, bool bdir)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    unsigned char ca = alen > n ? a[n] : adir ? '/' : 0;
    unsigned char cb = blen > n ? b[n] : bdir ? '/' : 0;
    return (ca > cb) - (ca < cb);
}

/*
 * The delta between two trees with many changes apart: both are sorted entry lists, so one walk
 * of both finds the runs of entries the new one keeps (copied) and the entries it adds (inserted).
 */
void history_delta_tree(struct kcp_buf *out, const unsigned char *base, size_t blen,
                        const unsigned char *obj, size_t len)
{
    const unsigned char *b = base, *bend = base + blen, *t = obj, *tend = obj + len, *ins = NULL;
    size_t copy_at = 0, copy_len = 0;
    put_varint(out, blen);
    put_varint(out, len);
    while (t < tend) {
        const unsigned char *tn, *bn;
        size_t tl, bl = 0, tnl, bnl;
        bool td, bd;
        int c = 1;
        if (!(tl = tree_entry(t, tend, &tn, &tnl, &td)))
            break;
        while (b < bend && (bl = tree_entry(b, bend, &bn, &bnl, &bd)) &&
               (c = entry_cmp(bn, bnl, bd, tn, tnl, td)) < 0)
            b += bl; /* removed */
        if (b < bend && bl && c == 0 && bl == tl && memcmp(b, t, tl) == 0) {
            if (ins) {
                put_insert(out, ins, (size_t)(t - ins));
                ins = NULL;
            }
            if (copy_len && copy_at + copy_len != (size_t)(b - base)) {
                put_copy(out, copy_at, copy_len);
                copy_len = 0;
            }
            if (!copy_len)
                copy_at = (size_t)(b - base);
            copy_len += tl;
            b += bl;
        } else {
            if (copy_len) {
                put_copy(out, copy_at, copy_len);
                copy_len = 0;
            }
            if (!ins)
                ins = t;
            if (b < bend && bl && c == 0)
                b += bl; /* changed */
        }
        t += tl;
    }
    if (copy_len)
        put_copy(out, copy_at, copy_len);
    if (ins || t < tend)
        put_insert(out, ins ? ins : t, (size_t)(tend - (ins ? ins : t)));
}

int history_varint_get(const unsigned char **p, const unsigned char *end, size_t *out)
{
    size_t v = 0;
    unsigned shift = 0;
    unsigned char c;
    do {
        if (*p >= end || shift > 56)
            return -1;
        c = *(*p)++;
        v |= (size_t)(c & 0x7f) << shift;
        shift += 7;
    } while (c & 0x80);
    *out = v;
    return 0;
}

/* Applies a delta this file made (a corrupt one is a programming error, still not trusted). */
unsigned char *history_delta_apply(const unsigned char *base, size_t blen, const unsigned char *d,
                                   size_t dlen, size_t size)
{
    const unsigned char *p = d, *end = d + dlen;
    size_t bsz, rsz, at = 0;
    if (history_varint_get(&p, end, &bsz) != 0 || history_varint_get(&p, end, &rsz) != 0 ||
        bsz != blen || rsz != size)
        return NULL;
    unsigned char *out = kcp_malloc(size ? size : 1);
    while (p < end) {
        unsigned char op = *p++;
        if (op & 0x80) {
            size_t off = 0, n = 0;
            for (int i = 0; i < 4; i++)
                if (op & (1 << i)) {
                    if (p >= end)
                        goto bad;
                    off |= (size_t)*p++ << (8 * i);
                }
            for (int i = 0; i < 3; i++)
                if (op & (0x10 << i)) {
                    if (p >= end)
                        goto bad;
                    n |= (size_t)*p++ << (8 * i);
                }
            if (!n)
                n = 0x10000;
            if (off > blen || n > blen - off || n > size - at)
                goto bad;
            memcpy(out + at, base + off, n);
            at += n;
        } else if (op) {
            if (op > end - p || op > size - at)
                goto bad;
            memcpy(out + at, p, op);
            p += op;
            at += op;
        } else {
            goto bad;
        }
    }
    if (at == size)
        return out;
bad:
    free(out);
    return NULL;
}
