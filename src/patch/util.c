/* Patch helpers: errors, the nesting limit, and Go's rendering of values for upstream's messages.
 */
#include "patch_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upstream prints whole maps into some messages; past this a message is cut. */
#define GO_FORMAT_MAX 65536

int patch_fail(char **out_err, int code, const char *fmt, ...)
{
    if (out_err && !*out_err) {
        struct kcp_buf b = KCP_BUF_INIT;
        va_list ap;
        va_start(ap, fmt);
        kcp_buf_vprintf(&b, fmt, ap);
        va_end(ap);
        *out_err = kcp_buf_detach(&b);
    }
    return code;
}

int patch_depth(const json_t *v, int limit)
{
    int max = 0;
    if (!json_is_object(v) && !json_is_array(v))
        return 0;
    if (limit <= 0)
        return 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach (PATCH_MUT(v), k, c) {
            int d = patch_depth(c, limit - 1);
            if (d > max)
                max = d;
            if (max >= limit)
                break;
        }
    } else {
        size_t i;
        json_t *c;
        json_array_foreach (v, i, c) {
            int d = patch_depth(c, limit - 1);
            if (d > max)
                max = d;
            if (max >= limit)
                break;
        }
    }
    return 1 + max;
}

int patch_check_depth(const json_t *v, const char *what, char **out_err)
{
    if (patch_depth(v, KCP_PATCH_MAX_DEPTH) > KCP_PATCH_MAX_DEPTH)
        return patch_fail(out_err, KCP_EBADREQUEST, "%s is nested deeper than %d levels", what,
                          KCP_PATCH_MAX_DEPTH);
    return 0;
}

bool patch_same_kind(const json_t *a, const json_t *b)
{
    if (json_is_boolean(a) && json_is_boolean(b))
        return true;
    return json_typeof(a) == json_typeof(b);
}

const char *patch_go_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "map[string]interface {}";
    case JSON_ARRAY:
        return "[]interface {}";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "int64";
    case JSON_REAL:
        return "float64";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    default:
        return NULL;
    }
}

/* strconv.FormatFloat(f, 'g', -1, 64): the shortest digits that read back as f, in %e form when
 * the exponent is below -4 or at least 6 (fmt's %v of a float64). */
static void go_float(struct kcp_buf *b, double d)
{
    char tmp[48];
    int prec;
    if (isinf(d)) {
        kcp_buf_puts(b, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    if (prec > 17)
        prec = 17;
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
    int exp = atoi(strchr(tmp, 'e') + 1);
    if (exp < -4 || exp >= 6) {
        kcp_buf_puts(b, tmp);
        return;
    }
    int decimals = prec - 1 - exp;
    kcp_buf_printf(b, "%.*f", decimals > 0 ? decimals : 0, d);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void go_format_rec(struct kcp_buf *b, const json_t *v, char verb)
{
    if (b->len > GO_FORMAT_MAX)
        return;
    switch (json_typeof(v)) {
    case JSON_STRING:
        kcp_buf_append(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        kcp_buf_printf(
            b, verb == 's' ? "%%!s(int64=%" JSON_INTEGER_FORMAT ")" : "%" JSON_INTEGER_FORMAT,
            json_integer_value(v));
        break;
    case JSON_REAL:
        if (verb == 's')
            kcp_buf_puts(b, "%!s(float64=");
        go_float(b, json_real_value(v));
        if (verb == 's')
            kcp_buf_puts(b, ")");
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        kcp_buf_printf(b, verb == 's' ? "%%!s(bool=%s)" : "%s", json_is_true(v) ? "true" : "false");
        break;
    case JSON_NULL:
        kcp_buf_puts(b, verb == 's' ? "%!s(<nil>)" : "<nil>");
        break;
    case JSON_ARRAY: {
        size_t i;
        json_t *c;
        kcp_buf_puts(b, "[");
        json_array_foreach (v, i, c) {
            if (i)
                kcp_buf_puts(b, " ");
            go_format_rec(b, c, verb);
        }
        kcp_buf_puts(b, "]");
        break;
    }
    case JSON_OBJECT: {
        /* fmt prints maps with their keys sorted */
        size_t n = json_object_size(v), i = 0;
        const char **keys = kcp_malloc((n ? n : 1) * sizeof(char *));
        const char *k;
        json_t *c;
        json_object_foreach (PATCH_MUT(v), k, c) {
            keys[i++] = k;
        }
        qsort(keys, n, sizeof(char *), cmp_key);
        kcp_buf_puts(b, "map[");
        for (i = 0; i < n; i++) {
            kcp_buf_printf(b, "%s%s:", i ? " " : "", keys[i]);
            go_format_rec(b, json_object_get(v, keys[i]), verb);
        }
        kcp_buf_puts(b, "]");
        free(keys);
        break;
    }
    }
}

void patch_go_format(struct kcp_buf *b, const json_t *v, char verb)
{
    size_t start = b->len;
    go_format_rec(b, v, verb);
    if (b->len - start > GO_FORMAT_MAX) {
        b->len = start + GO_FORMAT_MAX;
        b->data[b->len] = 0;
        kcp_buf_puts(b, "...");
    }
}

void patch_go_quote(struct kcp_buf *b, const char *s)
{
    kcp_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            kcp_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            kcp_buf_puts(b, "\\n");
        else if (*p == '\t')
            kcp_buf_puts(b, "\\t");
        else if (*p == '\r')
            kcp_buf_puts(b, "\\r");
        else if (*p < 0x20 || *p == 0x7f)
            kcp_buf_printf(b, "\\x%02x", *p);
        else
            kcp_buf_append(b, p, 1); /* UTF-8 passes through; Go would also escape invalid bytes */
    }
    kcp_buf_puts(b, "\"");
}
