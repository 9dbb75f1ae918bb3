/* json_write.c: trees to JSON text exactly as Go's encoding/json writes them (compact). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

static const char hex[] = "0123456789abcdef";

/* Length of a valid UTF-8 sequence at p (at most n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

static void write_string(struct kcp_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    kcp_buf_reserve(b, n + 2);
    kcp_buf_append(b, "\"", 1);
    size_t start = 0, i = 0;
    while (i < n) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char ubuf[7];
        size_t adv = 1;
        if (c < 0x80) {
            if (c == '"')
                esc = "\\\"";
            else if (c == '\\')
                esc = "\\\\";
            else if (c == '\n')
                esc = "\\n";
            else if (c == '\r')
                esc = "\\r";
            else if (c == '\t')
                esc = "\\t";
            else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                ubuf[0] = '\\', ubuf[1] = 'u', ubuf[2] = '0', ubuf[3] = '0';
                ubuf[4] = hex[c >> 4], ubuf[5] = hex[c & 15], ubuf[6] = '\0';
                esc = ubuf;
            }
        } else {
            uint32_t cp;
            adv = utf8_len(p + i, n - i, &cp);
            if (adv == 0) {
                esc = "\\ufffd";
                adv = 1;
            } else if (cp == 0x2028) {
                esc = "\\u2028";
            } else if (cp == 0x2029) {
                esc = "\\u2029";
            }
        }
        if (esc) {
            kcp_buf_append(b, s + start, i - start);
            kcp_buf_puts(b, esc);
            start = i + adv;
        }
        i += adv;
    }
    kcp_buf_append(b, s + start, n - start);
    kcp_buf_append(b, "\"", 1);
}

void kcp_codec_json_string(struct kcp_buf *out, const char *s, size_t n)
{
    write_string(out, s, n);
}

/* Go's float formatting in encoding/json: shortest round-trip digits, 'f' unless the exponent
 * is out of [1e-6, 1e21), then 'e' with a minimal negative exponent. */
static void write_real(struct kcp_buf *b, double f)
{
    char buf[64];
    if (!isfinite(f)) {
        kcp_buf_puts(b, "null"); /* Go refuses; never produced from parsed JSON */
        return;
    }
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    double a = fabs(f);
    if (a != 0 && (a < 1e-6 || a >= 1e21)) {
        /* buf is d.ddde±XX; Go writes e-7 rather than e-07, keeps e+21. */
        char *e = strchr(buf, 'e');
        char mant[40];
        size_t ml = (size_t)(e - buf);
        memcpy(mant, buf, ml);
        mant[ml] = '\0';
        int exp = atoi(e + 1);
        kcp_buf_printf(b, "%se%c%02d", mant, exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        if (exp < 0 && exp > -10) {
            /* "e-07" -> "e-7" */
            b->len -= 2;
            kcp_buf_printf(b, "%d", -exp);
        }
        return;
    }
    /* Fixed notation with exactly the significant digits found above. */
    int exp = atoi(strchr(buf, 'e') + 1);
    int decimals = prec - 1 - exp;
    if (decimals < 0)
        decimals = 0;
    kcp_buf_printf(b, "%.*f", decimals, f);
}

void kcp_codec_json_write(struct kcp_buf *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        bool first = true;
        kcp_buf_append(b, "{", 1);
        json_object_foreach((json_t *)v, k, x)
        {
            if (!first)
                kcp_buf_append(b, ",", 1);
            first = false;
            write_string(b, k, strlen(k));
            kcp_buf_append(b, ":", 1);
            kcp_codec_json_write(b, x);
        }
        kcp_buf_append(b, "}", 1);
        break;
    }
    case JSON_ARRAY: {
        kcp_buf_append(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                kcp_buf_append(b, ",", 1);
            kcp_codec_json_write(b, json_array_get(v, i));
        }
        kcp_buf_append(b, "]", 1);
        break;
    }
    case JSON_STRING:
        write_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        kcp_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        write_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        kcp_buf_puts(b, "true");
        break;
    case JSON_FALSE:
        kcp_buf_puts(b, "false");
        break;
    case JSON_NULL:
        kcp_buf_puts(b, "null");
        break;
    }
}
