/* Field selectors: upstream's term splitting, escapes and matching (pkg/fields). */
#include "selector_int.h"

#include <stdlib.h>
#include <string.h>

struct term {
    char *field;
    enum kcp_selector_op op;
    char *value; /* unescaped */
};

struct kcp_field_selector {
    struct term *terms;
    size_t n;
};

/* Splits on commas not escaped by a backslash; escapes stay in the parts. */
static char **split_terms(const char *s, size_t *out_n)
{
    size_t n = 1, k = 0;
    bool in_slash = false;
    for (const char *c = s; *c; c++) {
        if (in_slash)
            in_slash = false;
        else if (*c == '\\')
            in_slash = true;
        else if (*c == ',')
            n++;
    }
    char **parts = kcp_malloc(n * sizeof(char *));
    const char *start = s;
    in_slash = false;
    for (const char *c = s;; c++) {
        if (!*c || (!in_slash && *c == ',')) {
            parts[k++] = kcp_strndup(start, (size_t)(c - start));
            if (!*c)
                break;
            start = c + 1;
        } else if (in_slash) {
            in_slash = false;
        } else if (*c == '\\') {
            in_slash = true;
        }
    }
    *out_n = k;
    return parts;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first "!=", "==" or "=" (tried in that order at each position) splits field from value. */
static bool split_term(const char *part, size_t *lhs_len, enum kcp_selector_op *op,
                       const char **rhs)
{
    for (const char *c = part; *c; c++) {
        if (c[0] == '!' && c[1] == '=') {
            *op = KCP_SELECTOR_NEQ;
            *rhs = c + 2;
        } else if (c[0] == '=' && c[1] == '=') {
            *op = KCP_SELECTOR_DEQ;
            *rhs = c + 2;
        } else if (c[0] == '=') {
            *op = KCP_SELECTOR_EQ;
            *rhs = c + 1;
        } else {
            continue;
        }
        *lhs_len = (size_t)(c - part);
        return true;
    }
    return false;
}

/* Bytes of the UTF-8 sequence at s (1 for a stray byte, which Go reads as U+FFFD). */
static size_t rune_len(const unsigned char *s)
{
    size_t n = s[0] < 0x80             ? 1
               : (s[0] & 0xe0) == 0xc0 ? 2
               : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* upstream's UnescapeValue: \\ \, \= are the only escapes; a bare , or = is an error. */
static int unescape(const char *s, char **out, char **out_err)
{
    struct kcp_buf b = KCP_BUF_INIT;
    bool in_slash = false;
    int rc = 0;
    kcp_buf_puts(&b, "");
    for (const char *c = s; *c; c++) {
        if (in_slash) {
            in_slash = false;
            if (*c == '\\' || *c == ',' || *c == '=') {
                kcp_buf_append(&b, c, 1);
                continue;
            }
            size_t n = rune_len((const unsigned char *)c);
            if (n)
                rc = selector_fail(
                    out_err, "invalid field selector: invalid escape sequence: \\%.*s", (int)n, c);
            else
                rc = selector_fail(
                    out_err, "invalid field selector: invalid escape sequence: \\\xef\xbf\xbd");
            goto done;
        }
        if (*c == '\\') {
            in_slash = true;
        } else if (*c == ',' || *c == '=') {
            /* Go prints the rune with %v, which is its code point in decimal. */
            rc = selector_fail(out_err, "invalid field selector: unescaped character in value: %d",
                               *c);
            goto done;
        } else {
            kcp_buf_append(&b, c, 1);
        }
    }
    if (in_slash) {
        rc = selector_fail(out_err, "invalid field selector: invalid escape sequence: \\");
        goto done;
    }
    *out = kcp_buf_detach(&b);
done:
    kcp_buf_free(&b);
    return rc;
}

int kcp_selector_parse_fields(struct kcp_field_selector **out, const char *text, char **out_err)
{
    int rc = 0;
    size_t nparts = 0, len = strlen(text);
    char **parts = NULL;
    struct kcp_field_selector *sel = NULL;
    *out = NULL;
    if (out_err)
        *out_err = NULL;
    if (len > KCP_SELECTOR_MAX_LEN)
        return selector_fail(out_err, "field selector too long: %zu bytes (limit %d)", len,
                             KCP_SELECTOR_MAX_LEN);
    sel = kcp_calloc(1, sizeof(*sel));
    if (len == 0)
        goto done;
    parts = split_terms(text, &nparts);
    /* upstream sorts the parts before reading them: the first error reported is the
     * smallest bad part's, and terms come out in this order. */
    qsort(parts, nparts, sizeof(char *), cmp_str);
    sel->terms = kcp_calloc(nparts, sizeof(*sel->terms));
    for (size_t i = 0; i < nparts; i++) {
        size_t lhs_len;
        enum kcp_selector_op op;
        const char *rhs;
        if (!parts[i][0])
            continue;
        if (sel->n == KCP_SELECTOR_MAX_REQUIREMENTS) {
            rc = selector_fail(out_err, "too many field selector terms (limit %d)",
                               KCP_SELECTOR_MAX_REQUIREMENTS);
            goto done;
        }
        if (!split_term(parts[i], &lhs_len, &op, &rhs)) {
            rc = selector_fail(out_err, "invalid selector: '%s'; can't understand '%s'", text,
                               parts[i]);
            goto done;
        }
        struct term *t = &sel->terms[sel->n];
        if ((rc = unescape(rhs, &t->value, out_err)) != 0)
            goto done;
        t->field = kcp_strndup(parts[i], lhs_len);
        t->op = op;
        sel->n++;
    }
done:
    for (size_t i = 0; i < nparts; i++)
        free(parts[i]);
    free(parts);
    if (rc != 0) {
        kcp_selector_fields_free(sel);
        return rc;
    }
    *out = sel;
    return 0;
}

void kcp_selector_fields_free(struct kcp_field_selector *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->n; i++) {
        free(sel->terms[i].field);
        free(sel->terms[i].value);
    }
    free(sel->terms);
    free(sel);
}

int kcp_selector_fields_check(const struct kcp_field_selector *sel,
                              kcp_selector_field_supported_cb supported, void *ctx, char **out_err)
{
    if (out_err)
        *out_err = NULL;
    for (size_t i = 0; i < sel->n; i++)
        if (!supported(ctx, sel->terms[i].field))
            return selector_fail(out_err, "field label not supported: %s", sel->terms[i].field);
    return 0;
}

bool kcp_selector_fields_matches(const struct kcp_field_selector *sel,
                                 kcp_selector_field_get_cb get, void *ctx)
{
    for (size_t i = 0; i < sel->n; i++) {
        const struct term *t = &sel->terms[i];
        const char *v = NULL;
        if (get(ctx, t->field, &v) != 0 || !v)
            v = "";
        bool eq = strcmp(v, t->value) == 0;
        if (eq != (t->op != KCP_SELECTOR_NEQ))
            return false;
    }
    return true;
}

bool kcp_selector_fields_empty(const struct kcp_field_selector *sel)
{
    return sel->n == 0;
}

size_t kcp_selector_fields_count(const struct kcp_field_selector *sel)
{
    return sel->n;
}

void kcp_selector_fields_get(const struct kcp_field_selector *sel, size_t i,
                             struct kcp_selector_term *out)
{
    out->field = sel->terms[i].field;
    out->op = sel->terms[i].op;
    out->value = sel->terms[i].value;
}

const char *kcp_selector_fields_exact(const struct kcp_field_selector *sel, const char *field)
{
    for (size_t i = 0; i < sel->n; i++)
        if (sel->terms[i].op != KCP_SELECTOR_NEQ && strcmp(sel->terms[i].field, field) == 0)
            return sel->terms[i].value;
    return NULL;
}

char *kcp_selector_fields_string(const struct kcp_field_selector *sel)
{
    struct kcp_buf b = KCP_BUF_INIT;
    for (size_t i = 0; i < sel->n; i++) {
        const struct term *t = &sel->terms[i];
        /* upstream prints "==" terms as "=": both parse to the same term */
        kcp_buf_printf(&b, "%s%s%s", i ? "," : "", t->field,
                       t->op == KCP_SELECTOR_NEQ ? "!=" : "=");
        for (const char *c = t->value; *c; c++) {
            if (*c == '\\' || *c == ',' || *c == '=')
                kcp_buf_puts(&b, "\\");
            kcp_buf_append(&b, c, 1);
        }
    }
    return kcp_buf_detach(&b);
}
