/* Label selectors: upstream's lexer, recursive-descent parser and matcher (pkg/labels). */
#include "selector_int.h"

#include <stdlib.h>
#include <string.h>

enum tok {
    T_END,
    T_CLOSE,
    T_COMMA,
    T_NOT,
    T_DEQ,
    T_EQ,
    T_GT,
    T_ID,
    T_IN,
    T_LT,
    T_NEQ,
    T_NOTIN,
    T_OPEN,
};

struct token {
    enum tok tok;
    const char *text; /* into the selector text; the literal shown in errors */
    size_t len;
};

struct req {
    char *key;
    enum kcp_selector_op op;
    char **values; /* sorted, unique */
    size_t nvalues;
    size_t ord; /* position in the text: equal keys keep their order */
};

struct kcp_label_selector {
    struct req *reqs; /* sorted by key */
    size_t n;
};

struct parser {
    struct token *toks;
    size_t ntoks, pos;
    char **out_err;
};

/* Parser contexts: "in" and "notin" are operators after a key but plain words among values. */
enum ctx { KEY_AND_OP, VALUES };

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_special(char c)
{
    return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

static enum tok special_tok(const char *s, size_t len)
{
    if (len == 2)
        return s[0] == '=' ? T_DEQ : T_NEQ;
    switch (s[0]) {
    case ')':
        return T_CLOSE;
    case ',':
        return T_COMMA;
    case '!':
        return T_NOT;
    case '=':
        return T_EQ;
    case '>':
        return T_GT;
    case '<':
        return T_LT;
    default:
        return T_OPEN;
    }
}

/* Tokenizes the whole text first, as upstream does; lexing itself cannot fail. */
static void lex(const char *s, struct token **out, size_t *out_n)
{
    size_t cap = 16, n = 0;
    struct token *t = kcp_malloc(cap * sizeof(*t));
    for (;;) {
        while (is_space(*s))
            s++;
        if (n == cap) {
            cap *= 2;
            t = kcp_realloc(t, cap * sizeof(*t));
        }
        struct token *k = &t[n++];
        k->text = s;
        if (!*s) {
            k->tok = T_END;
            k->len = 0;
            break;
        }
        if (is_special(*s)) {
            /* Longest match: the only two-character symbols are "==" and "!=". */
            k->len = (s[1] == '=' && (s[0] == '=' || s[0] == '!')) ? 2 : 1;
            k->tok = special_tok(s, k->len);
        } else {
            k->len = 0;
            while (s[k->len] && !is_space(s[k->len]) && !is_special(s[k->len]))
                k->len++;
            k->tok = T_ID;
            if (k->len == 2 && memcmp(s, "in", 2) == 0)
                k->tok = T_IN;
            else if (k->len == 5 && memcmp(s, "notin", 5) == 0)
                k->tok = T_NOTIN;
        }
        s += k->len;
    }
    *out = t;
    *out_n = n;
}

static enum tok map_ctx(enum tok t, enum ctx c)
{
    return (c == VALUES && (t == T_IN || t == T_NOTIN)) ? T_ID : t;
}

static const struct token *peek(struct parser *p)
{
    return &p->toks[p->pos];
}

static enum tok lookahead(struct parser *p, enum ctx c)
{
    return map_ctx(peek(p)->tok, c);
}

/* The end token is never consumed past: every caller stops there. */
static const struct token *consume(struct parser *p, enum ctx c, enum tok *out_tok)
{
    const struct token *t = &p->toks[p->pos];
    if (p->pos + 1 < p->ntoks)
        p->pos++;
    *out_tok = map_ctx(t->tok, c);
    return t;
}

static char *tok_str(const struct token *t)
{
    return kcp_strndup(t->text, t->len);
}

/* "found '<literal>', <rest>" with the token's literal, as upstream words its parse errors. */
static int fail_found(struct parser *p, const char *prefix, const struct token *t, const char *rest)
{
    return selector_fail(p->out_err, "%sfound '%.*s'%s", prefix, (int)t->len, t->text, rest);
}

#define REQ_PREFIX "unable to parse requirement: "

/* A value set under construction: kept as a plain list, sorted and made unique at the end. */
struct vals {
    char **v;
    size_t n, cap;
};

static int vals_add(struct parser *p, struct vals *vs, char *s)
{
    if (vs->n == KCP_SELECTOR_MAX_VALUES) {
        free(s);
        return selector_fail(p->out_err, REQ_PREFIX "too many values (limit %d)",
                             KCP_SELECTOR_MAX_VALUES);
    }
    if (vs->n == vs->cap) {
        vs->cap = vs->cap ? vs->cap * 2 : 4;
        vs->v = kcp_realloc(vs->v, vs->cap * sizeof(char *));
    }
    vs->v[vs->n++] = s;
    return 0;
}

static void vals_free(struct vals *vs)
{
    for (size_t i = 0; i < vs->n; i++)
        free(vs->v[i]);
    free(vs->v);
    vs->v = NULL;
    vs->n = vs->cap = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void vals_sort_unique(struct vals *vs)
{
    if (vs->n < 2)
        return;
    qsort(vs->v, vs->n, sizeof(char *), cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < vs->n; i++) {
        if (strcmp(vs->v[i], vs->v[w - 1]) == 0)
            free(vs->v[i]);
        else
            vs->v[w++] = vs->v[i];
    }
    vs->n = w;
}

/* "(a,b,,c)": upstream's parseValues/parseIdentifiersList, empty entries included. */
static int parse_values(struct parser *p, struct vals *vs)
{
    enum tok t;
    const struct token *k = consume(p, VALUES, &t);
    if (t != T_OPEN)
        return selector_fail(p->out_err, REQ_PREFIX "found '%.*s' expected: '('", (int)k->len,
                             k->text);
    t = lookahead(p, VALUES);
    if (t == T_CLOSE) {
        consume(p, VALUES, &t);
        return vals_add(p, vs, kcp_strdup(""));
    }
    if (t != T_ID && t != T_COMMA)
        return fail_found(p, REQ_PREFIX, peek(p), ", expected: ',', ')' or identifier");
    for (;;) {
        int rc;
        k = consume(p, VALUES, &t);
        if (t == T_ID) {
            if ((rc = vals_add(p, vs, tok_str(k))) != 0)
                return rc;
            enum tok t2 = lookahead(p, VALUES);
            if (t2 == T_COMMA)
                continue;
            if (t2 == T_CLOSE)
                break;
            return fail_found(p, REQ_PREFIX, peek(p), ", expected: ',' or ')'");
        } else if (t == T_COMMA) {
            /* "(," ",)" and ",," each stand for the empty value. */
            if (vs->n == 0 && (rc = vals_add(p, vs, kcp_strdup(""))) != 0)
                return rc;
            enum tok t2 = lookahead(p, VALUES);
            if (t2 == T_CLOSE) {
                if ((rc = vals_add(p, vs, kcp_strdup(""))) != 0)
                    return rc;
                break;
            }
            if (t2 == T_COMMA) {
                consume(p, VALUES, &t2);
                if ((rc = vals_add(p, vs, kcp_strdup(""))) != 0)
                    return rc;
            }
        } else {
            return fail_found(p, REQ_PREFIX, k, ", expected: ',', or identifier");
        }
    }
    consume(p, VALUES, &t); /* the ")" the loop stopped at */
    return 0;
}

/* The value after =, ==, !=, > or <; missing means "". */
static int parse_exact_value(struct parser *p, struct vals *vs)
{
    enum tok t = lookahead(p, VALUES);
    if (t == T_END || t == T_COMMA)
        return vals_add(p, vs, kcp_strdup(""));
    const struct token *k = consume(p, VALUES, &t);
    if (t == T_ID)
        return vals_add(p, vs, tok_str(k));
    return fail_found(p, REQ_PREFIX, k, ", expected: identifier");
}

static int parse_operator(struct parser *p, enum kcp_selector_op *op)
{
    enum tok t;
    const struct token *k = consume(p, KEY_AND_OP, &t);
    switch (t) {
    case T_IN:
        *op = KCP_SELECTOR_IN;
        return 0;
    case T_NOTIN:
        *op = KCP_SELECTOR_NOTIN;
        return 0;
    case T_EQ:
        *op = KCP_SELECTOR_EQ;
        return 0;
    case T_DEQ:
        *op = KCP_SELECTOR_DEQ;
        return 0;
    case T_NEQ:
        *op = KCP_SELECTOR_NEQ;
        return 0;
    case T_GT:
        *op = KCP_SELECTOR_GT;
        return 0;
    case T_LT:
        *op = KCP_SELECTOR_LT;
        return 0;
    default:
        return fail_found(p, REQ_PREFIX, k, ", expected: in, notin, =, ==, !=, gt, lt");
    }
}

/* upstream's NewRequirement checks on the values (the key was checked while parsing it). */
static int check_values(struct parser *p, const char *key, enum kcp_selector_op op,
                        const struct vals *vs)
{
    struct kcp_buf b = KCP_BUF_INIT;
    size_t nerr = 0;
    if (op == KCP_SELECTOR_GT || op == KCP_SELECTOR_LT) {
        for (size_t i = 0; i < vs->n; i++) {
            int64_t ignored;
            if (selector_parse_int64(vs->v[i], &ignored))
                continue;
            kcp_buf_printf(&b, "%svalues[%zu]: Invalid value: ", nerr++ ? ", " : "", i);
            selector_quote(&b, vs->v[i]);
            kcp_buf_puts(&b, ": for 'Gt', 'Lt' operators, the value must be an integer");
        }
    }
    for (size_t i = 0; i < vs->n; i++) {
        char *msg = selector_check_value(vs->v[i]);
        if (!msg)
            continue;
        kcp_buf_printf(&b, "%svalues[%zu][%s]: Invalid value: ", nerr++ ? ", " : "", i, key);
        selector_quote(&b, vs->v[i]);
        kcp_buf_printf(&b, ": %s", msg);
        free(msg);
    }
    int rc = 0;
    if (nerr == 1)
        rc = selector_fail(p->out_err, REQ_PREFIX "%s", b.data);
    else if (nerr > 1)
        rc = selector_fail(p->out_err, REQ_PREFIX "[%s]", b.data);
    kcp_buf_free(&b);
    return rc;
}

static int parse_requirement(struct parser *p, struct req *r)
{
    enum tok t;
    int rc;
    struct vals vs = {0};
    bool not_exists = false;
    const struct token *k = consume(p, VALUES, &t);
    if (t == T_NOT) {
        not_exists = true;
        k = consume(p, VALUES, &t);
    }
    if (t != T_ID)
        return fail_found(p, REQ_PREFIX, k, ", expected: identifier");
    r->key = tok_str(k);
    char *msg = selector_check_key(r->key);
    if (msg) {
        /* upstream validates with a nil field path here, which prints as "<nil>" */
        struct kcp_buf b = KCP_BUF_INIT;
        selector_quote(&b, r->key);
        rc = selector_fail(p->out_err, REQ_PREFIX "<nil>: Invalid value: %s: %s", b.data, msg);
        kcp_buf_free(&b);
        free(msg);
        return rc;
    }
    t = lookahead(p, VALUES);
    if (not_exists || t == T_END || t == T_COMMA) {
        r->op = not_exists ? KCP_SELECTOR_NOT_EXISTS : KCP_SELECTOR_EXISTS;
        return 0;
    }
    if ((rc = parse_operator(p, &r->op)) != 0)
        return rc;
    if (r->op == KCP_SELECTOR_IN || r->op == KCP_SELECTOR_NOTIN)
        rc = parse_values(p, &vs);
    else
        rc = parse_exact_value(p, &vs);
    if (rc == 0) {
        vals_sort_unique(&vs);
        rc = check_values(p, r->key, r->op, &vs);
    }
    if (rc != 0) {
        vals_free(&vs);
        return rc;
    }
    r->values = vs.v;
    r->nvalues = vs.n;
    return 0;
}

static void req_free(struct req *r)
{
    free(r->key);
    for (size_t i = 0; i < r->nvalues; i++)
        free(r->values[i]);
    free(r->values);
}

/* Keys sorted as upstream sorts them; equal keys keep their order so output is stable. */
static int cmp_req(const void *a, const void *b)
{
    const struct req *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return (x->ord > y->ord) - (x->ord < y->ord);
}

static int parse_all(struct parser *p, struct kcp_label_selector *sel)
{
    size_t cap = 0;
    for (;;) {
        enum tok t = lookahead(p, VALUES);
        if (t == T_END)
            return 0;
        if (t != T_ID && t != T_NOT)
            return fail_found(p, "", peek(p), ", expected: !, identifier, or 'end of string'");
        if (sel->n == KCP_SELECTOR_MAX_REQUIREMENTS)
            return selector_fail(p->out_err, "too many requirements (limit %d)",
                                 KCP_SELECTOR_MAX_REQUIREMENTS);
        if (sel->n == cap) {
            cap = cap ? cap * 2 : 4;
            sel->reqs = kcp_realloc(sel->reqs, cap * sizeof(*sel->reqs));
        }
        struct req *r = &sel->reqs[sel->n++];
        memset(r, 0, sizeof(*r));
        r->ord = sel->n;
        int rc = parse_requirement(p, r);
        if (rc != 0)
            return rc;
        const struct token *k = consume(p, VALUES, &t);
        if (t == T_END)
            return 0;
        if (t != T_COMMA)
            return fail_found(p, "", k, ", expected: ',' or 'end of string'");
        t = lookahead(p, VALUES);
        if (t != T_ID && t != T_NOT)
            return fail_found(p, "", peek(p), ", expected: identifier after ','");
    }
}

int kcp_selector_parse_labels(struct kcp_label_selector **out, const char *text, char **out_err)
{
    struct parser p = {0};
    struct kcp_label_selector *sel = NULL;
    int rc;
    size_t len = strlen(text);
    *out = NULL;
    if (out_err)
        *out_err = NULL;
    if (len > KCP_SELECTOR_MAX_LEN)
        return selector_fail(out_err, "label selector too long: %zu bytes (limit %d)", len,
                             KCP_SELECTOR_MAX_LEN);
    sel = kcp_calloc(1, sizeof(*sel));
    p.out_err = out_err;
    lex(text, &p.toks, &p.ntoks);
    rc = parse_all(&p, sel);
    free(p.toks);
    if (rc != 0) {
        kcp_selector_labels_free(sel);
        return rc;
    }
    if (sel->n > 1)
        qsort(sel->reqs, sel->n, sizeof(*sel->reqs), cmp_req);
    *out = sel;
    return 0;
}

void kcp_selector_labels_free(struct kcp_label_selector *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->n; i++)
        req_free(&sel->reqs[i]);
    free(sel->reqs);
    free(sel);
}

static bool has_value(const struct req *r, const char *v)
{
    return bsearch(&v, r->values, r->nvalues, sizeof(char *), cmp_str) != NULL;
}

static bool req_matches(const struct req *r, const json_t *labels)
{
    const json_t *jv = labels && json_is_object(labels) ? json_object_get(labels, r->key) : NULL;
    const char *v = jv && json_is_string(jv) ? json_string_value(jv) : NULL;
    int64_t have, want;
    switch (r->op) {
    case KCP_SELECTOR_EQ:
    case KCP_SELECTOR_DEQ:
    case KCP_SELECTOR_IN:
        return v && has_value(r, v);
    case KCP_SELECTOR_NEQ:
    case KCP_SELECTOR_NOTIN:
        return !v || !has_value(r, v);
    case KCP_SELECTOR_EXISTS:
        return v != NULL;
    case KCP_SELECTOR_NOT_EXISTS:
        return v == NULL;
    case KCP_SELECTOR_GT:
    case KCP_SELECTOR_LT:
        /* A label that is not an integer never matches, as upstream. */
        if (!v || r->nvalues != 1 || !selector_parse_int64(v, &have) ||
            !selector_parse_int64(r->values[0], &want))
            return false;
        return r->op == KCP_SELECTOR_GT ? have > want : have < want;
    }
    return false;
}

bool kcp_selector_labels_matches(const struct kcp_label_selector *sel, const json_t *labels)
{
    for (size_t i = 0; i < sel->n; i++)
        if (!req_matches(&sel->reqs[i], labels))
            return false;
    return true;
}

bool kcp_selector_labels_empty(const struct kcp_label_selector *sel)
{
    return sel->n == 0;
}

size_t kcp_selector_labels_count(const struct kcp_label_selector *sel)
{
    return sel->n;
}

void kcp_selector_labels_get(const struct kcp_label_selector *sel, size_t i,
                             struct kcp_selector_requirement *out)
{
    const struct req *r = &sel->reqs[i];
    out->key = r->key;
    out->op = r->op;
    out->values = (const char *const *)r->values;
    out->nvalues = r->nvalues;
}

const char *kcp_selector_labels_exact(const struct kcp_label_selector *sel, const char *key)
{
    /* Like upstream, only the first requirement on key is looked at. */
    for (size_t i = 0; i < sel->n; i++) {
        const struct req *r = &sel->reqs[i];
        if (strcmp(r->key, key) != 0)
            continue;
        bool pins =
            r->op == KCP_SELECTOR_EQ || r->op == KCP_SELECTOR_DEQ || r->op == KCP_SELECTOR_IN;
        return pins && r->nvalues == 1 ? r->values[0] : NULL;
    }
    return NULL;
}

char *kcp_selector_labels_string(const struct kcp_label_selector *sel)
{
    static const char *const ops[] = {
        [KCP_SELECTOR_EQ] = "=",          [KCP_SELECTOR_DEQ] = "==",
        [KCP_SELECTOR_NEQ] = "!=",        [KCP_SELECTOR_IN] = " in ",
        [KCP_SELECTOR_NOTIN] = " notin ", [KCP_SELECTOR_EXISTS] = "",
        [KCP_SELECTOR_NOT_EXISTS] = "",   [KCP_SELECTOR_GT] = ">",
        [KCP_SELECTOR_LT] = "<",
    };
    struct kcp_buf b = KCP_BUF_INIT;
    for (size_t i = 0; i < sel->n; i++) {
        const struct req *r = &sel->reqs[i];
        bool set = r->op == KCP_SELECTOR_IN || r->op == KCP_SELECTOR_NOTIN;
        kcp_buf_printf(&b, "%s%s%s%s%s", i ? "," : "", r->op == KCP_SELECTOR_NOT_EXISTS ? "!" : "",
                       r->key, ops[r->op], set ? "(" : "");
        for (size_t j = 0; j < r->nvalues; j++)
            kcp_buf_printf(&b, "%s%s", j ? "," : "", r->values[j]);
        if (set)
            kcp_buf_puts(&b, ")");
    }
    return kcp_buf_detach(&b);
}
