/* Allocation that aborts on exhaustion, and the growable buffer. */
#include <kcp/base.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t size)
{
    fprintf(stderr, "kcp: out of memory allocating %zu bytes\n", size);
    abort();
}

void *kcp_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

void *kcp_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *kcp_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

char *kcp_strdup(const char *s)
{
    return kcp_strndup(s, strlen(s));
}

char *kcp_strndup(const char *s, size_t n)
{
    char *p = kcp_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *kcp_sprintf(const char *fmt, ...)
{
    struct kcp_buf b = KCP_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    kcp_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return kcp_buf_detach(&b);
}

void kcp_buf_reserve(struct kcp_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = kcp_realloc(b->data, cap);
    b->cap = cap;
}

void kcp_buf_append(struct kcp_buf *b, const void *data, size_t len)
{
    kcp_buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void kcp_buf_puts(struct kcp_buf *b, const char *s)
{
    kcp_buf_append(b, s, strlen(s));
}

void kcp_buf_vprintf(struct kcp_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return;
    kcp_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void kcp_buf_printf(struct kcp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kcp_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void kcp_buf_json_string(struct kcp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    kcp_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
        switch (*p) {
        case '"': kcp_buf_append(b, "\\\"", 2); break;
        case '\\': kcp_buf_append(b, "\\\\", 2); break;
        case '\n': kcp_buf_append(b, "\\n", 2); break;
        case '\r': kcp_buf_append(b, "\\r", 2); break;
        case '\t': kcp_buf_append(b, "\\t", 2); break;
        default:
            if (*p < 0x20)
                kcp_buf_append(b, esc, 6);
            else
                kcp_buf_append(b, p, 1);
        }
    }
    kcp_buf_append(b, "\"", 1);
}

void kcp_buf_reset(struct kcp_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *kcp_buf_detach(struct kcp_buf *b)
{
    char *p = b->data ? b->data : kcp_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void kcp_buf_free(struct kcp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
