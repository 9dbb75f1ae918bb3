/* values.c: the special value formats (RFC 3339 times, Go durations, base64). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

int codec_fail(struct kcp_codec_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void split_time(int64_t seconds, int64_t *y, unsigned *mo, unsigned *d, unsigned *h,
                       unsigned *mi, unsigned *s)
{
    int64_t days = seconds / 86400, rem = seconds % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    civil_from_days(days, y, mo, d);
    *h = (unsigned)(rem / 3600);
    *mi = (unsigned)(rem % 3600 / 60);
    *s = (unsigned)(rem % 60);
    /* RFC 3339 has four-digit years; clamping also tells the compiler every field's width. */
    if (*y < 0)
        *y = 0;
    if (*y > 9999)
        *y = 9999;
    *mo %= 100u;
    *d %= 100u;
    *h %= 100u;
}

void kcp_codec_format_time(char *buf, int64_t seconds)
{
    int64_t y;
    unsigned mo, d, h, mi, s;
    split_time(seconds, &y, &mo, &d, &h, &mi, &s);
    snprintf(buf, 32, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, mo, d, h, mi, s);
}

void codec_format_microtime(char *buf, int64_t seconds, int32_t nanos)
{
    int64_t y;
    unsigned mo, d, h, mi, s;
    split_time(seconds, &y, &mo, &d, &h, &mi, &s);
    snprintf(buf, 40, "%04lld-%02u-%02uT%02u:%02u:%02u.%06dZ", (long long)y, mo, d, h, mi, s,
             (int)((unsigned)nanos % 1000000000u / 1000u));
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int kcp_codec_parse_time(const char *str, int64_t *out_seconds, int32_t *out_nanos)
{
    const char *p = str;
    int y, mo, d, h, mi, s, nanos = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || (*p != 'T' && *p != 't') || !*p++ || digits(&p, 2, &h) ||
        *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &s))
        return KCP_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return KCP_EINVAL;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 9)
                nanos = nanos * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return KCP_EINVAL;
        for (int i = n; i < 9; i++)
            nanos *= 10;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return KCP_EINVAL;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return KCP_EINVAL;
    }
    if (*p)
        return KCP_EINVAL;
    *out_seconds = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
                   s - off;
    *out_nanos = nanos;
    return 0;
}

/* Go's time.Duration.String(). */
void codec_format_duration(char *buf, size_t cap, int64_t ns)
{
    char tmp[64];
    int i = (int)sizeof(tmp);
    uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    bool neg = ns < 0;
    tmp[--i] = '\0';
    if (u < 1000000000ull) {
        /* Sub-second: ns, µs or ms with a fraction. */
        const char *unit;
        int prec;
        if (u == 0) {
            snprintf(buf, cap, "0s");
            return;
        } else if (u < 1000ull) {
            snprintf(buf, cap, "%s%lluns", neg ? "-" : "", (unsigned long long)u);
            return;
        } else if (u < 1000000ull) {
            unit = "\xc2\xb5s";
            prec = 3;
        } else {
            unit = "ms";
            prec = 6;
        }
        uint64_t div = prec == 3 ? 1000ull : 1000000ull;
        char frac[16];
        snprintf(frac, sizeof(frac), "%0*llu", prec, (unsigned long long)(u % div));
        int n = prec;
        while (n > 0 && frac[n - 1] == '0')
            frac[--n] = '\0';
        snprintf(buf, cap, "%s%llu%s%s%s", neg ? "-" : "", (unsigned long long)(u / div),
                 n ? "." : "", frac, unit);
        return;
    }
    uint64_t secs = u / 1000000000ull, frac = u % 1000000000ull;
    char fs[16] = "";
    if (frac) {
        snprintf(fs, sizeof(fs), ".%09llu", (unsigned long long)frac);
        size_t n = strlen(fs);
        while (n > 1 && fs[n - 1] == '0')
            fs[--n] = '\0';
    }
    uint64_t h = secs / 3600, m = secs / 60 % 60, s = secs % 60;
    if (h)
        snprintf(buf, cap, "%s%lluh%llum%llu%ss", neg ? "-" : "", (unsigned long long)h,
                 (unsigned long long)m, (unsigned long long)s, fs);
    else if (m)
        snprintf(buf, cap, "%s%llum%llu%ss", neg ? "-" : "", (unsigned long long)m,
                 (unsigned long long)s, fs);
    else
        snprintf(buf, cap, "%s%llu%ss", neg ? "-" : "", (unsigned long long)s, fs);
    (void)i;
}

int codec_parse_duration(const char *s, int64_t *out_ns)
{
    /* kcp_duration_parse works in milliseconds; durations in objects need nanoseconds. */
    const char *p = s;
    bool neg = false;
    double total = 0;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (strcmp(p, "0") == 0) {
        *out_ns = 0;
        return 0;
    }
    if (!*p)
        return KCP_EINVAL;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0)
            return KCP_EINVAL;
        p = end;
        double mul;
        if (strncmp(p, "ns", 2) == 0) {
            mul = 1;
            p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            mul = 1e3;
            p += 2;
        } else if (strncmp(p, "\xc2\xb5s", 3) == 0 || strncmp(p, "\xce\xbcs", 3) == 0) {
            mul = 1e3;
            p += 3;
        } else if (strncmp(p, "ms", 2) == 0) {
            mul = 1e6;
            p += 2;
        } else if (*p == 's') {
            mul = 1e9;
            p++;
        } else if (*p == 'm') {
            mul = 60e9;
            p++;
        } else if (*p == 'h') {
            mul = 3600e9;
            p++;
        } else {
            return KCP_EINVAL;
        }
        total += v * mul;
        if (total > 9.2e18)
            return KCP_EINVAL;
    }
    *out_ns = (int64_t)(neg ? -total : total);
    return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *codec_base64_encode(const uint8_t *data, size_t len)
{
    char *out = kcp_malloc((len + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[v >> 12 & 63];
        *o++ = b64[v >> 6 & 63];
        *o++ = b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64val(unsigned char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

bool codec_base64_decode(const char *s, size_t slen, uint8_t **out, size_t *out_len)
{
    /* Go's StdEncoding: padded; CR/LF are ignored. */
    uint8_t *buf = kcp_malloc(slen / 4 * 3 + 3);
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0, count = 0;
    for (size_t i = 0; i < slen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            count++;
            continue;
        }
        int v = b64val(c);
        if (v < 0 || pad) {
            free(buf);
            return false;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        count++;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
        }
    }
    if (count % 4 != 0 || pad > 2) {
        free(buf);
        return false;
    }
    *out = buf;
    *out_len = n;
    return true;
}

bool codec_json_is_empty(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return true;
    case JSON_STRING:
        return json_string_length(v) == 0;
    case JSON_INTEGER:
        return json_integer_value(v) == 0;
    case JSON_REAL:
        return json_real_value(v) == 0;
    case JSON_ARRAY:
        return json_array_size(v) == 0;
    case JSON_OBJECT:
        return json_object_size(v) == 0;
    default:
        return false;
    }
}
