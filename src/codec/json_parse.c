/* json_parse.c: JSON bodies to trees, with a nesting limit and duplicate-key reporting. */
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

/* Checks nesting depth without parsing (jansson's own limit is a compile-time 2048). */
static int depth_check(const char *p, size_t len)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > KCP_CODEC_MAX_DEPTH)
                return KCP_EBADREQUEST;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

/* A minimal scanner over text jansson already accepted, to name every repeated key. */
struct scan {
    const char *p, *end;
    struct kcp_buf path;
    json_t *dups;
};

static void scan_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static void scan_string(struct scan *s, const char **start, size_t *n)
{
    s->p++; /* opening quote */
    *start = s->p;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\')
            s->p++;
        s->p++;
    }
    *n = (size_t)(s->p - *start);
    s->p++; /* closing quote */
}

static void scan_value(struct scan *s, int depth);

static void scan_object(struct scan *s, int depth)
{
    json_t *seen = json_object();
    size_t base = s->path.len;
    s->p++;
    scan_ws(s);
    while (s->p < s->end && *s->p != '}') {
        const char *k;
        size_t n;
        scan_string(s, &k, &n);
        char *key = kcp_strndup(k, n);
        s->path.len = base;
        kcp_buf_puts(&s->path, ".");
        kcp_buf_append(&s->path, k, n);
        if (json_object_get(seen, key))
            json_array_append_new(s->dups, json_string(s->path.data));
        else
            json_object_set_new(seen, key, json_true());
        free(key);
        scan_ws(s);
        s->p++; /* ':' */
        scan_ws(s);
        scan_value(s, depth + 1);
        scan_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            scan_ws(s);
        }
    }
    s->p++;
    s->path.len = base;
    if (s->path.data)
        s->path.data[base] = '\0';
    json_decref(seen);
}

static void scan_value(struct scan *s, int depth)
{
    scan_ws(s);
    if (s->p >= s->end)
        return;
    if (*s->p == '{') {
        scan_object(s, depth);
    } else if (*s->p == '[') {
        size_t base = s->path.len;
        size_t idx = 0;
        s->p++;
        scan_ws(s);
        while (s->p < s->end && *s->p != ']') {
            s->path.len = base;
            kcp_buf_printf(&s->path, "[%zu]", idx++);
            scan_value(s, depth + 1);
            scan_ws(s);
            if (s->p < s->end && *s->p == ',')
                s->p++;
            scan_ws(s);
        }
        s->p++;
        s->path.len = base;
        if (s->path.data)
            s->path.data[base] = '\0';
    } else if (*s->p == '"') {
        const char *unused;
        size_t n;
        scan_string(s, &unused, &n);
    } else {
        /* strchr() finds the terminator too: a NUL byte (jansson accepts one after a number)
         * would stop the scan without moving. Every call moves at least one byte, so the
         * array and object loops always end. */
        const char *start = s->p;
        while (s->p < s->end && *s->p != '\0' && !strchr(",]} \t\r\n", *s->p))
            s->p++;
        if (s->p == start)
            s->p++;
    }
}

int kcp_codec_json_parse(json_t **out, const char *body, size_t len, json_t *duplicates,
                         struct kcp_codec_err *err)
{
    json_error_t jerr;
    if (depth_check(body, len) != 0)
        return codec_fail(err, KCP_EBADREQUEST, "json nesting exceeds %d levels",
                          KCP_CODEC_MAX_DEPTH);
    json_t *v = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!v && json_error_code(&jerr) == json_error_duplicate_key) {
        v = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
        if (v && duplicates) {
            struct scan s = {body, body + len, KCP_BUF_INIT, duplicates};
            kcp_buf_puts(&s.path, "");
            scan_value(&s, 0);
            kcp_buf_free(&s.path);
        }
    }
    if (!v)
        return codec_fail(err, KCP_EBADREQUEST, "invalid json at line %d, column %d: %s",
                          jerr.line, jerr.column, jerr.text);
    *out = v;
    return 0;
}
