/*
 * Reads back the YAML that history files hold (kcp_codec_yaml_write's block style: two-space
 * mappings, sequences at their key's indentation, plain or JSON-quoted scalars), so that
 * `kcp history restore` can send an object to the API as JSON. Not a general YAML parser.
 */
#include "history_int.h"

#include <kcp/codec.h>

#include <stdlib.h>
#include <string.h>

struct line {
    int indent;
    const char *s;
    size_t len;
};
struct reader {
    struct line *l;
    size_t n, pos;
    int depth;
};

static int node(struct reader *y, int indent, json_t **out);

static bool is_item(const struct line *l)
{
    return l->len >= 1 && l->s[0] == '-' && (l->len == 1 || l->s[1] == ' ');
}

/* Length of the JSON string literal at s (quotes included), 0 if it does not end. */
static size_t quoted_len(const char *s, size_t len)
{
    for (size_t i = 1; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

static json_t *scalar(const char *s, size_t len)
{
    if (len == 2 && memcmp(s, "{}", 2) == 0)
        return json_object();
    if (len == 2 && memcmp(s, "[]", 2) == 0)
        return json_array();
    if (len && s[0] == '"')
        return json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    /* The writer quotes every string that would read back as something else, so a plain
     * number, boolean or null is one. */
    char *text = kcp_strndup(s, len), *end = NULL;
    json_t *v = NULL;
    if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0 || strcmp(text, "null") == 0)
        v = json_loadb(s, len, JSON_DECODE_ANY, NULL);
    else if (len && (strtod(text, &end), end && *end == '\0'))
        v = json_loadb(s, len, JSON_DECODE_ANY, NULL);
    if (!v)
        v = json_stringn(s, len);
    free(text);
    return v;
}

/* Splits "key: value" / "key:" into a key and the value text (NULL when it is below). */
static int split_key(const struct line *l, json_t **out_key, const char **out_rest,
                     size_t *out_rest_len)
{
    size_t klen = 0, colon;
    if (l->s[0] == '"') {
        klen = quoted_len(l->s, l->len);
        if (!klen || klen >= l->len || l->s[klen] != ':')
            return KCP_EBADREQUEST;
        *out_key = json_loadb(l->s, klen, JSON_DECODE_ANY, NULL);
        colon = klen;
    } else {
        const char *c = NULL;
        for (size_t i = 0; i < l->len; i++)
            if (l->s[i] == ':' && (i + 1 == l->len || l->s[i + 1] == ' ')) {
                c = l->s + i;
                break;
            }
        if (!c || c == l->s)
            return KCP_EBADREQUEST;
        colon = (size_t)(c - l->s);
        *out_key = json_stringn(l->s, colon);
    }
    if (!json_is_string(*out_key)) {
        json_decref(*out_key);
        return KCP_EBADREQUEST;
    }
    *out_rest = colon + 1 < l->len ? l->s + colon + 2 : NULL;
    *out_rest_len = colon + 1 < l->len ? l->len - colon - 2 : 0;
    return 0;
}

static bool is_mapping_line(const char *s, size_t len)
{
    if (len && s[0] == '"') {
        size_t q = quoted_len(s, len);
        return q && q < len && s[q] == ':';
    }
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':' && (i + 1 == len || s[i + 1] == ' '))
            return true;
    return false;
}

/* The value below a "key:" or "-" line: deeper lines, or a sequence at the same indent. */
static int below(struct reader *y, int indent, bool seq_ok, json_t **out)
{
    if (y->pos < y->n && (y->l[y->pos].indent > indent ||
                          (seq_ok && y->l[y->pos].indent == indent && is_item(&y->l[y->pos]))))
        return node(y, y->l[y->pos].indent, out);
    *out = json_null();
    return 0;
}

static int mapping(struct reader *y, int indent, json_t **out)
{
    json_t *obj = json_object();
    int rc = 0;
    while (y->pos < y->n && y->l[y->pos].indent == indent && !is_item(&y->l[y->pos])) {
        json_t *key = NULL, *val = NULL;
        const char *rest;
        size_t rest_len;
        if ((rc = split_key(&y->l[y->pos], &key, &rest, &rest_len)) != 0)
            break;
        y->pos++;
        if (rest)
            val = scalar(rest, rest_len);
        else
            rc = below(y, indent, true, &val);
        if (rc == 0 && !val)
            rc = KCP_EBADREQUEST;
        if (rc == 0)
            json_object_set_new(obj, json_string_value(key), val);
        json_decref(key);
        if (rc != 0)
            break;
    }
    if (rc != 0) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

static int sequence(struct reader *y, int indent, json_t **out)
{
    json_t *arr = json_array(), *val = NULL;
    int rc = 0;
    while (rc == 0 && y->pos < y->n && y->l[y->pos].indent == indent && is_item(&y->l[y->pos])) {
        struct line *l = &y->l[y->pos];
        if (l->len == 1) {
            y->pos++;
            rc = below(y, indent, false, &val);
        } else if (is_mapping_line(l->s + 2, l->len - 2)) {
            /* "- key: v" opens a mapping whose keys sit two columns in. */
            l->s += 2;
            l->len -= 2;
            l->indent += 2;
            rc = mapping(y, indent + 2, &val);
        } else {
            val = scalar(l->s + 2, l->len - 2);
            y->pos++;
            rc = val ? 0 : KCP_EBADREQUEST;
        }
        if (rc == 0)
            json_array_append_new(arr, val);
    }
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static int node(struct reader *y, int indent, json_t **out)
{
    if (++y->depth > KCP_CODEC_MAX_DEPTH)
        return KCP_EBADREQUEST;
    int rc = is_item(&y->l[y->pos]) ? sequence(y, indent, out) : mapping(y, indent, out);
    y->depth--;
    return rc;
}

int kcp_history_yaml_parse(json_t **out, const char *text, size_t len)
{
    struct reader y = {0};
    size_t cap = 0;
    int rc;
    *out = NULL;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        int ind = 0;
        while (p + ind < le && p[ind] == ' ')
            ind++;
        if (p + ind < le) {
            if (y.n == cap) {
                cap = cap ? cap * 2 : 64;
                y.l = kcp_realloc(y.l, cap * sizeof(*y.l));
            }
            y.l[y.n++] = (struct line){ind, p + ind, (size_t)(le - p - ind)};
        }
        p = nl ? nl + 1 : end;
    }
    if (y.n == 0) {
        rc = KCP_EBADREQUEST;
    } else if (y.n == 1 && !is_item(&y.l[0]) && !is_mapping_line(y.l[0].s, y.l[0].len)) {
        *out = scalar(y.l[0].s, y.l[0].len);
        rc = *out ? 0 : KCP_EBADREQUEST;
    } else {
        rc = node(&y, y.l[0].indent, out);
        if (rc == 0 && y.pos != y.n) {
            json_decref(*out);
            *out = NULL;
            rc = KCP_EBADREQUEST;
        }
    }
    free(y.l);
    return rc;
}

int kcp_history_object_path(struct kcp_buf *out, const char *spec)
{
    const char *s1 = strchr(spec, '/');
    if (!s1 || s1 == spec)
        return KCP_EINVAL;
    const char *s2 = strchr(s1 + 1, '/');
    const char *name = s2 ? s2 + 1 : s1 + 1;
    if (!*name || strchr(name, '/') || (s2 && s2 == s1 + 1))
        return KCP_EINVAL;
    const char *dot = memchr(spec, '.', (size_t)(s1 - spec));
    kcp_buf_reset(out);
    if (dot)
        kcp_buf_printf(out, "%.*s/%.*s/", (int)(s1 - dot - 1), dot + 1, (int)(dot - spec), spec);
    else
        kcp_buf_printf(out, "core/%.*s/", (int)(s1 - spec), spec);
    if (s2)
        kcp_buf_printf(out, "%.*s/", (int)(s2 - s1 - 1), s1 + 1);
    else
        kcp_buf_puts(out, "_cluster/");
    kcp_buf_printf(out, "%s.yaml", name);
    return 0;
}
