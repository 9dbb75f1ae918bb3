/* Object naming (store key -> tree path, ref name, CLI spelling), exclusion rules, rendering. */
#include "history_int.h"

#include <kcp/codec.h>

#include <stdlib.h>
#include <string.h>

#define DEFAULT_EXCLUDE "core/events,events.k8s.io/events,coordination.k8s.io/leases"

int history_key_parse(struct history_key *out, const char *key, size_t len)
{
    const char *part[4];
    size_t plen[4];
    const char *p = key, *end = key + len;
    if (len < 2 || key[0] != '/')
        return KCP_EINVAL;
    p++;
    for (int i = 0; i < 4; i++) {
        const char *slash = i < 3 ? memchr(p, '/', (size_t)(end - p)) : end;
        if (!slash || slash == p)
            return KCP_EINVAL;
        part[i] = p;
        plen[i] = (size_t)(slash - p);
        p = slash + 1;
    }
    /* A name with a slash, ".", ".." or a NUL would escape or break the tree. */
    if (memchr(part[3], '/', plen[3]) || memchr(key, '\0', len))
        return KCP_EINVAL;
    for (int i = 0; i < 4; i++)
        if ((plen[i] == 1 && part[i][0] == '.') ||
            (plen[i] == 2 && part[i][0] == '.' && part[i][1] == '.'))
            return KCP_EINVAL;
    *out = (struct history_key){part[0], part[1], part[2], part[3],
                                plen[0], plen[1], plen[2], plen[3]};
    return 0;
}

static bool cluster_scoped(const struct history_key *k)
{
    return k->ns_len == 1 && k->ns[0] == '_';
}

void history_key_path(struct kcp_buf *out, const struct history_key *k)
{
    /* Appends, not printf: this runs for every recorded write. */
    kcp_buf_reset(out);
    kcp_buf_append(out, k->group, k->group_len);
    kcp_buf_append(out, "/", 1);
    kcp_buf_append(out, k->resource, k->resource_len);
    kcp_buf_append(out, "/", 1);
    if (cluster_scoped(k))
        kcp_buf_puts(out, "_cluster");
    else
        kcp_buf_append(out, k->ns, k->ns_len);
    kcp_buf_append(out, "/", 1);
    kcp_buf_append(out, k->name, k->name_len);
    kcp_buf_puts(out, ".yaml");
}

void history_key_spec(struct kcp_buf *out, const struct history_key *k)
{
    kcp_buf_append(out, k->resource, k->resource_len);
    if (!(k->group_len == 4 && memcmp(k->group, "core", 4) == 0)) {
        kcp_buf_append(out, ".", 1);
        kcp_buf_append(out, k->group, k->group_len);
    }
    if (!cluster_scoped(k)) {
        kcp_buf_append(out, "/", 1);
        kcp_buf_append(out, k->ns, k->ns_len);
    }
    kcp_buf_append(out, "/", 1);
    kcp_buf_append(out, k->name, k->name_len);
}

static void ref_part(struct kcp_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || (c == '.' && i > 0 && s[i - 1] != '.');
        if (ok)
            kcp_buf_append(out, s + i, 1);
        else
            kcp_buf_printf(out, "%%%02X", c);
    }
}

void history_key_ref(struct kcp_buf *out, const struct history_key *k)
{
    struct kcp_buf res = KCP_BUF_INIT;
    kcp_buf_append(&res, k->resource, k->resource_len);
    if (!(k->group_len == 4 && memcmp(k->group, "core", 4) == 0))
        kcp_buf_printf(&res, ".%.*s", (int)k->group_len, k->group);
    ref_part(out, res.data, res.len);
    kcp_buf_puts(out, "/");
    if (cluster_scoped(k))
        kcp_buf_puts(out, "_cluster");
    else
        ref_part(out, k->ns, k->ns_len);
    kcp_buf_puts(out, "/");
    ref_part(out, k->name, k->name_len);
    kcp_buf_free(&res);
}

void history_rules_init(struct history_rules *r, const char *spec)
{
    memset(r, 0, sizeof(*r));
    if (!spec)
        spec = DEFAULT_EXCLUDE;
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n) {
            r->skip = kcp_realloc(r->skip, (r->n + 1) * sizeof(*r->skip));
            r->skip[r->n++] = kcp_strndup(p, n);
        }
        p += n + (comma ? 1 : 0);
    }
}

void history_rules_free(struct history_rules *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->skip[i]);
    free(r->skip);
    memset(r, 0, sizeof(*r));
}

bool history_rules_skip(const struct history_rules *r, const struct history_key *k)
{
    for (size_t i = 0; i < r->n; i++) {
        const char *s = r->skip[i];
        size_t n = strlen(s);
        if (n == k->group_len + 1 + k->resource_len && memcmp(s, k->group, k->group_len) == 0 &&
            s[k->group_len] == '/' &&
            memcmp(s + k->group_len + 1, k->resource, k->resource_len) == 0)
            return true;
    }
    return false;
}

int history_render_json(struct kcp_buf *out, const char *json, size_t len)
{
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return KCP_EINVALID;
    }
    json_t *meta = json_object_get(doc, "metadata");
    if (json_is_object(meta)) {
        /* The entry's index: already the commit's Resource-Version trailer. */
        json_object_del(meta, "resourceVersion");
        /* The time of each manager's last write would make every write touch the file. */
        json_t *mf = json_object_get(meta, "managedFields");
        size_t i;
        json_t *m;
        json_array_foreach (mf, i, m)
            json_object_del(m, "time");
    }
    kcp_codec_yaml_write(out, doc);
    json_decref(doc);
    return 0;
}

int history_render(struct kcp_buf *out, const char *json, size_t len)
{
    return history_render_fast(out, json, len) ? 0 : history_render_json(out, json, len);
}
