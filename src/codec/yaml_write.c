/*
 * YAML output (application/yaml): block style with keys sorted, as upstream's YAML serializer
 * writes it. Strings that would read back as something else are double-quoted; YAML's double
 * quoted style takes JSON's escapes, so the JSON string writer does the quoting.
 */
#include "codec_int.h"

#include <kcp/codec.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void indent(struct kcp_buf *out, int n)
{
    static const char spaces[] = "                                                                ";
    for (; n > 0; n -= (int)sizeof(spaces) - 1)
        kcp_buf_append(out, spaces, n < (int)sizeof(spaces) - 1 ? (size_t)n : sizeof(spaces) - 1);
}

/* Whether s can be written plain and still read back as the same string. */
bool kcp_codec_yaml_plain(const char *s)
{
    static const char *const reserved[] = {"true", "false", "yes", "no", "on", "off", "null",
                                           "~", "y", "n", NULL};
    size_t n = strlen(s);
    if (n == 0 || isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]))
        return false;
    if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]))
        return false;
    for (int i = 0; n <= 5 && reserved[i]; i++) /* the longest is "false" */
        if (strcasecmp(s, reserved[i]) == 0)
            return false;
    /* strtod reads nothing from a string that does not start like a number, "inf" or "nan"
     * (the usual case: a name, a label), and it is a large share of writing a file. */
    if (strchr("0123456789+-.iInN", s[0])) {
        char *end = NULL;
        strtod(s, &end);
        if (end && *end == '\0')
            return false; /* would read as a number */
    }
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || (c == ':' && (p[1] == ' ' || !p[1])) || (c == '#' && p > s && p[-1] == ' '))
            return false;
    }
    return true;
}

static void scalar(struct kcp_buf *out, const json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (kcp_codec_yaml_plain(s))
            kcp_buf_puts(out, s);
        else
            kcp_codec_json_write(out, v);
        return;
    }
    kcp_codec_json_write(out, v); /* numbers, booleans, null: the same text in YAML */
}

/* A mapping's key: a string, as scalar writes one (without making a json_t of it). */
static void key(struct kcp_buf *out, const char *k)
{
    if (kcp_codec_yaml_plain(k)) {
        kcp_buf_puts(out, k);
        return;
    }
    json_t *s = json_string(k);
    kcp_codec_json_write(out, s);
    json_decref(s);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void node(struct kcp_buf *out, const json_t *v, int depth);

static void mapping(struct kcp_buf *out, const json_t *obj, int depth, bool first_inline)
{
    size_t n = json_object_size(obj), i = 0;
    const char **keys = kcp_calloc(n ? n : 1, sizeof(*keys));
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)obj, k, val) keys[i++] = k;
    qsort(keys, n, sizeof(*keys), key_cmp);
    for (i = 0; i < n; i++) {
        if (!(first_inline && i == 0))
            indent(out, depth * 2);
        key(out, keys[i]);
        kcp_buf_puts(out, ":");
        node(out, json_object_get(obj, keys[i]), depth + 1);
    }
    free(keys);
}

/* Writes v after "key:" (or "- "): scalars and empty containers inline, the rest below. */
static void node(struct kcp_buf *out, const json_t *v, int depth)
{
    if (json_is_object(v) && json_object_size(v)) {
        kcp_buf_puts(out, "\n");
        mapping(out, v, depth, false);
    } else if (json_is_array(v) && json_array_size(v)) {
        kcp_buf_puts(out, "\n");
        size_t i;
        json_t *item;
        /* Sequences sit at their key's indentation, as upstream writes them. */
        json_array_foreach(v, i, item) {
            indent(out, (depth - 1) * 2);
            kcp_buf_puts(out, "-");
            if (json_is_object(item) && json_object_size(item)) {
                kcp_buf_puts(out, " ");
                mapping(out, item, depth, true);
            } else {
                node(out, item, depth);
            }
        }
    } else {
        kcp_buf_puts(out, " ");
        if (json_is_object(v))
            kcp_buf_puts(out, "{}");
        else if (json_is_array(v))
            kcp_buf_puts(out, "[]");
        else
            scalar(out, v);
        kcp_buf_puts(out, "\n");
    }
}

void kcp_codec_yaml_write(struct kcp_buf *out, const json_t *v)
{
    if (json_is_object(v) && json_object_size(v))
        mapping(out, v, 0, false);
    else
        node(out, v, 0);
}
