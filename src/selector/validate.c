/* Label key and value validation in upstream's words (k8s.io/apimachinery/pkg/util/validation). */
#include "selector_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Users compare these against upstream's output, so they are kept character for character. */
#define QNAME_FMT "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
#define QNAME_MSG                                                                                  \
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "    \
    "alphanumeric character"
#define QNAME_EXAMPLES "(e.g. 'MyName',  or 'my.name',  or '123-abc', "
#define VALUE_FMT "(" QNAME_FMT ")?"
#define VALUE_MSG                                                                                  \
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "    \
    "'.', and must start and end with an alphanumeric character"
#define VALUE_EXAMPLES "(e.g. 'MyValue',  or 'my_value',  or '12345', "
#define DNS_FMT "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
#define DNS_MSG                                                                                    \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "   \
    "'.', and must start and end with an alphanumeric character"
#define REGEX_USED "regex used for validation is '"

#define QNAME_MAX 63
#define VALUE_MAX 63
#define DNS_SUBDOMAIN_MAX 253

int selector_fail(char **out_err, const char *fmt, ...)
{
    if (out_err) {
        struct kcp_buf b = KCP_BUF_INIT;
        va_list ap;
        va_start(ap, fmt);
        kcp_buf_vprintf(&b, fmt, ap);
        va_end(ap);
        *out_err = kcp_buf_detach(&b);
    }
    return KCP_EBADREQUEST;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] over s[0..n) */
static bool qname_ok(const char *s, size_t n)
{
    if (n == 0 || !is_alnum((unsigned char)s[0]) || !is_alnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

/* One RFC 1123 label per dot: [a-z0-9]([-a-z0-9]*[a-z0-9])? */
static bool dns_subdomain_ok(const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        size_t len = i - start;
        if (len == 0)
            return false;
        for (size_t j = start; j < i; j++) {
            unsigned char c = (unsigned char)s[j];
            bool lower_alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
            if (!lower_alnum && (c != '-' || j == start || j == i - 1))
                return false;
        }
        start = i + 1;
    }
    return true;
}

static void add_err(struct kcp_buf *b, const char *msg)
{
    if (b->len)
        kcp_buf_puts(b, "; ");
    kcp_buf_puts(b, msg);
}

char *selector_check_key(const char *key)
{
    struct kcp_buf b = KCP_BUF_INIT;
    const char *slash = strchr(key, '/');
    const char *name = key;
    if (slash && strchr(slash + 1, '/')) {
        kcp_buf_puts(&b, "a qualified name " QNAME_MSG " " QNAME_EXAMPLES REGEX_USED QNAME_FMT
                         "') with an optional DNS subdomain prefix and '/' (e.g. "
                         "'example.com/MyName')");
        return kcp_buf_detach(&b);
    }
    if (slash) {
        size_t plen = (size_t)(slash - key);
        name = slash + 1;
        if (plen == 0) {
            add_err(&b, "prefix part must be non-empty");
        } else {
            if (plen > DNS_SUBDOMAIN_MAX)
                add_err(&b, "prefix part must be no more than 253 characters");
            if (!dns_subdomain_ok(key, plen))
                add_err(&b,
                        "prefix part " DNS_MSG " (e.g. 'example.com', " REGEX_USED DNS_FMT "')");
        }
    }
    size_t nlen = strlen(name);
    if (nlen == 0)
        add_err(&b, "name part must be non-empty");
    else if (nlen > QNAME_MAX)
        add_err(&b, "name part must be no more than 63 characters");
    if (!qname_ok(name, nlen))
        add_err(&b, "name part " QNAME_MSG " " QNAME_EXAMPLES REGEX_USED QNAME_FMT "')");
    if (!b.len)
        return NULL;
    return kcp_buf_detach(&b);
}

char *selector_check_value(const char *value)
{
    struct kcp_buf b = KCP_BUF_INIT;
    size_t n = strlen(value);
    if (n > VALUE_MAX)
        add_err(&b, "must be no more than 63 characters");
    if (n != 0 && !qname_ok(value, n))
        add_err(&b, VALUE_MSG " " VALUE_EXAMPLES REGEX_USED VALUE_FMT "')");
    if (!b.len)
        return NULL;
    return kcp_buf_detach(&b);
}

bool selector_parse_int64(const char *s, int64_t *out)
{
    bool neg = false;
    uint64_t v = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
            return false;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* Length of the valid UTF-8 sequence at s, or 0 if the bytes there are not one. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid, as in Go. */
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void selector_quote(struct kcp_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    kcp_buf_puts(b, "\"");
    while (*p) {
        unsigned char c = *p;
        size_t n = utf8_len(p);
        if (c == '"' || c == '\\') {
            kcp_buf_printf(b, "\\%c", c);
        } else if (c == '\n') {
            kcp_buf_puts(b, "\\n");
        } else if (c == '\t') {
            kcp_buf_puts(b, "\\t");
        } else if (c == '\r') {
            kcp_buf_puts(b, "\\r");
        } else if (c == '\a') {
            kcp_buf_puts(b, "\\a");
        } else if (c == '\b') {
            kcp_buf_puts(b, "\\b");
        } else if (c == '\f') {
            kcp_buf_puts(b, "\\f");
        } else if (c == '\v') {
            kcp_buf_puts(b, "\\v");
        } else if (c < 0x20 || c == 0x7f || n == 0) {
            kcp_buf_printf(b, "\\x%02x", c);
            n = 1;
        } else {
            /* Printable ASCII and valid UTF-8 pass through (Go also escapes non-printable
             * runes above U+007F; those cannot be label keys or values anyway). */
            kcp_buf_append(b, p, n);
        }
        p += n ? n : 1;
    }
    kcp_buf_puts(b, "\"");
}
