/*
 * history_render without jansson, for the JSON the API writes: parsing a value into a jansson
 * tree, deleting two fields and writing the tree as YAML was 40% of recording an update
 * (jansson's lexer copies a byte at a time, every key goes through a hash table, every node is
 * a malloc). This reads the text into an array of nodes and writes the YAML from it, byte for
 * byte what history_render_json writes (unit test test_render_fast compares them on generated
 * documents): the same key order, and the same quoting through the codec's own functions.
 *
 * It takes a subset of JSON and gives up (false) on anything else, which then goes the slow
 * way: strings of ASCII without \u escapes, integers of up to 18 digits other than -0 (jansson
 * reads reals and big integers as numbers and writes them back its own way), nesting up to 64,
 * no duplicate keys, an object at the top. Invalid JSON is outside the subset too, so it gets
 * the slow path's answer (KCP_EINVALID).
 */
#include "history_int.h"

#include <kcp/codec.h>

#include <stdlib.h>
#include <string.h>

#define MAX_NEST 64

enum jkind { J_OBJ, J_ARR, J_STR, J_LIT };

struct jnode {
    enum jkind kind;
    const char *key; /* an object's member: its key, NUL-terminated in the pool */
    const char *s;   /* J_STR: unescaped, NUL-terminated in the pool; J_LIT: its text */
    uint32_t n;      /* J_STR, J_LIT: bytes; containers: children */
    uint32_t kids;   /* containers: where their children start in kids[] */
};

struct jparse {
    const char *p, *end;
    char *pool; /* strings unescaped, each NUL-terminated: never more than twice the input */
    size_t pool_len;
    struct jnode *nodes;
    size_t nn, ncap;
    uint32_t *kids; /* each container's children, contiguous */
    size_t nk, kcap;
    uint32_t *stack; /* the children of the containers being read */
    size_t ns, scap;
};

static void ws(struct jparse *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool eat(struct jparse *j, char c)
{
    ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

/* The string after an opening quote, into the pool; NULL outside the subset. */
static const char *string(struct jparse *j, uint32_t *len)
{
    char *out = j->pool + j->pool_len, *o = out;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"') {
            *o = '\0';
            *len = (uint32_t)(o - out);
            j->pool_len += (size_t)(o - out) + 1;
            return out;
        }
        if (c < 0x20 || c >= 0x80)
            return NULL; /* invalid, or UTF-8 that jansson checks its own way */
        if (c == '\\') {
            if (j->p >= j->end)
                return NULL;
            switch (*j->p++) {
            case '"':
                c = '"';
                break;
            case '\\':
                c = '\\';
                break;
            case '/':
                c = '/';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            default:
                return NULL; /* \u: UTF-16 surrogates and NULs, jansson's rules */
            }
        }
        *o++ = (char)c;
    }
    return NULL;
}

static uint32_t node_new(struct jparse *j, enum jkind kind)
{
    if (j->nn == j->ncap) {
        j->ncap = j->ncap ? j->ncap * 2 : 64;
        j->nodes = kcp_realloc(j->nodes, j->ncap * sizeof(*j->nodes));
    }
    j->nodes[j->nn] = (struct jnode){.kind = kind};
    return (uint32_t)j->nn++;
}

static void push(struct jparse *j, uint32_t v)
{
    if (j->ns == j->scap) {
        j->scap = j->scap ? j->scap * 2 : 64;
        j->stack = kcp_realloc(j->stack, j->scap * sizeof(*j->stack));
    }
    j->stack[j->ns++] = v;
}

/* Moves the children read since base from the stack to kids[], as container c's. */
static void adopt(struct jparse *j, uint32_t c, size_t base)
{
    size_t n = j->ns - base;
    if (j->nk + n > j->kcap) {
        j->kcap = (j->nk + n) * 2;
        j->kids = kcp_realloc(j->kids, j->kcap * sizeof(*j->kids));
    }
    if (n) /* an empty container may come before any array exists */
        memcpy(j->kids + j->nk, j->stack + base, n * sizeof(*j->kids));
    j->nodes[c].kids = (uint32_t)j->nk;
    j->nodes[c].n = (uint32_t)n;
    j->nk += n;
    j->ns = base;
}

static int key_cmp(const void *a, const void *b, void *ctx)
{
    const struct jnode *nodes = ctx;
    return strcmp(nodes[*(const uint32_t *)a].key, nodes[*(const uint32_t *)b].key);
}

static uint32_t value(struct jparse *j, int depth);

static uint32_t object(struct jparse *j, int depth)
{
    uint32_t c = node_new(j, J_OBJ);
    size_t base = j->ns;
    if (!eat(j, '}')) {
        do {
            uint32_t klen, v;
            const char *key;
            if (!eat(j, '"') || !(key = string(j, &klen)) || !eat(j, ':') ||
                (v = value(j, depth + 1)) == UINT32_MAX)
                return UINT32_MAX;
            j->nodes[v].key = key;
            push(j, v);
        } while (eat(j, ','));
        if (!eat(j, '}'))
            return UINT32_MAX;
    }
    adopt(j, c, base);
    /* YAML's order; two equal keys next to each other are a duplicate, which jansson refuses. */
    uint32_t n = j->nodes[c].n, *k = n ? j->kids + j->nodes[c].kids : NULL;
    if (n > 1)
        qsort_r(k, n, sizeof(*k), key_cmp, j->nodes);
    for (uint32_t i = 1; i < n; i++)
        if (strcmp(j->nodes[k[i - 1]].key, j->nodes[k[i]].key) == 0)
            return UINT32_MAX;
    return c;
}

static uint32_t array(struct jparse *j, int depth)
{
    uint32_t c = node_new(j, J_ARR);
    size_t base = j->ns;
    if (!eat(j, ']')) {
        do {
            uint32_t v = value(j, depth + 1);
            if (v == UINT32_MAX)
                return UINT32_MAX;
            push(j, v);
        } while (eat(j, ','));
        if (!eat(j, ']'))
            return UINT32_MAX;
    }
    adopt(j, c, base);
    return c;
}

static uint32_t literal(struct jparse *j)
{
    const char *s = j->p;
    size_t left = (size_t)(j->end - s), n = 0;
    if (*s == '-' || (*s >= '0' && *s <= '9')) {
        size_t digits = 0;
        n = *s == '-';
        while (n < left && s[n] >= '0' && s[n] <= '9')
            n++, digits++;
        /* Only what jansson writes back as it reads it: no real, no -0, no 19-digit integer. */
        if (!digits || digits > 18 || (s[n - digits] == '0' && (digits > 1 || *s == '-')) ||
            (n < left && (s[n] == '.' || s[n] == 'e' || s[n] == 'E')))
            return UINT32_MAX;
    } else if (left >= 4 && (memcmp(s, "true", 4) == 0 || memcmp(s, "null", 4) == 0)) {
        n = 4;
    } else if (left >= 5 && memcmp(s, "false", 5) == 0) {
        n = 5;
    } else {
        return UINT32_MAX;
    }
    uint32_t v = node_new(j, J_LIT);
    j->nodes[v].s = s;
    j->nodes[v].n = (uint32_t)n;
    j->p += n;
    return v;
}

static uint32_t value(struct jparse *j, int depth)
{
    ws(j);
    if (j->p >= j->end || depth > MAX_NEST)
        return UINT32_MAX;
    char c = *j->p;
    if (c == '{' || c == '[' || c == '"')
        j->p++;
    if (c == '{')
        return object(j, depth);
    if (c == '[')
        return array(j, depth);
    if (c != '"')
        return literal(j);
    uint32_t len;
    const char *s = string(j, &len);
    if (!s)
        return UINT32_MAX;
    uint32_t v = node_new(j, J_STR);
    j->nodes[v].s = s;
    j->nodes[v].n = len;
    return v;
}

/* The member key of object o, or UINT32_MAX; *at: its position among o's children. */
static uint32_t member(const struct jparse *j, uint32_t o, const char *key, uint32_t *at)
{
    const struct jnode *n = &j->nodes[o];
    for (uint32_t i = 0; n->kind == J_OBJ && i < n->n; i++)
        if (strcmp(j->nodes[j->kids[n->kids + i]].key, key) == 0) {
            *at = i;
            return j->kids[n->kids + i];
        }
    return UINT32_MAX;
}

static void drop(struct jparse *j, uint32_t o, const char *key)
{
    uint32_t at;
    if (member(j, o, key, &at) == UINT32_MAX)
        return;
    struct jnode *n = &j->nodes[o];
    memmove(j->kids + n->kids + at, j->kids + n->kids + at + 1, (n->n - at - 1) * sizeof(*j->kids));
    n->n--;
}

/* ---- YAML, as kcp_codec_yaml_write writes it -------------------------------------------- */

static void indent(struct kcp_buf *out, int n)
{
    static const char spaces[] = "                                                                ";
    for (; n > 0; n -= (int)sizeof(spaces) - 1)
        kcp_buf_append(out, spaces, n < (int)sizeof(spaces) - 1 ? (size_t)n : sizeof(spaces) - 1);
}

static void str_out(struct kcp_buf *out, const char *s, size_t n)
{
    if (kcp_codec_yaml_plain(s))
        kcp_buf_append(out, s, n);
    else
        kcp_codec_json_string(out, s, n);
}

static void node_out(const struct jparse *j, struct kcp_buf *out, uint32_t v, int depth);

static void mapping_out(const struct jparse *j, struct kcp_buf *out, uint32_t o, int depth,
                        bool first_inline)
{
    const struct jnode *n = &j->nodes[o];
    for (uint32_t i = 0; i < n->n; i++) {
        uint32_t v = j->kids[n->kids + i];
        if (!(first_inline && i == 0))
            indent(out, depth * 2);
        str_out(out, j->nodes[v].key, strlen(j->nodes[v].key));
        kcp_buf_append(out, ":", 1);
        node_out(j, out, v, depth + 1);
    }
}

static void node_out(const struct jparse *j, struct kcp_buf *out, uint32_t v, int depth)
{
    const struct jnode *n = &j->nodes[v];
    if (n->kind == J_OBJ && n->n) {
        kcp_buf_append(out, "\n", 1);
        mapping_out(j, out, v, depth, false);
    } else if (n->kind == J_ARR && n->n) {
        kcp_buf_append(out, "\n", 1);
        for (uint32_t i = 0; i < n->n; i++) {
            uint32_t item = j->kids[n->kids + i];
            indent(out, (depth - 1) * 2);
            kcp_buf_append(out, "-", 1);
            if (j->nodes[item].kind == J_OBJ && j->nodes[item].n) {
                kcp_buf_append(out, " ", 1);
                mapping_out(j, out, item, depth, true);
            } else {
                node_out(j, out, item, depth);
            }
        }
    } else {
        kcp_buf_append(out, " ", 1);
        if (n->kind == J_OBJ)
            kcp_buf_append(out, "{}", 2);
        else if (n->kind == J_ARR)
            kcp_buf_append(out, "[]", 2);
        else if (n->kind == J_STR)
            str_out(out, n->s, n->n);
        else
            kcp_buf_append(out, n->s, n->n);
        kcp_buf_append(out, "\n", 1);
    }
}

bool history_render_fast(struct kcp_buf *out, const char *json, size_t len)
{
    struct jparse j = {.p = json, .end = json + len};
    uint32_t top = UINT32_MAX, at;
    j.pool = kcp_malloc(2 * len + 16);
    ws(&j);
    if (j.p < j.end && *j.p == '{')
        top = value(&j, 0);
    ws(&j);
    bool ok = top != UINT32_MAX && j.p == j.end;
    if (ok) {
        /* history_render_json's rules: resourceVersion and managedFields[].time dropped. */
        uint32_t meta = member(&j, top, "metadata", &at), mf;
        if (meta != UINT32_MAX && j.nodes[meta].kind == J_OBJ) {
            drop(&j, meta, "resourceVersion");
            if ((mf = member(&j, meta, "managedFields", &at)) != UINT32_MAX &&
                j.nodes[mf].kind == J_ARR)
                for (uint32_t i = 0; i < j.nodes[mf].n; i++)
                    if (j.nodes[j.kids[j.nodes[mf].kids + i]].kind == J_OBJ)
                        drop(&j, j.kids[j.nodes[mf].kids + i], "time");
        }
        if (j.nodes[top].n)
            mapping_out(&j, out, top, 0, false);
        else
            node_out(&j, out, top, 0);
    }
    free(j.pool);
    free(j.nodes);
    free(j.kids);
    free(j.stack);
    return ok;
}
