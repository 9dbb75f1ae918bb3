/* JSON pointers and container operations with upstream's (evanphx/json-patch v4) semantics. */
#include "patch_int.h"

#include <stdlib.h>
#include <string.h>

#define INVALID_INDEX "Unable to access invalid index: %lld: invalid index referenced"

/* RFC 6901 decoding in one left-to-right pass: "~1" is "/", "~0" is "~", any other "~" stays. */
static char *decode_token(const char *s, size_t n)
{
    char *out = kcp_malloc(n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~' && i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '1')) {
            out[w++] = s[i + 1] == '1' ? '/' : '~';
            i++;
        } else {
            out[w++] = s[i];
        }
    }
    out[w] = 0;
    return out;
}

/*
 * Go's strconv.Atoi: an optional sign and decimal digits. Returns NULL and *out, or the error
 * text Go gives ("strconv.Atoi: parsing \"x\": invalid syntax"); the first problem met wins.
 */
static char *go_atoi(const char *s, long long *out)
{
    const char *p = s;
    const char *why = NULL;
    bool neg = false;
    unsigned long long v = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!*p)
        why = "invalid syntax";
    for (; *p && !why; p++) {
        if (*p < '0' || *p > '9') {
            why = "invalid syntax";
            break;
        }
        unsigned d = (unsigned)(*p - '0');
        /* like Go, overflow is noticed past uint64 while scanning, int64 at the end */
        if (v > (UINT64_MAX - d) / 10)
            why = "value out of range";
        else
            v = v * 10 + d;
    }
    if (!why && v > (unsigned long long)INT64_MAX + (neg ? 1ULL : 0ULL))
        why = "value out of range";
    if (why) {
        struct kcp_buf b = KCP_BUF_INIT;
        kcp_buf_puts(&b, "strconv.Atoi: parsing ");
        patch_go_quote(&b, s);
        kcp_buf_printf(&b, ": %s", why);
        return kcp_buf_detach(&b);
    }
    *out = neg ? (long long)(0ULL - v) : (long long)v;
    return NULL;
}

static char *invalid_index(long long idx)
{
    return kcp_sprintf(INVALID_INDEX, idx);
}

/* Index for get/set/remove: negative counts from the end, then it must be inside the array. */
static char *array_index(json_t *a, const char *key, size_t *out)
{
    long long idx, len = (long long)json_array_size(a);
    char *err = go_atoi(key, &idx);
    if (err)
        return err;
    if (idx < 0) {
        if (idx < -len)
            return invalid_index(idx);
        idx += len;
    }
    if (idx >= len)
        return invalid_index(idx);
    *out = (size_t)idx;
    return NULL;
}

char *patch_container_get(json_t *c, const char *key, json_t **out)
{
    *out = NULL;
    if (json_is_object(c)) {
        json_t *v = json_object_get(c, key);
        *out = json_is_null(v) ? NULL : v;
        return NULL;
    }
    size_t i = 0;
    char *err = array_index(c, key, &i);
    if (err)
        return err;
    json_t *v = json_array_get(c, i);
    *out = json_is_null(v) ? NULL : v;
    return NULL;
}

char *patch_container_set(json_t *c, const char *key, json_t *val)
{
    if (json_is_object(c)) {
        json_object_set_new(c, key, val);
        return NULL;
    }
    size_t i = 0;
    char *err = array_index(c, key, &i);
    if (err) {
        json_decref(val);
        return err;
    }
    json_array_set_new(c, i, val);
    return NULL;
}

char *patch_container_add(json_t *c, const char *key, json_t *val)
{
    if (json_is_object(c)) {
        json_object_set_new(c, key, val);
        return NULL;
    }
    if (strcmp(key, "-") == 0) {
        json_array_append_new(c, val);
        return NULL;
    }
    long long idx, size = (long long)json_array_size(c) + 1;
    char *err = go_atoi(key, &idx);
    if (err) {
        char *msg = kcp_sprintf("value was not a proper array index: '%s': %s", key, err);
        free(err);
        json_decref(val);
        return msg;
    }
    if (idx >= size || idx < -size) {
        json_decref(val);
        return invalid_index(idx);
    }
    if (idx < 0)
        idx += size;
    json_array_insert_new(c, (size_t)idx, val);
    return NULL;
}

char *patch_container_remove(json_t *c, const char *key)
{
    if (json_is_object(c)) {
        if (!json_object_get(c, key))
            return kcp_sprintf("Unable to remove nonexistent key: %s: missing value", key);
        json_object_del(c, key);
        return NULL;
    }
    size_t i = 0;
    char *err = array_index(c, key, &i);
    if (err)
        return err;
    json_array_remove(c, i);
    return NULL;
}

void patch_target_clear(struct patch_target *t)
{
    free(t->key);
    t->key = NULL;
    t->container = NULL;
}

/*
 * Upstream splits on "/" and walks every token but the first (which it ignores, so "a/b" acts
 * like "/b") and the last. A missing step, a null, or a scalar on the way means no parent.
 */
void patch_pointer_find(json_t *root, const char *path, struct patch_target *out)
{
    out->container = NULL;
    out->key = NULL;
    const char *tok = strchr(path, '/');
    if (!tok)
        return;
    json_t *doc = root;
    for (;;) {
        const char *start = tok + 1;
        const char *end = strchr(start, '/');
        if (!end) {
            out->container = doc;
            out->key = decode_token(start, strlen(start));
            return;
        }
        char *key = decode_token(start, (size_t)(end - start));
        json_t *next = NULL;
        char *err = patch_container_get(doc, key, &next);
        free(key);
        if (err) {
            free(err);
            return;
        }
        if (!next || (!json_is_object(next) && !json_is_array(next)))
            return;
        doc = next;
        tok = end;
    }
}

int patch_pointer_depth(const char *path)
{
    int n = 0;
    for (; *path; path++)
        n += *path == '/';
    return n;
}
