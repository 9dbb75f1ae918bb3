/* uids, timestamps, generated names and name validation for object metadata. */
#include "meta.h"

#include <kcp/base.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return KCP_EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int api_meta_uid(char out[37])
{
    uint8_t b[16];
    int rc = random_bytes(b, sizeof(b));
    if (rc)
        return rc;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    return 0;
}

void api_meta_time(char *out, size_t cap, int64_t seconds)
{
    time_t t = (time_t)seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void api_meta_microtime(char *out, size_t cap, int64_t seconds, int32_t nanos)
{
    time_t t = (time_t)seconds;
    struct tm tm;
    char base[32];
    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%06dZ", base, (int)(nanos / 1000));
}

void api_meta_name_suffix(char out[6])
{
    /* Upstream's alphabet leaves out vowels and look-alike characters. */
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    uint8_t b[5] = {0};
    if (random_bytes(b, sizeof(b)) != 0) {
        /* getrandom cannot fail on Linux >= 3.17 once seeded; fall back to the clock. */
        uint64_t x = (uint64_t)time(NULL) * 2654435761u;
        for (int i = 0; i < 5; i++, x >>= 8)
            b[i] = (uint8_t)x;
    }
    for (int i = 0; i < 5; i++)
        out[i] = alphabet[b[i] % (sizeof(alphabet) - 1)];
    out[5] = '\0';
}

static bool is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most max characters. */
static bool label_ok(const char *s, size_t len)
{
    if (len == 0 || !is_alnum_lower(s[0]) || !is_alnum_lower(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum_lower(s[i]) && s[i] != '-')
            return false;
    return true;
}

char *api_meta_check_dns1123_label(const char *name)
{
    size_t len = strlen(name);
    if (len > 63)
        return kcp_strdup("must be no more than 63 characters");
    if (!label_ok(name, len))
        return kcp_strdup("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                          "characters or '-', and must start and end with an alphanumeric "
                          "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
    return NULL;
}

char *api_meta_check_dns1123_subdomain(const char *name)
{
    size_t len = strlen(name);
    if (len > 253)
        return kcp_strdup("must be no more than 253 characters");
    const char *p = name;
    bool ok = len > 0;
    while (ok) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        ok = label_ok(p, l);
        if (!dot)
            break;
        p = dot + 1;
    }
    if (!ok)
        return kcp_strdup("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric "
                          "character (e.g. 'example.com', regex used for validation is "
                          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
    return NULL;
}

char *api_meta_check_dns1035_label(const char *name)
{
    size_t len = strlen(name);
    if (len > 63)
        return kcp_strdup("must be no more than 63 characters");
    if (!label_ok(name, len) || !(name[0] >= 'a' && name[0] <= 'z'))
        return kcp_strdup("a DNS-1035 label must consist of lower case alphanumeric characters or "
                          "'-', start with an alphabetic character, and end with an alphanumeric "
                          "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                          "'[a-z]([-a-z0-9]*[a-z0-9])?')");
    return NULL;
}

char *api_meta_check_path_segment(const char *name)
{
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return kcp_sprintf("may not be '%s'", name);
    if (strchr(name, '/'))
        return kcp_strdup("may not contain '/'");
    if (strchr(name, '%'))
        return kcp_strdup("may not contain '%'");
    return NULL;
}

char *api_meta_check_config_key(const char *key)
{
    size_t n = strlen(key);
    if (n > 253)
        return kcp_strdup("must be no more than 253 characters");
    bool chars_ok = n > 0;
    for (const char *p = key; *p && chars_ok; p++)
        chars_ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.';
    if (!chars_ok)
        return kcp_strdup("a valid config key must consist of alphanumeric characters, '-', '_' or "
                          "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                          "validation is '[-._a-zA-Z0-9]+')");
    /* Keys become file names in volumes: no way out of the directory. */
    if (strcmp(key, ".") == 0 || strcmp(key, "..") == 0)
        return kcp_sprintf("must not be '%s'", key);
    if (strncmp(key, "..", 2) == 0)
        return kcp_strdup("must not start with '..'");
    return NULL;
}
