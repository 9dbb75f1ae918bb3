/*
 * yaml_parse.c: the YAML that manifests use, read into a JSON tree as sigs.k8s.io/yaml converts
 * it (YAML 1.1 scalars through go-yaml v2): block mappings and sequences (including a sequence
 * at its key's indentation), flow collections over several lines, plain, single- and
 * double-quoted scalars, literal and folded block scalars with chomping, comments, one document
 * with optional "---"/"...". Anchors, aliases, tags, complex keys and several documents are
 * refused rather than guessed. Bounded: the input is the request body (the HTTP limit) and
 * nesting stops at KCP_CODEC_MAX_DEPTH.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

struct yline {
    const char *text; /* content start (after the indentation) */
    const char *end;  /* end of the line, without \r\n */
    int indent;       /* leading spaces (a virtual line after "- " starts further right) */
    int no;           /* 1-based */
};

struct yp {
    struct yline *lines;
    size_t n, i;
    int depth;
    struct kcp_codec_err *err;
};

static int yfail(struct yp *p, int line, const char *msg)
{
    return codec_fail(p->err, KCP_EBADREQUEST, "error converting YAML to JSON: yaml: line %d: %s",
                      line, msg);
}

static bool blank_text(const char *s, const char *end)
{
    while (s < end && *s == ' ')
        s++;
    return s == end || *s == '#';
}

/* The current line, skipping blank and comment-only lines; NULL at the end. */
static struct yline *cur(struct yp *p)
{
    while (p->i < p->n && blank_text(p->lines[p->i].text, p->lines[p->i].end))
        p->i++;
    return p->i < p->n ? &p->lines[p->i] : NULL;
}

static bool is_seq_entry(const struct yline *l)
{
    return l->text < l->end && l->text[0] == '-' && (l->text + 1 == l->end || l->text[1] == ' ');
}

static bool is_doc_marker(const struct yline *l, const char *m)
{
    return l->indent == 0 && l->end - l->text >= 3 && memcmp(l->text, m, 3) == 0 &&
           (l->end - l->text == 3 || l->text[3] == ' ');
}

/* Skips a quoted scalar starting at s (on one line); the position after it, or NULL. */
static const char *skip_quoted(const char *s, const char *end)
{
    char q = *s++;
    while (s < end) {
        if (q == '\'' && *s == '\'') {
            if (s + 1 < end && s[1] == '\'') {
                s += 2;
                continue;
            }
            return s + 1;
        }
        if (q == '"' && *s == '\\') {
            s += 2;
            continue;
        }
        if (q == '"' && *s == '"')
            return s + 1;
        s++;
    }
    return NULL;
}

/* The ':' of a "key: value" line (after a plain or quoted key), or NULL. */
static const char *map_colon(const struct yline *l)
{
    const char *s = l->text, *end = l->end;
    if (s < end && (*s == '"' || *s == '\'')) {
        s = skip_quoted(s, end);
        if (!s)
            return NULL;
        while (s < end && *s == ' ')
            s++;
        return s < end && *s == ':' && (s + 1 == end || s[1] == ' ') ? s : NULL;
    }
    if (s < end && (*s == '[' || *s == '{' || *s == '#'))
        return NULL;
    for (; s < end; s++) {
        if (*s == '#' && s > l->text && s[-1] == ' ')
            return NULL;
        if (*s == ':' && (s + 1 == end || s[1] == ' '))
            return s;
    }
    return NULL;
}

/* ---- scalars ---- */

static bool in_set(const char *s, size_t n, const char *const *set)
{
    for (; *set; set++)
        if (strlen(*set) == n && memcmp(*set, s, n) == 0)
            return true;
    return false;
}

/* go-yaml v2's resolution of a plain scalar (YAML 1.1). */
static int resolve_plain(struct yp *p, int line, const char *s, size_t n, json_t **out)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                        "True", "TRUE", "on",  "On",  "ON",  NULL};
    static const char *const falses[] = {"n",     "N",     "no",  "No",  "NO",  "false",
                                         "False", "FALSE", "off", "Off", "OFF", NULL};
    if (in_set(s, n, nulls)) {
        *out = json_null();
        return 0;
    }
    if (in_set(s, n, trues) || in_set(s, n, falses)) {
        *out = json_boolean(in_set(s, n, trues));
        return 0;
    }
    char buf[80];
    if (n > 0 && n < sizeof(buf)) {
        /* Numbers: underscores are ignored, as go-yaml v2 does. */
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i] != '_')
                buf[k++] = s[i];
        buf[k] = '\0';
        const char *d = buf + (buf[0] == '-' || buf[0] == '+');
        int base = 10;
        if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X') && d[2])
            base = 16;
        else if (d[0] == '0' && d[1] == 'b' && d[2])
            base = 2;
        else if (d[0] == '0' && d[1])
            base = 8;
        const char *digits = base == 16 || base == 2 ? d + 2 : d;
        bool isint = *digits != '\0';
        for (const char *c = digits; *c && isint; c++)
            isint = base == 16  ? isxdigit((unsigned char)*c)
                    : base == 2 ? (*c == '0' || *c == '1')
                    : base == 8 ? (*c >= '0' && *c <= '7')
                                : isdigit((unsigned char)*c);
        if (isint && k > 0) {
            errno = 0;
            long long v = strtoll(digits, NULL, base);
            if (errno == 0) {
                *out = json_integer(buf[0] == '-' ? -v : v);
                return 0;
            }
            *out = json_real(strtod(buf, NULL)); /* too large for int64: a float, as go-yaml */
            return 0;
        }
        /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
        const char *c = d;
        bool ok = false;
        if (*c == '.') {
            c++;
            ok = isdigit((unsigned char)*c);
            while (isdigit((unsigned char)*c))
                c++;
        } else if (isdigit((unsigned char)*c)) {
            ok = true;
            while (isdigit((unsigned char)*c))
                c++;
            if (*c == '.') {
                c++;
                while (isdigit((unsigned char)*c))
                    c++;
            }
        }
        if (ok && (*c == 'e' || *c == 'E')) {
            c++;
            if (*c == '+' || *c == '-')
                c++;
            ok = isdigit((unsigned char)*c);
            while (isdigit((unsigned char)*c))
                c++;
        }
        if (ok && *c == '\0') {
            *out = json_real(strtod(buf, NULL));
            return 0;
        }
        if (strcmp(d, ".inf") == 0 || strcmp(d, ".Inf") == 0 || strcmp(d, ".INF") == 0 ||
            strcmp(buf, ".nan") == 0 || strcmp(buf, ".NaN") == 0 || strcmp(buf, ".NAN") == 0)
            return yfail(p, line, "infinity and NaN have no JSON form");
    }
    *out = json_stringn(s, n);
    if (!*out)
        return yfail(p, line, "invalid UTF-8");
    return 0;
}

static void put_utf8(struct kcp_buf *b, unsigned long c)
{
    char u[4];
    size_t n;
    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xc0 | c >> 6);
        u[1] = (char)(0x80 | (c & 63));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xe0 | c >> 12);
        u[1] = (char)(0x80 | ((c >> 6) & 63));
        u[2] = (char)(0x80 | (c & 63));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | c >> 18);
        u[1] = (char)(0x80 | ((c >> 12) & 63));
        u[2] = (char)(0x80 | ((c >> 6) & 63));
        u[3] = (char)(0x80 | (c & 63));
        n = 4;
    }
    kcp_buf_append(b, u, n);
}

/* The line holding position s, from the current line on. */
static size_t line_of(struct yp *p, const char *s)
{
    size_t j = p->i;
    while (j + 1 < p->n && s > p->lines[j].end)
        j++;
    return j;
}

/* A quoted scalar at *ps (it may span lines: a line break folds to a space, an empty line to
 * "\n"); *ps moves past it. */
static int quoted(struct yp *p, const char **ps, json_t **out)
{
    const char *s = *ps;
    char q = *s++;
    size_t j = line_of(p, s);
    int line = p->lines[j].no;
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_buf_puts(&b, "");
    for (;;) {
        const char *end = p->lines[j].end;
        if (s >= end) {
            /* Fold: trailing spaces of this line go, leading spaces of the next too. */
            while (b.len && b.data[b.len - 1] == ' ')
                b.data[--b.len] = '\0';
            int empties = 0;
            for (;;) {
                if (++j >= p->n) {
                    kcp_buf_free(&b);
                    return yfail(p, line,
                                 "found unexpected end of stream while scanning a quoted scalar");
                }
                s = p->lines[j].text;
                while (s < p->lines[j].end && (*s == ' ' || *s == '\t'))
                    s++;
                if (s < p->lines[j].end)
                    break;
                empties++;
            }
            if (empties)
                for (int k = 0; k < empties; k++)
                    kcp_buf_puts(&b, "\n");
            else
                kcp_buf_puts(&b, " ");
            continue;
        }
        if (q == '\'' && *s == '\'') {
            if (s + 1 < end && s[1] == '\'') {
                kcp_buf_puts(&b, "'");
                s += 2;
                continue;
            }
            s++;
            break;
        }
        if (q == '"' && *s == '"') {
            s++;
            break;
        }
        if (q == '"' && *s == '\\') {
            if (s + 1 >= end) { /* an escaped line break joins the lines */
                s = end;
                if (++j >= p->n) {
                    kcp_buf_free(&b);
                    return yfail(p, line,
                                 "found unexpected end of stream while scanning a quoted scalar");
                }
                s = p->lines[j].text;
                continue;
            }
            char e = s[1];
            s += 2;
            static const char from[] = "0abtnvfre \"/\\N_LP\t";
            static const char *const to[] = {
                "\0",           "\a", "\b", "\t", "\n", "\v",       "\f",       "\r",
                "\x1b",         " ",  "\"", "/",  "\\", "\xc2\x85", "\xc2\xa0", "\xe2\x80\xa8",
                "\xe2\x80\xa9", "\t"};
            const char *at = e ? strchr(from, e) : NULL;
            if (at) {
                size_t k = (size_t)(at - from);
                kcp_buf_append(&b, to[k], k == 0 ? 1 : strlen(to[k]));
                continue;
            }
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
            if (!digits || end - s < digits) {
                kcp_buf_free(&b);
                return yfail(p, line,
                             "found unknown escape character while parsing a quoted scalar");
            }
            unsigned long c = 0;
            for (int k = 0; k < digits; k++) {
                if (!isxdigit((unsigned char)s[k])) {
                    kcp_buf_free(&b);
                    return yfail(p, line, "did not find expected hexdecimal number");
                }
                c = c * 16 + (unsigned long)(isdigit((unsigned char)s[k])
                                                 ? s[k] - '0'
                                                 : (tolower((unsigned char)s[k]) - 'a' + 10));
            }
            s += digits;
            put_utf8(&b, c);
            continue;
        }
        kcp_buf_append(&b, s, 1);
        s++;
    }
    *ps = s;
    *out = json_stringn(b.data, b.len);
    kcp_buf_free(&b);
    return *out ? 0 : yfail(p, line, "invalid UTF-8");
}

/* ---- flow collections ---- */

static int flow_value(struct yp *p, const char **ps, json_t **out);

/* Skips spaces, line breaks and comments inside a flow collection. */
static int flow_space(struct yp *p, const char **ps)
{
    const char *s = *ps;
    size_t j = line_of(p, s);
    for (;;) {
        const char *end = p->lines[j].end;
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
        if (s < end && *s != '#')
            break;
        if (++j >= p->n)
            return yfail(p, p->lines[p->n - 1].no, "did not find expected ',' or ']'");
        s = p->lines[j].text;
    }
    *ps = s;
    return 0;
}

/* A plain scalar inside a flow collection: up to , [ ] { } or ": ". */
static int flow_plain(struct yp *p, const char **ps, bool key, json_t **out)
{
    const char *s = *ps, *end = p->lines[line_of(p, s)].end, *e = s;
    while (e < end && !strchr(",[]{}", *e) &&
           !(*e == ':' && (e + 1 == end || strchr(" ,[]{}", e[1]))) &&
           !(*e == '#' && e > s && e[-1] == ' '))
        e++;
    const char *t = e;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
        t--;
    *ps = e;
    if (key) {
        *out = json_stringn(s, (size_t)(t - s));
        return *out ? 0 : yfail(p, p->lines[line_of(p, s)].no, "invalid UTF-8");
    }
    return resolve_plain(p, p->lines[line_of(p, s)].no, s, (size_t)(t - s), out);
}

static int flow_key(struct yp *p, const char **ps, json_t **out)
{
    if (**ps == '"' || **ps == '\'')
        return quoted(p, ps, out);
    if (**ps == '[' || **ps == '{' || **ps == '?')
        return yfail(p, p->lines[line_of(p, *ps)].no, "complex mapping keys are not supported");
    return flow_plain(p, ps, true, out);
}

static int flow_value(struct yp *p, const char **ps, json_t **out)
{
    int rc = flow_space(p, ps);
    if (rc)
        return rc;
    const char *s = *ps;
    int line = p->lines[line_of(p, s)].no;
    if (*s == '&' || *s == '*' || *s == '!')
        return yfail(p, line, "anchors, aliases and tags are not supported");
    if (*s == '"' || *s == '\'')
        return quoted(p, ps, out);
    if (*s != '[' && *s != '{')
        return flow_plain(p, ps, false, out);
    if (++p->depth > KCP_CODEC_MAX_DEPTH)
        return yfail(p, line, "exceeded max depth");
    bool seq = *s == '[';
    char close = seq ? ']' : '}';
    json_t *c = seq ? json_array() : json_object();
    s++;
    for (;;) {
        if ((rc = flow_space(p, &s)) != 0)
            break;
        if (*s == close) {
            s++;
            break;
        }
        json_t *k = NULL, *v = NULL;
        if (seq) {
            rc = flow_value(p, &s, &v);
        } else {
            rc = flow_key(p, &s, &k);
            if (rc == 0)
                rc = flow_space(p, &s);
            if (rc == 0 && *s == ':') {
                s++;
                if ((rc = flow_space(p, &s)) == 0) {
                    if (*s == ',' || *s == '}')
                        v = json_null();
                    else
                        rc = flow_value(p, &s, &v);
                }
            } else if (rc == 0) {
                v = json_null();
            }
        }
        if (rc) {
            json_decref(k);
            json_decref(v);
            break;
        }
        if (seq)
            json_array_append_new(c, v);
        else
            json_object_set_new(c, json_string_value(k), v);
        json_decref(k);
        if ((rc = flow_space(p, &s)) != 0)
            break;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == close) {
            s++;
            break;
        }
        rc = yfail(p, p->lines[line_of(p, s)].no,
                   seq ? "did not find expected ',' or ']'" : "did not find expected ',' or '}'");
        break;
    }
    p->depth--;
    if (rc) {
        json_decref(c);
        return rc;
    }
    *ps = s;
    *out = c;
    return 0;
}

/* ---- block structure ---- */

static int block_node(struct yp *p, int parent, json_t **out);

/* After an inline value that ended at s: the rest of its line must be empty; moves on. */
static int end_inline(struct yp *p, const char *s)
{
    size_t j = line_of(p, s);
    if (!blank_text(s, p->lines[j].end)) {
        const char *t = s;
        while (t < p->lines[j].end && *t == ' ')
            t++;
        if (*t == ':')
            return yfail(p, p->lines[j].no, "mapping values are not allowed in this context");
        return yfail(p, p->lines[j].no, "did not find expected <document end>");
    }
    p->i = j + 1;
    return 0;
}

/* A value written after "key:" or "- " on the line (s), owned by a node at indent parent. */
static int inline_value(struct yp *p, const char *s, int parent, json_t **out)
{
    struct yline *l = &p->lines[p->i];
    int rc;
    if (*s == '&' || *s == '*' || *s == '!')
        return yfail(p, l->no, "anchors, aliases and tags are not supported");
    if (*s == '"' || *s == '\'' || *s == '[' || *s == '{') {
        if ((rc = flow_value(p, &s, out)) != 0)
            return rc;
        if ((rc = end_inline(p, s)) != 0) {
            json_decref(*out);
            *out = NULL;
        }
        return rc;
    }
    if (*s == '%' || *s == '@' || *s == '`')
        return yfail(p, l->no, "found character that cannot start any token");
    /* A plain scalar, possibly continued on more indented lines (folded with spaces). */
    const char *e = s;
    while (e < l->end && !(*e == '#' && e[-1] == ' '))
        e++;
    while (e > s && e[-1] == ' ')
        e--;
    for (const char *c = s; c < e; c++)
        if (*c == ':' && (c + 1 == e || c[1] == ' '))
            return yfail(p, l->no, "mapping values are not allowed in this context");
    int line = l->no;
    p->i++;
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_buf_append(&b, s, (size_t)(e - s));
    int empties = 0;
    while (p->i < p->n) {
        struct yline *n = &p->lines[p->i];
        if (n->text == n->end) { /* an empty line inside the scalar is a line break */
            empties++;
            p->i++;
            continue;
        }
        if (n->text[0] == '#' || n->indent <= parent || is_doc_marker(n, "---") ||
            is_doc_marker(n, "...") || map_colon(n) || is_seq_entry(n))
            break;
        const char *ne = n->end;
        while (ne > n->text && ne[-1] == ' ')
            ne--;
        if (empties)
            for (int k = 0; k < empties; k++)
                kcp_buf_puts(&b, "\n");
        else
            kcp_buf_puts(&b, " ");
        empties = 0;
        kcp_buf_append(&b, n->text, (size_t)(ne - n->text));
        p->i++;
    }
    rc = resolve_plain(p, line, b.data ? b.data : "", b.len, out);
    kcp_buf_free(&b);
    return rc;
}

/* A literal (|) or folded (>) block scalar; header is the text after the indicator. */
static int block_scalar(struct yp *p, const char *s, int parent, json_t **out)
{
    struct yline *l = &p->lines[p->i];
    bool folded = *s++ == '>';
    char chomp = 'c';
    int explicit_indent = 0;
    while (s < l->end && *s != ' ' && *s != '#') {
        if ((*s == '+' || *s == '-') && chomp == 'c')
            chomp = *s;
        else if (*s >= '1' && *s <= '9' && !explicit_indent)
            explicit_indent = *s - '0';
        else
            return yfail(p, l->no, "did not find expected comment or line break");
        s++;
    }
    if (!blank_text(s, l->end))
        return yfail(p, l->no, "did not find expected comment or line break");
    p->i++;
    int indent = explicit_indent ? (parent < 0 ? 0 : parent) + explicit_indent : -1;
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_buf_puts(&b, "");
    int pending = 0; /* empty lines not yet written */
    bool any = false, prev_more = false;
    while (p->i < p->n) {
        struct yline *n = &p->lines[p->i];
        const char *raw = n->text - n->indent;
        bool empty = true;
        for (const char *c = raw; c < n->end; c++)
            if (*c != ' ') {
                empty = false;
                break;
            }
        if (empty) {
            pending++;
            p->i++;
            continue;
        }
        if (indent < 0) {
            if (n->indent <= parent)
                break;
            indent = n->indent;
        }
        if (n->indent < indent)
            break;
        const char *t = raw + indent;
        bool more = *t == ' ' || *t == '\t';
        if (any) {
            if (!folded || more || prev_more)
                for (int k = 0; k < pending + 1; k++)
                    kcp_buf_puts(&b, "\n");
            else if (pending)
                for (int k = 0; k < pending; k++)
                    kcp_buf_puts(&b, "\n");
            else
                kcp_buf_puts(&b, " ");
        } else {
            for (int k = 0; k < pending; k++)
                kcp_buf_puts(&b, "\n");
        }
        pending = 0;
        kcp_buf_append(&b, t, (size_t)(n->end - t));
        any = true;
        prev_more = more;
        p->i++;
    }
    if (any && chomp != '-')
        kcp_buf_puts(&b, "\n");
    if (chomp == '+')
        for (int k = 0; k < pending; k++)
            kcp_buf_puts(&b, "\n");
    *out = json_stringn(b.data, b.len);
    kcp_buf_free(&b);
    return *out ? 0 : yfail(p, l->no, "invalid UTF-8");
}

/* What follows "key:" or "- " at s on the current line, for a node at indent ind. */
static int entry_value(struct yp *p, const char *s, int ind, bool in_map, json_t **out)
{
    struct yline *l = &p->lines[p->i];
    while (s < l->end && *s == ' ')
        s++;
    if (blank_text(s, l->end)) {
        p->i++;
        struct yline *n = cur(p);
        /* A mapping's sequence may sit at the key's own indentation. */
        if (n && in_map && n->indent == ind && is_seq_entry(n))
            return block_node(p, ind - 1, out);
        return block_node(p, ind, out);
    }
    if (*s == '|' || *s == '>')
        return block_scalar(p, s, ind, out);
    if (!in_map) {
        /* "- key: v" or "- - x": the rest of the line is a node of its own, further right. */
        struct yline v = *l;
        v.indent = l->indent + (int)(s - l->text);
        v.text = s;
        if (is_seq_entry(&v) || map_colon(&v)) {
            *l = v;
            return block_node(p, ind, out);
        }
    }
    return inline_value(p, s, ind, out);
}

static int block_seq(struct yp *p, int ind, json_t **out)
{
    json_t *a = json_array();
    struct yline *l;
    int rc = 0;
    while ((l = cur(p)) && l->indent == ind && is_seq_entry(l)) {
        json_t *v = NULL;
        if ((rc = entry_value(p, l->text + 1, ind, false, &v)) != 0)
            break;
        json_array_append_new(a, v);
    }
    if (rc == 0 && (l = cur(p)) && l->indent > ind)
        rc = yfail(p, l->no, "did not find expected '-' indicator");
    if (rc) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}

static int block_map(struct yp *p, int ind, json_t **out)
{
    json_t *o = json_object();
    struct yline *l;
    int rc = 0;
    while ((l = cur(p)) && l->indent == ind && !is_seq_entry(l)) {
        if (is_doc_marker(l, "---") || is_doc_marker(l, "..."))
            break;
        const char *colon = map_colon(l);
        if (!colon) {
            rc = yfail(p, l->no,
                       l->text[0] == '?' ? "complex mapping keys are not supported"
                                         : "could not find expected ':'");
            break;
        }
        json_t *key = NULL, *v = NULL;
        if (l->text[0] == '"' || l->text[0] == '\'') {
            const char *s = l->text;
            if ((rc = quoted(p, &s, &key)) != 0)
                break;
        } else {
            const char *e = colon;
            while (e > l->text && e[-1] == ' ')
                e--;
            if (l->text[0] == '&' || l->text[0] == '*' || l->text[0] == '!') {
                rc = yfail(p, l->no, "anchors, aliases and tags are not supported");
                break;
            }
            key = json_stringn(l->text, (size_t)(e - l->text));
            if (!key) {
                rc = yfail(p, l->no, "invalid UTF-8");
                break;
            }
        }
        rc = entry_value(p, colon + 1, ind, true, &v);
        if (rc == 0) {
            if (strcmp(json_string_value(key), "<<") == 0) {
                json_decref(v);
                rc = yfail(p, l->no, "merge keys are not supported");
            } else
                json_object_set_new(o, json_string_value(key), v); /* a repeated key: the last */
        }
        json_decref(key);
        if (rc)
            break;
    }
    if (rc == 0 && (l = cur(p)) && l->indent > ind)
        rc = yfail(p, l->no, "mapping values are not allowed in this context");
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* The node whose lines are indented more than parent (JSON null when there is none). */
static int block_node(struct yp *p, int parent, json_t **out)
{
    struct yline *l = cur(p);
    if (!l || l->indent <= parent || is_doc_marker(l, "---") || is_doc_marker(l, "...")) {
        *out = json_null();
        return 0;
    }
    if (l->text[0] == '?' && (l->text + 1 == l->end || l->text[1] == ' '))
        return yfail(p, l->no, "complex mapping keys are not supported");
    if (++p->depth > KCP_CODEC_MAX_DEPTH)
        return yfail(p, l->no, "exceeded max depth");
    int rc;
    if (is_seq_entry(l))
        rc = block_seq(p, l->indent, out);
    else if (map_colon(l))
        rc = block_map(p, l->indent, out);
    else if (l->text[0] == '|' || l->text[0] == '>')
        rc = block_scalar(p, l->text, parent, out);
    else
        rc = inline_value(p, l->text, parent, out);
    p->depth--;
    return rc;
}

int kcp_codec_yaml_parse(json_t **out, const char *body, size_t len, struct kcp_codec_err *err)
{
    struct yp p = {.err = err};
    int rc = 0;
    *out = NULL;
    if (err)
        err->msg[0] = '\0';
    if (memchr(body, '\0', len))
        return codec_fail(err, KCP_EBADREQUEST,
                          "error converting YAML to JSON: yaml: control "
                          "characters are not allowed");
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += body[i] == '\n';
    p.lines = kcp_calloc(cap, sizeof(*p.lines));
    for (const char *s = body, *end = body + len; s <= end && p.n < cap;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        struct yline *l = &p.lines[p.n];
        l->no = (int)p.n + 1;
        l->end = e > s && e[-1] == '\r' ? e - 1 : e;
        l->text = s;
        while (l->text < l->end && *l->text == ' ')
            l->text++;
        l->indent = (int)(l->text - s);
        if (l->text < l->end && *l->text == '\t') {
            const char *t = l->text;
            while (t < l->end && (*t == ' ' || *t == '\t'))
                t++;
            if (t < l->end && *t != '#') {
                rc = yfail(&p, l->no, "found character that cannot start any token");
                goto done;
            }
        }
        p.n++;
        if (!nl)
            break;
        s = nl + 1;
    }
    /* Directives and the document start. */
    struct yline *l;
    while ((l = cur(&p)) && l->indent == 0 && l->text[0] == '%')
        p.i++;
    if ((l = cur(&p)) && is_doc_marker(l, "---")) {
        const char *s = l->text + 3;
        while (s < l->end && *s == ' ')
            s++;
        if (blank_text(s, l->end)) {
            p.i++;
        } else {
            l->indent = (int)(s - (l->text - l->indent));
            l->text = s;
        }
    }
    if ((rc = block_node(&p, -1, out)) != 0)
        goto done;
    if ((l = cur(&p)) && is_doc_marker(l, "...")) {
        p.i++;
        l = cur(&p);
    }
    if (l) {
        rc = yfail(&p, l->no,
                   is_doc_marker(l, "---") ? "several documents are not supported"
                                           : "did not find expected <document end>");
        json_decref(*out);
        *out = NULL;
    }
done:
    free(p.lines);
    return rc;
}
