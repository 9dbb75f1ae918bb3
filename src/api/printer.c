/*
 * Table cells: the generic cell kinds of proto/printers.tsv (paths, counts, joins, selectors,
 * ages) and the computed cells it names (api_cell_*), which are kubectl's printers for the
 * columns a path cannot express.
 */
#include "api_int.h"
#include "printer.h"
#include "printer_cells.h"

#include "meta.h"

#include <kcp/codec.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct api_printer *api_printer_for(const struct kcp_schema_resource *rsrc)
{
    for (size_t i = 0; i < api_nprinters; i++)
        if (strcmp(api_printers[i].resource, rsrc->resource) == 0 &&
            strcmp(api_printers[i].group, rsrc->group) == 0)
            return &api_printers[i];
    return &api_printer_default;
}

/* ---- paths: .a.b[0].c, and one [*] for joins ---- */

/*
 * Follows path from v up to its end or a "[*]" (then *rest points just past it). The generator
 * checked the syntax, so a segment is a name with an optional [N] or [*].
 */
static const json_t *walk(const json_t *v, const char *path, const char **rest)
{
    const char *p = path;
    *rest = NULL;
    while (v && *p == '.') {
        p++;
        size_t n = strcspn(p, ".[,");
        char key[128];
        snprintf(key, sizeof(key), "%.*s", (int)n, p);
        v = json_object_get(v, key);
        p += n;
        if (*p == '[') {
            if (p[1] == '*') {
                *rest = p + 3;
                return v;
            }
            v = json_array_get(v, strtoul(p + 1, NULL, 10));
            p = strchr(p, ']') + 1;
        }
    }
    return v;
}

static const json_t *at(const json_t *v, const char *path)
{
    const char *rest;
    return walk(v, path, &rest);
}

static json_t *str_or(const json_t *v, const char *dflt)
{
    const char *s = json_string_value(v);
    return json_string(s && *s ? s : dflt);
}

static size_t count(const json_t *v)
{
    return json_is_object(v) ? json_object_size(v) : json_is_array(v) ? json_array_size(v) : 0;
}

static json_t *count_cell(const json_t *obj, const char *paths)
{
    size_t n = 0;
    for (const char *p = paths; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        char one[128];
        snprintf(one, sizeof(one), "%.*s", (int)strcspn(p, ","), p);
        n += count(at(obj, one));
    }
    return json_integer((json_int_t)n);
}

static json_t *join_cell(const json_t *obj, const char *path)
{
    const char *rest;
    const json_t *list = walk(obj, path, &rest);
    struct kcp_buf b = KCP_BUF_INIT;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        if (i)
            kcp_buf_puts(&b, ",");
        kcp_buf_puts(&b, json_string_value(rest ? at(item, rest) : item) ?: "");
    }
    json_t *out = json_string(b.data ? b.data : "");
    kcp_buf_free(&b);
    return out;
}

/* k=v,... in the map's order; NULL when the map is empty. */
static char *pairs(const json_t *m)
{
    struct kcp_buf b = KCP_BUF_INIT;
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach((json_t *)m, k, v)
        kcp_buf_printf(&b, "%s%s=%s", n++ ? "," : "", k, json_string_value(v) ?: "");
    return kcp_buf_detach(&b);
}

static json_t *pairs_or_none(const json_t *m)
{
    char *s = pairs(m);
    json_t *out = json_string(s && *s ? s : "<none>");
    free(s);
    return out;
}

static json_t *selector_cell(const json_t *sel)
{
    const json_t *ml = json_object_get(sel, "matchLabels");
    if (!sel || (!ml && !json_object_get(sel, "matchExpressions")))
        return json_string("<none>");
    return pairs_or_none(ml);
}

static json_t *kv_cell(const json_t *m)
{
    if (!json_is_object(m) || json_object_size(m) == 0)
        return json_string("<none>");
    return pairs_or_none(m);
}

/* ---- ages ---- */

/* duration.HumanDuration's shape: 45s, 3m20s, 12m, 5h10m, 3d4h, 90d, 2y30d. */
static void human_age(char *out, size_t cap, int64_t secs)
{
    if (secs < -1) {
        snprintf(out, cap, "<invalid>");
        return;
    }
    if (secs < 0)
        secs = 0;
    int64_t m = secs / 60, h = secs / 3600, d = h / 24, y = d / 365;
    if (secs < 120)
        snprintf(out, cap, "%" PRId64 "s", secs);
    else if (m < 10 && secs % 60)
        snprintf(out, cap, "%" PRId64 "m%" PRId64 "s", m, secs % 60);
    else if (m < 180)
        snprintf(out, cap, "%" PRId64 "m", m);
    else if (h < 8 && m % 60)
        snprintf(out, cap, "%" PRId64 "h%" PRId64 "m", h, m % 60);
    else if (h < 48)
        snprintf(out, cap, "%" PRId64 "h", h);
    else if (h < 192 && h % 24)
        snprintf(out, cap, "%" PRId64 "d%" PRId64 "h", d, h % 24);
    else if (d < 730)
        snprintf(out, cap, "%" PRId64 "d", d);
    else if (y < 8 && d % 365)
        snprintf(out, cap, "%" PRId64 "y%" PRId64 "d", y, d % 365);
    else
        snprintf(out, cap, "%" PRId64 "y", y);
}

static json_t *age_cell(const json_t *obj, int64_t now)
{
    const char *ts = api_meta_str(obj, "creationTimestamp");
    int64_t s = 0;
    int32_t ns = 0;
    char buf[32];
    if (!ts || kcp_codec_parse_time(ts, &s, &ns) != 0)
        return json_string("<unknown>");
    human_age(buf, sizeof(buf), now - s);
    return json_string(buf);
}

json_t *api_printer_cell(const struct api_column *col, const json_t *obj, int64_t now)
{
    switch (col->cell) {
    case API_CELL_STR:
        return str_or(at(obj, col->path), col->dflt ? col->dflt : "");
    case API_CELL_INT: {
        const json_t *v = at(obj, col->path);
        return json_integer(json_is_integer(v) ? json_integer_value(v) : 0);
    }
    case API_CELL_COUNT:
        return count_cell(obj, col->path);
    case API_CELL_JOIN:
        return join_cell(obj, col->path);
    case API_CELL_SELECTOR:
        return selector_cell(at(obj, col->path));
    case API_CELL_KV:
        return kv_cell(at(obj, col->path));
    case API_CELL_AGE:
        return age_cell(obj, now);
    case API_CELL_CREATED: {
        const char *ts = api_meta_str(obj, "creationTimestamp");
        return ts ? json_string(ts) : json_null();
    }
    case API_CELL_LIT:
        return json_string(col->dflt ? col->dflt : "");
    case API_CELL_FN:
        return col->fn(obj, now);
    }
    return json_null();
}

/* ---- computed cells ---- */

json_t *api_cell_pod_ready(const json_t *o, int64_t now)
{
    (void)now;
    size_t total = json_array_size(at(o, ".spec.containers")), ready = 0, i;
    json_t *s;
    json_array_foreach(at(o, ".status.containerStatuses"), i, s)
        if (json_is_true(json_object_get(s, "ready")))
            ready++;
    char buf[48];
    snprintf(buf, sizeof(buf), "%zu/%zu", ready, total);
    return json_string(buf);
}

json_t *api_cell_pod_status(const json_t *o, int64_t now)
{
    (void)now;
    const char *reason = json_string_value(at(o, ".status.reason"));
    if (api_meta_str(o, "deletionTimestamp"))
        return json_string("Terminating");
    return reason ? json_string(reason) : str_or(at(o, ".status.phase"), "Pending");
}

json_t *api_cell_pod_restarts(const json_t *o, int64_t now)
{
    (void)now;
    json_int_t restarts = 0;
    size_t i;
    json_t *s;
    json_array_foreach(at(o, ".status.containerStatuses"), i, s)
        restarts += json_integer_value(json_object_get(s, "restartCount"));
    return json_integer(restarts);
}

json_t *api_cell_deployment_ready(const json_t *o, int64_t now)
{
    (void)now;
    char buf[48];
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
             json_integer_value(at(o, ".status.readyReplicas")),
             json_integer_value(at(o, ".spec.replicas")));
    return json_string(buf);
}

json_t *api_cell_service_ports(const json_t *o, int64_t now)
{
    (void)now;
    struct kcp_buf b = KCP_BUF_INIT;
    size_t i;
    json_t *p;
    json_array_foreach(at(o, ".spec.ports"), i, p) {
        if (i)
            kcp_buf_puts(&b, ",");
        kcp_buf_printf(&b, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(p, "port")));
        if (json_object_get(p, "nodePort"))
            kcp_buf_printf(&b, ":%" JSON_INTEGER_FORMAT,
                           json_integer_value(json_object_get(p, "nodePort")));
        kcp_buf_printf(&b, "/%s", json_string_value(json_object_get(p, "protocol")) ?: "TCP");
    }
    json_t *out = json_string(b.len ? b.data : "<none>");
    kcp_buf_free(&b);
    return out;
}

json_t *api_cell_node_status(const json_t *o, int64_t now)
{
    (void)now;
    const char *ready = "Unknown";
    size_t i;
    json_t *c;
    json_array_foreach(at(o, ".status.conditions"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "type")) ?: "", "Ready") == 0)
            ready = strcmp(json_string_value(json_object_get(c, "status")) ?: "", "True") == 0
                        ? "Ready" : "NotReady";
    }
    char status[64];
    snprintf(status, sizeof(status), "%s%s", ready,
             json_is_true(at(o, ".spec.unschedulable")) ? ",SchedulingDisabled" : "");
    return json_string(status);
}

/* A Job without completions runs until one pod succeeds. */
static json_int_t job_completions(const json_t *o)
{
    const json_t *c = at(o, ".spec.completions");
    return json_is_integer(c) ? json_integer_value(c) : 1;
}

json_t *api_cell_job_status(const json_t *o, int64_t now)
{
    (void)now;
    bool done = json_integer_value(at(o, ".status.succeeded")) >= job_completions(o);
    return json_string(done ? "Complete" : "Running");
}

json_t *api_cell_job_completions(const json_t *o, int64_t now)
{
    (void)now;
    char buf[48];
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
             json_integer_value(at(o, ".status.succeeded")), job_completions(o));
    return json_string(buf);
}
