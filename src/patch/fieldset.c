/* Field sets of server-side apply: path elements, tries, FieldsV1, ToFieldSet and Compare. */
#include "patch_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the walk: path and errors ---- */

void ssa_walk_clear(struct ssa_walk *w)
{
    w->depth = 0;
    kcp_buf_free(&w->path);
}

static int push2(struct ssa_walk *w, const char *prefix, const char *s)
{
    if (w->depth >= SSA_MAX_PATH)
        return patch_fail(w->out_err, KCP_EBADREQUEST, "the object nests deeper than %d levels",
                          KCP_PATCH_MAX_DEPTH);
    size_t at = w->depth ? w->off[w->depth - 1] + strlen(SSA_PE(w, w->depth - 1)) + 1 : 0;
    w->path.len = at;
    if (prefix)
        kcp_buf_puts(&w->path, prefix);
    kcp_buf_append(&w->path, s, strlen(s) + 1); /* with its NUL */
    w->off[w->depth++] = at;
    return 0;
}

int ssa_push(struct ssa_walk *w, const char *pe)
{
    return push2(w, NULL, pe);
}

int ssa_push_field(struct ssa_walk *w, const char *name)
{
    return push2(w, "f:", name);
}

void ssa_pop(struct ssa_walk *w)
{
    w->depth--;
}

const char *ssa_field_key(char *buf, size_t cap, const char *name, char **heap)
{
    size_t n = strlen(name);
    *heap = NULL;
    if (n + 3 <= cap) {
        buf[0] = 'f';
        buf[1] = ':';
        memcpy(buf + 2, name, n + 1);
        return buf;
    }
    *heap = kcp_sprintf("f:%s", name);
    return *heap;
}

/* Go's value.ToString of a decoded JSON value, as path elements print. */
static void value_string(struct kcp_buf *b, const json_t *v)
{
    size_t i;
    const char *k;
    json_t *x;
    switch (json_typeof(v)) {
    case JSON_STRING:
        patch_go_quote(b, json_string_value(v));
        break;
    case JSON_ARRAY:
        kcp_buf_puts(b, "[");
        json_array_foreach (PATCH_MUT(v), i, x) {
            if (i)
                kcp_buf_puts(b, ", ");
            value_string(b, x);
        }
        kcp_buf_puts(b, "]");
        break;
    case JSON_OBJECT:
        i = 0;
        kcp_buf_puts(b, "{");
        json_object_foreach (PATCH_MUT(v), k, x) {
            kcp_buf_printf(b, "%s%s=", i++ ? ", " : "", k);
            value_string(b, x);
        }
        kcp_buf_puts(b, "}");
        break;
    default:
        patch_go_format(b, v, 'v');
    }
}

/* Appends one path element as upstream prints it: ".name", "[k=v,...]", "[=v]", "[i]". */
static void render_pe(struct kcp_buf *b, const char *pe)
{
    json_t *v = NULL;
    if (pe[0] == 'f') {
        kcp_buf_printf(b, ".%s", pe + 2);
        return;
    }
    if (pe[0] == 'i') {
        kcp_buf_printf(b, "[%s]", pe + 2);
        return;
    }
    v = json_loads(pe + 2, JSON_DECODE_ANY, NULL);
    if (pe[0] == 'k' && json_is_object(v)) {
        const char *k;
        json_t *x;
        int n = 0;
        kcp_buf_puts(b, "[");
        json_object_foreach (v, k, x) {
            kcp_buf_printf(b, "%s%s=", n++ ? "," : "", k);
            value_string(b, x);
        }
        kcp_buf_puts(b, "]");
    } else if (v) {
        kcp_buf_puts(b, "[=");
        value_string(b, v);
        kcp_buf_puts(b, "]");
    } else {
        kcp_buf_printf(b, "[%s]", pe);
    }
    json_decref(v);
}

int ssa_fail(struct ssa_walk *w, int code, const char *fmt, ...)
{
    if (!w->out_err)
        return code;
    struct kcp_buf b = KCP_BUF_INIT;
    for (size_t i = 0; i < w->depth; i++)
        render_pe(&b, SSA_PE(w, i));
    if (b.len)
        kcp_buf_puts(&b, ": ");
    va_list ap;
    va_start(ap, fmt);
    kcp_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    free(*w->out_err);
    *w->out_err = kcp_buf_detach(&b);
    return code;
}

/* ---- schema ---- */

void ssa_resolve(const struct ssa_walk *w, const void *node, const json_t *v,
                 struct kcp_ssa_type *out)
{
    memset(out, 0, sizeof(*out));
    if (node && w->schema)
        w->schema->type(node, out);
    if (out->kind == KCP_SSA_DEDUCED) {
        /* structured-merge-diff's deduced type: maps granular, lists atomic. */
        memset(out, 0, sizeof(*out));
        if (json_is_object(v)) {
            out->kind = KCP_SSA_MAP;
        } else if (json_is_array(v)) {
            out->kind = KCP_SSA_LIST;
            out->atomic = true;
        } else {
            out->kind = KCP_SSA_SCALAR;
        }
        return;
    }
    /* A value that does not fit its type is owned as a whole (JSON null fits anything). */
    if (v && !json_is_null(v)) {
        bool obj = out->kind == KCP_SSA_STRUCT || out->kind == KCP_SSA_MAP;
        if ((obj && !json_is_object(v)) || (out->kind == KCP_SSA_LIST && !json_is_array(v)) ||
            (out->kind == KCP_SSA_SCALAR && (json_is_object(v) || json_is_array(v)))) {
            memset(out, 0, sizeof(*out));
            out->kind = KCP_SSA_SCALAR;
        }
    }
}

const void *ssa_field_node(const struct ssa_walk *w, const void *node, const struct kcp_ssa_type *t,
                           const char *name, bool *out_declared)
{
    const void *f = NULL;
    if (node && w->schema && (t->kind == KCP_SSA_STRUCT || t->kind == KCP_SSA_MAP))
        f = w->schema->field(node, name);
    *out_declared = f && t->kind == KCP_SSA_STRUCT;
    return f;
}

const void *ssa_items_node(const struct ssa_walk *w, const void *node)
{
    return node && w->schema ? w->schema->items(node) : NULL;
}

/* ---- path elements ---- */

/* encoding/json's rendering of a scalar (strings HTML-escaped), as upstream writes keys. */
static void json_scalar(struct kcp_buf *b, const json_t *v)
{
    static const char hex[] = "0123456789abcdef";
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const unsigned char *p = (const unsigned char *)json_string_value(v);
        size_t n = json_string_length(v);
        kcp_buf_puts(b, "\"");
        for (size_t i = 0; i < n; i++) {
            unsigned char c = p[i];
            if (c == '"' || c == '\\') {
                char e[2] = {'\\', (char)c};
                kcp_buf_append(b, e, 2);
            } else if (c == '\n') {
                kcp_buf_puts(b, "\\n");
            } else if (c == '\r') {
                kcp_buf_puts(b, "\\r");
            } else if (c == '\t') {
                kcp_buf_puts(b, "\\t");
            } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                kcp_buf_append(b, e, 6);
            } else if (c == 0xe2 && i + 2 < n && p[i + 1] == 0x80 &&
                       (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
                kcp_buf_puts(b, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
                i += 2;
            } else {
                kcp_buf_append(b, &c, 1);
            }
        }
        kcp_buf_puts(b, "\"");
        break;
    }
    case JSON_INTEGER:
        kcp_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        /* The shortest form that reads back, as Go's strconv does. */
        char s[40];
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(s, sizeof(s), "%.*g", prec, json_real_value(v));
            if (strtod(s, NULL) == json_real_value(v))
                break;
        }
        kcp_buf_puts(b, s);
        break;
    }
    case JSON_TRUE:
        kcp_buf_puts(b, "true");
        break;
    case JSON_FALSE:
        kcp_buf_puts(b, "false");
        break;
    case JSON_NULL:
        kcp_buf_puts(b, "null");
        break;
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        kcp_buf_puts(b, "[");
        json_array_foreach (PATCH_MUT(v), i, x) {
            if (i)
                kcp_buf_puts(b, ",");
            json_scalar(b, x);
        }
        kcp_buf_puts(b, "]");
        break;
    }
    case JSON_OBJECT: {
        /* Go writes map keys sorted. */
        size_t n = json_object_size(v), i = 0;
        const char **keys = kcp_calloc(n ? n : 1, sizeof(*keys));
        const char *k;
        json_t *x;
        json_object_foreach (PATCH_MUT(v), k, x)
            keys[i++] = k;
        for (size_t a = 1; a < n; a++)
            for (size_t c = a; c > 0 && strcmp(keys[c - 1], keys[c]) > 0; c--) {
                const char *t = keys[c];
                keys[c] = keys[c - 1];
                keys[c - 1] = t;
            }
        kcp_buf_puts(b, "{");
        for (i = 0; i < n; i++) {
            json_t *name = json_string(keys[i]);
            if (i)
                kcp_buf_puts(b, ",");
            json_scalar(b, name);
            json_decref(name);
            kcp_buf_puts(b, ":");
            json_scalar(b, json_object_get(v, keys[i]));
        }
        kcp_buf_puts(b, "}");
        free(keys);
        break;
    }
    }
}

int ssa_item_pe(struct ssa_walk *w, const void *node, const struct kcp_ssa_type *t,
                const json_t *item, size_t index, struct kcp_buf *out)
{
    kcp_buf_reset(out);
    if (t->nkeys == 0) {
        if (json_is_object(item))
            return ssa_fail(w, KCP_EBADREQUEST,
                            "element %zu: associative list without keys has an "
                            "element that's a map type",
                            index);
        if (json_is_array(item))
            return ssa_fail(w, KCP_EBADREQUEST,
                            "element %zu: not supported: associative list "
                            "with lists as elements",
                            index);
        kcp_buf_puts(out, "v:");
        json_scalar(out, item);
        return 0;
    }
    if (json_is_null(item))
        return ssa_fail(w, KCP_EBADREQUEST,
                        "element %zu: associative list with keys may not "
                        "have a null element",
                        index);
    if (!json_is_object(item))
        return ssa_fail(w, KCP_EBADREQUEST,
                        "element %zu: associative list with keys may not "
                        "have non-map elements",
                        index);
    /* The key fields sorted by name, as upstream's FieldList. */
    size_t order[KCP_SSA_MAX_KEYS];
    for (size_t i = 0; i < t->nkeys; i++)
        order[i] = i;
    for (size_t a = 1; a < t->nkeys; a++)
        for (size_t c = a; c > 0 && strcmp(t->keys[order[c - 1]], t->keys[order[c]]) > 0; c--) {
            size_t x = order[c];
            order[c] = order[c - 1];
            order[c - 1] = x;
        }
    kcp_buf_puts(out, "k:{");
    for (size_t i = 0; i < t->nkeys; i++) {
        const char *name = t->keys[order[i]];
        json_t *v = json_incref(json_object_get(item, name));
        if (!v && node && w->schema && w->schema->key_default)
            v = w->schema->key_default(node, name);
        if (!v)
            return ssa_fail(w, KCP_EBADREQUEST,
                            "element %zu: associative list with keys has an "
                            "element that omits key field \"%s\" (and doesn't have default value)",
                            index, name);
        json_t *jn = json_string(name);
        if (i)
            kcp_buf_puts(out, ",");
        json_scalar(out, jn);
        kcp_buf_puts(out, ":");
        json_scalar(out, v);
        json_decref(jn);
        json_decref(v);
    }
    kcp_buf_puts(out, "}");
    return 0;
}

/* structured-merge-diff's value.Compare: a total order over JSON values. */
static int value_compare(const json_t *l, const json_t *r)
{
#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)
    if (json_is_real(l) || json_is_real(r)) {
        if (json_is_number(l) && json_is_number(r))
            return CMP(json_number_value(l), json_number_value(r));
        return json_is_real(l) ? -1 : 1;
    }
    if (json_is_integer(l) || json_is_integer(r)) {
        if (json_is_integer(l) && json_is_integer(r))
            return CMP(json_integer_value(l), json_integer_value(r));
        return json_is_integer(l) ? -1 : 1;
    }
    if (json_is_string(l) || json_is_string(r)) {
        if (json_is_string(l) && json_is_string(r)) {
            int c = strcmp(json_string_value(l), json_string_value(r));
            return CMP(c, 0);
        }
        return json_is_string(l) ? -1 : 1;
    }
    if (json_is_boolean(l) || json_is_boolean(r)) {
        if (json_is_boolean(l) && json_is_boolean(r))
            return CMP(json_is_true(l), json_is_true(r));
        return json_is_boolean(l) ? -1 : 1;
    }
    if (json_is_array(l) || json_is_array(r)) {
        if (!(json_is_array(l) && json_is_array(r)))
            return json_is_array(l) ? -1 : 1;
        size_t n = json_array_size(l), m = json_array_size(r);
        for (size_t i = 0; i < n && i < m; i++) {
            int c = value_compare(json_array_get(l, i), json_array_get(r, i));
            if (c)
                return c;
        }
        return CMP(n, m);
    }
    if (json_is_object(l) || json_is_object(r)) {
        if (!(json_is_object(l) && json_is_object(r)))
            return json_is_object(l) ? -1 : 1;
        struct kcp_buf a = KCP_BUF_INIT, b = KCP_BUF_INIT;
        json_scalar(&a, l);
        json_scalar(&b, r);
        int c = strcmp(a.data, b.data);
        kcp_buf_free(&a);
        kcp_buf_free(&b);
        return CMP(c, 0);
    }
    return 0;
#undef CMP
}

static int pe_rank(const char *pe)
{
    switch (pe[0]) {
    case 'f':
        return 0;
    case 'k':
        return 1;
    case 'v':
        return 2;
    case 'i':
        return 3;
    default:
        return 4;
    }
}

int ssa_pe_compare(const char *a, const char *b)
{
    int ra = pe_rank(a), rb = pe_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (ra == 0 || ra == 4) {
        int c = strcmp(a, b);
        return c < 0 ? -1 : c > 0;
    }
    if (ra == 3) {
        long x = strtol(a + 2, NULL, 10), y = strtol(b + 2, NULL, 10);
        return x < y ? -1 : x > y;
    }
    json_t *x = json_loads(a + 2, JSON_DECODE_ANY, NULL),
           *y = json_loads(b + 2, JSON_DECODE_ANY, NULL);
    int c = 0;
    if (ra == 1 && json_is_object(x) && json_is_object(y)) {
        /* FieldList.Compare: name, then value, field by field (both sorted by name). */
        void *ix = json_object_iter(x), *iy = json_object_iter(y);
        while (c == 0) {
            if (!ix || !iy) {
                c = ix ? 1 : iy ? -1 : 0;
                break;
            }
            int s = strcmp(json_object_iter_key(ix), json_object_iter_key(iy));
            c = s < 0 ? -1 : s > 0;
            if (c == 0)
                c = value_compare(json_object_iter_value(ix), json_object_iter_value(iy));
            ix = json_object_iter_next(x, ix);
            iy = json_object_iter_next(y, iy);
        }
    } else if (x && y) {
        c = value_compare(x, y);
    } else {
        int s = strcmp(a, b);
        c = s < 0 ? -1 : s > 0;
    }
    json_decref(x);
    json_decref(y);
    return c;
}

/* ---- tries ---- */

json_t *ssa_set_new(void)
{
    return json_object();
}

bool ssa_set_member(const json_t *s)
{
    return s && json_object_get(s, SSA_SELF) != NULL;
}

bool ssa_set_has_children(const json_t *s)
{
    return s && json_object_size(s) > (ssa_set_member(s) ? 1u : 0u);
}

bool ssa_set_empty(const json_t *s)
{
    return !s || json_object_size(s) == 0;
}

void ssa_set_insert(json_t *s, const struct ssa_walk *w)
{
    for (size_t i = 0; i < w->depth; i++) {
        json_t *c = json_object_get(s, SSA_PE(w, i));
        if (!c) {
            c = json_object();
            json_object_set_new(s, SSA_PE(w, i), c);
        }
        s = c;
    }
    json_object_set_new(s, SSA_SELF, json_null());
}

/* Set operations share untouched subtrees between their inputs and results: a trie node is
 * never modified once another set refers to it (only the walks' fresh sets grow). */
json_t *ssa_set_union(const json_t *a, const json_t *b)
{
    if (ssa_set_empty(a))
        return b ? json_incref(PATCH_MUT(b)) : json_object();
    if (ssa_set_empty(b) || a == b)
        return json_incref(PATCH_MUT(a));
    json_t *out = json_copy(PATCH_MUT(a));
    const char *k;
    json_t *v;
    json_object_foreach (PATCH_MUT(b), k, v) {
        if (strcmp(k, SSA_SELF) == 0) {
            json_object_set_new(out, SSA_SELF, json_null());
            continue;
        }
        json_t *av = json_object_get(a, k);
        if (av != v)
            json_object_set_new(out, k, ssa_set_union(av, v));
    }
    return out;
}

json_t *ssa_set_difference(const json_t *a, const json_t *b)
{
    if (ssa_set_empty(b))
        return a ? json_incref(PATCH_MUT(a)) : json_object();
    json_t *out = json_object();
    const char *k;
    json_t *v;
    if (a == b)
        return out;
    json_object_foreach (PATCH_MUT(a), k, v) {
        if (strcmp(k, SSA_SELF) == 0) {
            if (!ssa_set_member(b))
                json_object_set_new(out, SSA_SELF, json_null());
            continue;
        }
        json_t *bv = json_object_get(b, k);
        if (!bv) {
            json_object_set(out, k, v);
            continue;
        }
        json_t *d = ssa_set_difference(v, bv);
        if (json_object_size(d))
            json_object_set_new(out, k, d);
        else
            json_decref(d);
    }
    return out;
}

json_t *ssa_set_intersection(const json_t *a, const json_t *b)
{
    if (a == b && a)
        return json_incref(PATCH_MUT(a));
    json_t *out = json_object();
    const char *k;
    json_t *v;
    if (!b)
        return out;
    json_object_foreach (PATCH_MUT(a), k, v) {
        if (strcmp(k, SSA_SELF) == 0) {
            if (ssa_set_member(b))
                json_object_set_new(out, SSA_SELF, json_null());
            continue;
        }
        json_t *bv = json_object_get(b, k);
        if (!bv)
            continue;
        json_t *d = ssa_set_intersection(v, bv);
        if (json_object_size(d))
            json_object_set_new(out, k, d);
        else
            json_decref(d);
    }
    return out;
}

json_t *ssa_set_recursive_difference(const json_t *a, const json_t *b)
{
    if (ssa_set_empty(b))
        return a ? json_incref(PATCH_MUT(a)) : json_object();
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach (PATCH_MUT(a), k, v) {
        if (strcmp(k, SSA_SELF) == 0) {
            json_object_set_new(out, SSA_SELF, json_null());
            continue;
        }
        json_t *bv = json_object_get(b, k);
        if (ssa_set_member(bv))
            continue;
        if (!bv) {
            json_object_set(out, k, v);
            continue;
        }
        json_t *d = ssa_set_recursive_difference(v, bv);
        if (json_object_size(d))
            json_object_set_new(out, k, d);
        else
            json_decref(d);
    }
    return out;
}

/* The child keys of a trie node, sorted as upstream orders path elements. */
static const char **sorted_children(const json_t *s, size_t *out_n)
{
    size_t n = 0;
    const char **keys = kcp_calloc(json_object_size(s) + 1, sizeof(*keys));
    const char *k;
    json_t *v;
    json_object_foreach (PATCH_MUT(s), k, v) {
        if (strcmp(k, SSA_SELF) != 0)
            keys[n++] = k;
    }
    /* Insertion sort keeps this simple; a node rarely has more than a few dozen children, and
     * a list of thousands sorts once per encoding. */
    if (n > 64) {
        /* Merge sort for large nodes. */
        const char **tmp = kcp_calloc(n, sizeof(*tmp));
        for (size_t width = 1; width < n; width *= 2) {
            for (size_t lo = 0; lo < n; lo += 2 * width) {
                size_t mid = lo + width < n ? lo + width : n;
                size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
                size_t i = lo, j = mid, o = lo;
                while (i < mid && j < hi)
                    tmp[o++] = ssa_pe_compare(keys[j], keys[i]) < 0 ? keys[j++] : keys[i++];
                while (i < mid)
                    tmp[o++] = keys[i++];
                while (j < hi)
                    tmp[o++] = keys[j++];
            }
            memcpy(keys, tmp, n * sizeof(*keys));
        }
        free(tmp);
    } else {
        for (size_t a = 1; a < n; a++)
            for (size_t c = a; c > 0 && ssa_pe_compare(keys[c - 1], keys[c]) > 0; c--) {
                const char *t = keys[c];
                keys[c] = keys[c - 1];
                keys[c - 1] = t;
            }
    }
    *out_n = n;
    return keys;
}

json_t *ssa_set_to_v1(const json_t *s)
{
    json_t *out = json_object();
    size_t n;
    const char **keys = sorted_children(s, &n);
    if (n && ssa_set_member(s))
        json_object_set_new(out, SSA_SELF, json_object());
    for (size_t i = 0; i < n; i++)
        json_object_set_new(out, keys[i], ssa_set_to_v1(json_object_get(s, keys[i])));
    free(keys);
    return out;
}

static int from_v1(json_t **out, const json_t *v1, char **out_err, int depth)
{
    if (!json_is_object(v1))
        return patch_fail(out_err, KCP_EBADREQUEST, "fieldsV1: expected an object");
    if (depth > SSA_MAX_PATH)
        return patch_fail(out_err, KCP_EBADREQUEST, "fieldsV1: nested too deeply");
    json_t *s = json_object();
    const char *k;
    json_t *v;
    struct kcp_buf pe = KCP_BUF_INIT;
    int rc = 0;
    if (json_object_size(v1) == 0)
        json_object_set_new(s, SSA_SELF, json_null());
    json_object_foreach (PATCH_MUT(v1), k, v) {
        if (strcmp(k, SSA_SELF) == 0) {
            json_object_set_new(s, SSA_SELF, json_null());
            continue;
        }
        kcp_buf_reset(&pe);
        if (k[0] && k[1] == ':' && (k[0] == 'k' || k[0] == 'v')) {
            /* Canonical form, so equal elements are equal keys. */
            json_t *x = json_loads(k + 2, JSON_DECODE_ANY, NULL);
            if (!x || (k[0] == 'k' && !json_is_object(x))) {
                json_decref(x);
                rc = patch_fail(out_err, KCP_EBADREQUEST, "fieldsV1: malformed path element %s", k);
                break;
            }
            kcp_buf_printf(&pe, "%c:", k[0]);
            json_scalar(&pe, x);
            json_decref(x);
        } else if (k[0] && k[1] == ':' && (k[0] == 'f' || k[0] == 'i')) {
            kcp_buf_puts(&pe, k);
        } else {
            rc = patch_fail(out_err, KCP_EBADREQUEST, "fieldsV1: unknown path element %s", k);
            break;
        }
        json_t *child = NULL;
        rc = from_v1(&child, v, out_err, depth + 1);
        if (rc)
            break;
        json_t *had = json_object_get(s, pe.data);
        if (had) {
            json_t *u = ssa_set_union(had, child);
            json_decref(child);
            child = u;
        }
        json_object_set_new(s, pe.data, child);
    }
    kcp_buf_free(&pe);
    if (rc) {
        json_decref(s);
        return rc;
    }
    *out = s;
    return 0;
}

int ssa_set_from_v1(json_t **out, const json_t *v1, char **out_err)
{
    *out = NULL;
    int rc = from_v1(out, v1, out_err, 0);
    if (rc == 0 && json_object_size(v1) == 0) /* an empty set, not a member root */
        json_object_del(*out, SSA_SELF);
    return rc;
}

static void iterate(const json_t *s, struct kcp_buf *path, void (*fn)(const char *, void *),
                    void *data)
{
    size_t n, base = path->len;
    const char **keys = sorted_children(s, &n);
    for (size_t i = 0; i < n; i++) {
        if (!ssa_set_member(json_object_get(s, keys[i])))
            continue;
        render_pe(path, keys[i]);
        fn(path->data, data);
        path->len = base;
        path->data[base] = '\0';
    }
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_object_get(s, keys[i]);
        if (!ssa_set_has_children(c))
            continue;
        render_pe(path, keys[i]);
        iterate(c, path, fn, data);
        path->len = base;
        path->data[base] = '\0';
    }
    free(keys);
}

void ssa_set_iterate(const json_t *s, void (*fn)(const char *path, void *data), void *data)
{
    struct kcp_buf path = KCP_BUF_INIT;
    kcp_buf_puts(&path, "");
    iterate(s, &path, fn, data);
    kcp_buf_free(&path);
}

/* ---- ToFieldSet ---- */

int ssa_to_set(struct ssa_walk *w, json_t *set, const json_t *v, const void *node)
{
    struct kcp_ssa_type t;
    ssa_resolve(w, node, v, &t);
    int rc = 0;
    switch (t.kind) {
    case KCP_SSA_LIST: {
        if (t.atomic) {
            ssa_set_insert(set, w);
            break;
        }
        const void *inode = ssa_items_node(w, node);
        struct kcp_buf pe = KCP_BUF_INIT;
        json_t *seen = w->check_dups ? json_object() : NULL;
        size_t i;
        json_t *item;
        json_array_foreach (PATCH_MUT(v), i, item) {
            if ((rc = ssa_item_pe(w, node, &t, item, i, &pe)) != 0)
                break;
            if (seen) {
                if (json_object_get(seen, pe.data)) {
                    struct kcp_buf shown = KCP_BUF_INIT;
                    render_pe(&shown, pe.data);
                    rc = ssa_fail(w, KCP_EBADREQUEST, "duplicate entries for key %s", shown.data);
                    kcp_buf_free(&shown);
                    break;
                }
                json_object_set_new(seen, pe.data, json_true());
            }
            if ((rc = ssa_push(w, pe.data)) != 0)
                break;
            rc = ssa_to_set(w, set, item, inode);
            if (rc == 0)
                ssa_set_insert(set, w);
            ssa_pop(w);
            if (rc)
                break;
        }
        json_decref(seen);
        kcp_buf_free(&pe);
        break;
    }
    case KCP_SSA_STRUCT:
    case KCP_SSA_MAP: {
        if (t.atomic) {
            ssa_set_insert(set, w);
            break;
        }
        const char *k;
        json_t *x;
        json_object_foreach (PATCH_MUT(v), k, x) {
            bool declared;
            const void *fnode = ssa_field_node(w, node, &t, k, &declared);
            if ((rc = ssa_push_field(w, k)) != 0)
                break;
            rc = ssa_to_set(w, set, x, fnode);
            if (rc == 0 &&
                (json_is_null(x) || (json_is_object(x) && json_object_size(x) == 0) || !declared))
                ssa_set_insert(set, w);
            ssa_pop(w);
            if (rc)
                break;
        }
        break;
    }
    default:
        ssa_set_insert(set, w);
    }
    return rc;
}

/* ---- Compare ---- */

static void cmp_leaf(struct ssa_walk *w, struct ssa_cmp *c, const json_t *l, const json_t *r)
{
    if (!l)
        ssa_set_insert(c->added, w);
    else if (!r)
        ssa_set_insert(c->removed, w);
    else if (!json_equal(PATCH_MUT(l), PATCH_MUT(r)))
        ssa_set_insert(c->modified, w);
}

/* Items of a list by path element: each a JSON array of the items with that element. */
static int index_items(struct ssa_walk *w, const json_t *list, const void *node,
                       const struct kcp_ssa_type *t, json_t *idx, json_t *order)
{
    struct kcp_buf pe = KCP_BUF_INIT;
    size_t i;
    json_t *item;
    int rc = 0;
    json_array_foreach (PATCH_MUT(list), i, item) {
        if ((rc = ssa_item_pe(w, node, t, item, i, &pe)) != 0)
            break;
        json_t *same = json_object_get(idx, pe.data);
        if (!same) {
            same = json_array();
            json_object_set_new(idx, pe.data, same);
            json_array_append_new(order, json_string(pe.data));
        }
        json_array_append(same, item);
    }
    kcp_buf_free(&pe);
    return rc;
}

static int cmp_list(struct ssa_walk *w, struct ssa_cmp *c, const json_t *l, const json_t *r,
                    const void *node, const struct kcp_ssa_type *t)
{
    json_t *li = json_object(), *ri = json_object(), *order = json_array();
    const void *inode = ssa_items_node(w, node);
    int rc = 0;
    if (l)
        rc = index_items(w, l, node, t, li, order);
    if (rc == 0 && r)
        rc = index_items(w, r, node, t, ri, order);
    json_t *done = json_object();
    size_t i;
    json_t *pev;
    json_array_foreach (order, i, pev) {
        if (rc)
            break;
        const char *pe = json_string_value(pev);
        if (json_object_get(done, pe))
            continue;
        json_object_set_new(done, pe, json_true());
        json_t *ll = json_object_get(li, pe), *rl = json_object_get(ri, pe);
        size_t nl = json_array_size(ll), nr = json_array_size(rl);
        if ((rc = ssa_push(w, pe)) != 0)
            break;
        if (nl <= 1 && nr <= 1)
            rc = ssa_compare(w, c, json_array_get(ll, 0), json_array_get(rl, 0), inode);
        else if (nl >= 2 && nr >= 2 && json_equal(ll, rl))
            ; /* the same duplicates before and after */
        else
            cmp_leaf(w, c, nl ? ll : NULL, nr ? rl : NULL); /* duplicates changed: as a whole */
        ssa_pop(w);
    }
    json_decref(done);
    json_decref(li);
    json_decref(ri);
    json_decref(order);
    return rc;
}

int ssa_compare(struct ssa_walk *w, struct ssa_cmp *c, const json_t *l, const json_t *r,
                const void *node)
{
    struct kcp_ssa_type t;
    ssa_resolve(w, node, r ? r : l, &t);
    bool leaf = false;
    int rc = 0;
    switch (t.kind) {
    case KCP_SSA_LIST: {
        const json_t *la = json_is_array(l) ? l : NULL, *ra = json_is_array(r) ? r : NULL;
        if (t.atomic || (json_array_size(la) == 0 && json_array_size(ra) == 0)) {
            leaf = true;
            cmp_leaf(w, c, l, r);
            break;
        }
        rc = cmp_list(w, c, la, ra, node, &t);
        break;
    }
    case KCP_SSA_STRUCT:
    case KCP_SSA_MAP: {
        const json_t *lo = json_is_object(l) ? l : NULL, *ro = json_is_object(r) ? r : NULL;
        if (t.atomic || (json_object_size(lo) == 0 && json_object_size(ro) == 0)) {
            leaf = true;
            cmp_leaf(w, c, l, r);
            break;
        }
        const char *k;
        json_t *x;
        json_object_foreach (PATCH_MUT(lo), k, x) {
            bool declared;
            const void *fnode = ssa_field_node(w, node, &t, k, &declared);
            if ((rc = ssa_push_field(w, k)) != 0)
                break;
            rc = ssa_compare(w, c, x, ro ? json_object_get(ro, k) : NULL, fnode);
            ssa_pop(w);
            if (rc)
                break;
        }
        if (rc)
            break;
        json_object_foreach (PATCH_MUT(ro), k, x) {
            if (lo && json_object_get(lo, k))
                continue;
            bool declared;
            const void *fnode = ssa_field_node(w, node, &t, k, &declared);
            if ((rc = ssa_push_field(w, k)) != 0)
                break;
            rc = ssa_compare(w, c, NULL, x, fnode);
            ssa_pop(w);
            if (rc)
                break;
        }
        break;
    }
    default:
        leaf = true;
        cmp_leaf(w, c, l, r);
    }
    if (rc == 0 && !leaf && w->depth > 0) {
        if (!l)
            ssa_set_insert(c->added, w);
        else if (!r)
            ssa_set_insert(c->removed, w);
    }
    return rc;
}
