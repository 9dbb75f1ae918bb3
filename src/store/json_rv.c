/* Stamps metadata.resourceVersion into an object's JSON text without re-encoding the rest. */
#include "store_int.h"

#include <stdio.h>
#include <string.h>

/*
 * Why not parse, set and dump with jansson: dumping rewrites numbers (0.1 becomes
 * 0.10000000000000001), escapes and spacing, so the stored object would differ from what the API
 * layer encoded, and a jansson upgrade could change the bytes replicas store. Here every byte
 * but the resourceVersion value is kept. The scanner only finds member boundaries; jansson
 * validates the result afterwards (store_obj_build), so malformed input just fails there.
 */

struct scan {
    const char *p, *end;
};

static void skip_ws(struct scan *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
}

/* A string starting at sc->p ('"'): its raw contents [*s, *e), sc->p after the closing quote. */
static int scan_string(struct scan *sc, const char **s, const char **e)
{
    if (sc->p >= sc->end || *sc->p != '"')
        return KCP_EINVALID;
    const char *p = sc->p + 1;
    while (p < sc->end && *p != '"') {
        if (*p == '\\' && sc->end - p < 2)
            return KCP_EINVALID;
        p += *p == '\\' ? 2 : 1;
    }
    if (p >= sc->end)
        return KCP_EINVALID;
    *s = sc->p + 1;
    *e = p;
    sc->p = p + 1;
    return 0;
}

/* Skips one value of any kind: brackets are counted, strings skipped whole. */
static int skip_value(struct scan *sc)
{
    size_t depth = 0;
    const char *s, *e;
    skip_ws(sc);
    if (sc->p >= sc->end)
        return KCP_EINVALID;
    do {
        if (sc->p >= sc->end)
            return KCP_EINVALID;
        char c = *sc->p;
        if (c == '"') {
            if (scan_string(sc, &s, &e) != 0)
                return KCP_EINVALID;
        } else if (c == '{' || c == '[') {
            depth++;
            sc->p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return KCP_EINVALID;
            depth--;
            sc->p++;
        } else if (depth > 0) {
            sc->p++;
        } else {
            /* A scalar at the top: a number or literal runs to the next delimiter. */
            const char *start = sc->p;
            while (sc->p < sc->end && !strchr(",}] \t\r\n", *sc->p))
                sc->p++;
            if (sc->p == start)
                return KCP_EINVALID;
        }
    } while (depth > 0);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Compares a raw JSON string's contents with an ASCII name, decoding escapes ("n\u0061me"). */
static bool key_is(const char *s, const char *e, const char *name)
{
    size_t n = strlen(name);
    if (!memchr(s, '\\', (size_t)(e - s)))
        return (size_t)(e - s) == n && memcmp(s, name, n) == 0;
    size_t i = 0;
    while (s < e) {
        char c = *s++;
        if (c == '\\') {
            if (s >= e)
                return false;
            char x = *s++;
            if (x == 'u') {
                int v = 0;
                for (int k = 0; k < 4; k++) {
                    int h = s < e ? hexval(*s++) : -1;
                    if (h < 0)
                        return false;
                    v = v * 16 + h;
                }
                if (v == 0 || v > 0x7f) /* names are ASCII: any other code point differs */
                    return false;
                c = (char)v;
            } else if (x == '"' || x == '\\' || x == '/') {
                c = x;
            } else {
                return false; /* \b \f \n \r \t are not in any name we look for */
            }
        }
        if (i >= n || name[i] != c)
            return false;
        i++;
    }
    return i == n;
}

/* The object at sc->p: calls back per member with the key and the value's [start, end). */
struct member {
    const char *ks, *ke; /* key contents */
    const char *vs, *ve; /* value */
};
typedef int (*member_fn)(void *ctx, const struct member *m, struct scan *sc);

static int scan_object(struct scan *sc, member_fn fn, void *ctx, const char **open)
{
    skip_ws(sc);
    if (sc->p >= sc->end || *sc->p != '{')
        return KCP_EINVALID;
    *open = sc->p;
    sc->p++;
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == '}') {
        sc->p++;
        return 0;
    }
    for (;;) {
        struct member m;
        skip_ws(sc);
        if (scan_string(sc, &m.ks, &m.ke) != 0)
            return KCP_EINVALID;
        skip_ws(sc);
        if (sc->p >= sc->end || *sc->p != ':')
            return KCP_EINVALID;
        sc->p++;
        skip_ws(sc);
        m.vs = sc->p;
        int rc = fn(ctx, &m, sc);
        if (rc != 0)
            return rc;
        skip_ws(sc);
        if (sc->p >= sc->end)
            return KCP_EINVALID;
        if (*sc->p == '}') {
            sc->p++;
            return 0;
        }
        if (*sc->p != ',')
            return KCP_EINVALID;
        sc->p++;
    }
}

/* What we learn about an object: where a member sits, and where a new one would go. */
struct find {
    const char *target;        /* the member we look for */
    const char *const *before; /* members that precede it in upstream's field order */
    const char *vs, *ve;       /* the target's value, if found */
    const char *insert_after;  /* end of the last `before` member seen */
    /* Only for the top level: the metadata object's own scan. */
    struct find *inner;
    const char *inner_open;
    int inner_rc;
    bool inner_found;
};

static int find_member(void *ctx, const struct member *m, struct scan *sc)
{
    struct find *f = ctx;
    bool is_target = !f->vs && key_is(m->ks, m->ke, f->target);
    if (is_target && f->inner) {
        struct scan sub = {m->vs, sc->end};
        f->inner_found = true;
        f->inner_rc = scan_object(&sub, find_member, f->inner, &f->inner_open);
        if (f->inner_rc != 0) /* metadata must be an object */
            return f->inner_rc;
        sc->p = sub.p;
    } else if (skip_value(sc) != 0) {
        return KCP_EINVALID;
    }
    if (is_target) {
        f->vs = m->vs;
        f->ve = sc->p;
    }
    for (const char *const *b = f->before; *b; b++)
        if (key_is(m->ks, m->ke, *b))
            f->insert_after = sc->p;
    return 0;
}

int store_json_set_rv(struct kcp_buf *out, const char *json, size_t len, uint64_t rv)
{
    /* Upstream's field order: ObjectMeta has name, generateName, namespace, selfLink, uid
     * before resourceVersion; an object has kind and apiVersion before metadata. */
    static const char *const meta_before[] = {"name",     "generateName", "namespace",
                                              "selfLink", "uid",          NULL};
    static const char *const top_before[] = {"kind", "apiVersion", NULL};
    struct find meta = {.target = "resourceVersion", .before = meta_before};
    struct find top = {.target = "metadata", .before = top_before, .inner = &meta};
    struct scan sc = {json, json + len};
    const char *open = NULL;
    char val[32];
    int n = snprintf(val, sizeof(val), "\"%llu\"", (unsigned long long)rv);

    if (scan_object(&sc, find_member, &top, &open) != 0)
        return KCP_EINVALID;
    kcp_buf_reserve(out, len + (size_t)n + 48);
    if (meta.vs) {
        /* Replace the value, whatever it was. */
        kcp_buf_append(out, json, (size_t)(meta.vs - json));
        kcp_buf_append(out, val, (size_t)n);
        kcp_buf_append(out, meta.ve, (size_t)(json + len - meta.ve));
    } else if (top.inner_found) {
        /* Insert after the members that precede it, or first. */
        const char *at = meta.insert_after ? meta.insert_after : top.inner_open + 1;
        struct scan after = {at, json + len};
        skip_ws(&after);
        bool empty = !meta.insert_after && after.p < after.end && *after.p == '}';
        kcp_buf_append(out, json, (size_t)(at - json));
        kcp_buf_puts(out, meta.insert_after ? ",\"resourceVersion\":" : "\"resourceVersion\":");
        kcp_buf_append(out, val, (size_t)n);
        if (!meta.insert_after && !empty)
            kcp_buf_append(out, ",", 1);
        kcp_buf_append(out, at, (size_t)(json + len - at));
    } else {
        /* No metadata at all: add one holding just the resourceVersion. */
        const char *at = top.insert_after ? top.insert_after : open + 1;
        struct scan after = {at, json + len};
        skip_ws(&after);
        bool empty = !top.insert_after && after.p < after.end && *after.p == '}';
        kcp_buf_append(out, json, (size_t)(at - json));
        kcp_buf_puts(out, top.insert_after ? ",\"metadata\":{\"resourceVersion\":"
                                           : "\"metadata\":{\"resourceVersion\":");
        kcp_buf_append(out, val, (size_t)n);
        kcp_buf_append(out, "}", 1);
        if (!top.insert_after && !empty)
            kcp_buf_append(out, ",", 1);
        kcp_buf_append(out, at, (size_t)(json + len - at));
    }
    return 0;
}
