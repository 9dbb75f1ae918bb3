/* meta.k8s.io/v1 Table rendering for `kubectl get`: upstream's column sets for common kinds. */
#include "api_int.h"

#include "list.h"
#include "meta.h"

#include <kcp/codec.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct column {
    const char *name;
    const char *type; /* string, integer, boolean, date */
    const char *format;
    int priority;
};

typedef void (*cells_fn)(json_t *cells, const json_t *obj, int64_t now);

struct printer {
    const char *resource;
    struct column columns[12];
    cells_fn cells;
};

/* ---- formatting ---- */

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

static const json_t *at(const json_t *v, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *seg = strtok_r(buf, ".", &save); seg && v; seg = strtok_r(NULL, ".", &save))
        v = json_object_get(v, seg);
    return v;
}

static json_t *str_or(const json_t *v, const char *dflt)
{
    const char *s = json_string_value(v);
    return json_string(s && *s ? s : dflt);
}

static json_t *int_cell(const json_t *v)
{
    return json_integer(json_is_integer(v) ? json_integer_value(v) : 0);
}

static size_t count_keys(const json_t *v)
{
    return json_is_object(v) ? json_object_size(v) : 0;
}

static void join_container_field(struct kcp_buf *b, const json_t *containers, const char *field)
{
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        if (i)
            kcp_buf_puts(b, ",");
        kcp_buf_puts(b, json_string_value(json_object_get(c, field)) ?: "");
    }
}

static json_t *selector_cell(const json_t *sel)
{
    const json_t *ml = json_object_get(sel, "matchLabels");
    if (!sel || (!ml && !json_object_get(sel, "matchExpressions")))
        return json_string("<none>");
    struct kcp_buf b = KCP_BUF_INIT;
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach((json_t *)ml, k, v) {
        kcp_buf_printf(&b, "%s%s=%s", n++ ? "," : "", k, json_string_value(v) ?: "");
    }
    json_t *out = json_string(b.len ? b.data : "<none>");
    kcp_buf_free(&b);
    return out;
}

static json_t *map_selector_cell(const json_t *m)
{
    if (!json_is_object(m) || json_object_size(m) == 0)
        return json_string("<none>");
    struct kcp_buf b = KCP_BUF_INIT;
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach((json_t *)m, k, v) {
        kcp_buf_printf(&b, "%s%s=%s", n++ ? "," : "", k, json_string_value(v) ?: "");
    }
    json_t *out = json_string(b.data);
    kcp_buf_free(&b);
    return out;
}

/* ---- per-kind cells ---- */

static void cells_configmap(json_t *cells, const json_t *o, int64_t now)
{
    json_array_append_new(cells, json_integer((json_int_t)(count_keys(json_object_get(o, "data")) +
                                                           count_keys(json_object_get(o, "binaryData")))));
    json_array_append_new(cells, age_cell(o, now));
}

static void cells_secret(json_t *cells, const json_t *o, int64_t now)
{
    json_array_append_new(cells, str_or(json_object_get(o, "type"), "Opaque"));
    json_array_append_new(cells, json_integer((json_int_t)count_keys(json_object_get(o, "data"))));
    json_array_append_new(cells, age_cell(o, now));
}

static void cells_namespace(json_t *cells, const json_t *o, int64_t now)
{
    json_array_append_new(cells, str_or(at(o, "status.phase"), "Active"));
    json_array_append_new(cells, age_cell(o, now));
}

static void cells_pod(json_t *cells, const json_t *o, int64_t now)
{
    const json_t *containers = at(o, "spec.containers");
    const json_t *statuses = at(o, "status.containerStatuses");
    size_t total = json_array_size(containers), ready = 0, i;
    json_int_t restarts = 0;
    json_t *s;
    json_array_foreach(statuses, i, s) {
        if (json_is_true(json_object_get(s, "ready")))
            ready++;
        restarts += json_integer_value(json_object_get(s, "restartCount"));
    }
    char buf[32];
    snprintf(buf, sizeof(buf), "%zu/%zu", ready, total);
    json_array_append_new(cells, json_string(buf));
    const char *reason = json_string_value(at(o, "status.reason"));
    if (api_meta_str(o, "deletionTimestamp"))
        json_array_append_new(cells, json_string("Terminating"));
    else
        json_array_append_new(cells, reason ? json_string(reason) : str_or(at(o, "status.phase"), "Pending"));
    json_array_append_new(cells, json_integer(restarts));
    json_array_append_new(cells, age_cell(o, now));
    json_array_append_new(cells, str_or(at(o, "status.podIP"), "<none>"));
    json_array_append_new(cells, str_or(at(o, "spec.nodeName"), "<none>"));
    json_array_append_new(cells, str_or(at(o, "status.nominatedNodeName"), "<none>"));
    json_array_append_new(cells, json_string("<none>"));
}

static void workload_wide(json_t *cells, const json_t *o)
{
    const json_t *containers = at(o, "spec.template.spec.containers");
    struct kcp_buf b = KCP_BUF_INIT;
    join_container_field(&b, containers, "name");
    json_array_append_new(cells, json_string(b.data ? b.data : ""));
    kcp_buf_reset(&b);
    join_container_field(&b, containers, "image");
    json_array_append_new(cells, json_string(b.data ? b.data : ""));
    kcp_buf_free(&b);
    json_array_append_new(cells, selector_cell(at(o, "spec.selector")));
}

static void cells_deployment(json_t *cells, const json_t *o, int64_t now)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
             json_integer_value(at(o, "status.readyReplicas")),
             json_integer_value(at(o, "spec.replicas")));
    json_array_append_new(cells, json_string(buf));
    json_array_append_new(cells, int_cell(at(o, "status.updatedReplicas")));
    json_array_append_new(cells, int_cell(at(o, "status.availableReplicas")));
    json_array_append_new(cells, age_cell(o, now));
    workload_wide(cells, o);
}

static void cells_replicaset(json_t *cells, const json_t *o, int64_t now)
{
    json_array_append_new(cells, int_cell(at(o, "spec.replicas")));
    json_array_append_new(cells, int_cell(at(o, "status.replicas")));
    json_array_append_new(cells, int_cell(at(o, "status.readyReplicas")));
    json_array_append_new(cells, age_cell(o, now));
    workload_wide(cells, o);
}

static void ports_cell(struct kcp_buf *b, const json_t *ports)
{
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p) {
        if (i)
            kcp_buf_puts(b, ",");
        kcp_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(p, "port")));
        if (json_object_get(p, "nodePort"))
            kcp_buf_printf(b, ":%" JSON_INTEGER_FORMAT,
                           json_integer_value(json_object_get(p, "nodePort")));
        kcp_buf_printf(b, "/%s", json_string_value(json_object_get(p, "protocol")) ?: "TCP");
    }
}

static void cells_service(json_t *cells, const json_t *o, int64_t now)
{
    json_array_append_new(cells, str_or(at(o, "spec.type"), "ClusterIP"));
    json_array_append_new(cells, str_or(at(o, "spec.clusterIP"), "<none>"));
    const json_t *ext = at(o, "spec.externalIPs");
    json_array_append_new(cells, json_array_size(ext) ? str_or(json_array_get(ext, 0), "<none>")
                                                      : json_string("<none>"));
    struct kcp_buf b = KCP_BUF_INIT;
    ports_cell(&b, at(o, "spec.ports"));
    json_array_append_new(cells, json_string(b.len ? b.data : "<none>"));
    kcp_buf_free(&b);
    json_array_append_new(cells, age_cell(o, now));
    json_array_append_new(cells, map_selector_cell(at(o, "spec.selector")));
}

static void cells_node(json_t *cells, const json_t *o, int64_t now)
{
    const char *ready = "Unknown";
    size_t i;
    json_t *c;
    json_array_foreach((json_t *)at(o, "status.conditions"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "type")) ?: "", "Ready") == 0)
            ready = strcmp(json_string_value(json_object_get(c, "status")) ?: "", "True") == 0
                        ? "Ready" : "NotReady";
    }
    char status[64];
    snprintf(status, sizeof(status), "%s%s", ready,
             json_is_true(at(o, "spec.unschedulable")) ? ",SchedulingDisabled" : "");
    json_array_append_new(cells, json_string(status));
    json_array_append_new(cells, json_string("<none>"));
    json_array_append_new(cells, age_cell(o, now));
    json_array_append_new(cells, str_or(at(o, "status.nodeInfo.kubeletVersion"), ""));
}

static void cells_lease(json_t *cells, const json_t *o, int64_t now)
{
    json_array_append_new(cells, str_or(at(o, "spec.holderIdentity"), ""));
    json_array_append_new(cells, age_cell(o, now));
}

static void cells_serviceaccount(json_t *cells, const json_t *o, int64_t now)
{
    json_array_append_new(cells, json_integer((json_int_t)json_array_size(json_object_get(o, "secrets"))));
    json_array_append_new(cells, age_cell(o, now));
}

static void cells_job(json_t *cells, const json_t *o, int64_t now)
{
    char buf[32];
    json_int_t comp = json_is_integer(at(o, "spec.completions")) ? json_integer_value(at(o, "spec.completions")) : 1;
    json_array_append_new(cells, str_or(NULL, json_integer_value(at(o, "status.succeeded")) >= comp ? "Complete" : "Running"));
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
             json_integer_value(at(o, "status.succeeded")), comp);
    json_array_append_new(cells, json_string(buf));
    json_array_append_new(cells, json_string(""));
    json_array_append_new(cells, age_cell(o, now));
    workload_wide(cells, o);
}

static void cells_default(json_t *cells, const json_t *o, int64_t now)
{
    const char *ts = api_meta_str(o, "creationTimestamp");
    json_array_append_new(cells, ts ? json_string(ts) : json_null());
}

#define NAME_COL {"Name", "string", "name", 0}
#define AGE_COL {"Age", "string", "", 0}
static const struct printer printers[] = {
    {"configmaps", {NAME_COL, {"Data", "integer", "", 0}, AGE_COL}, cells_configmap},
    {"secrets", {NAME_COL, {"Type", "string", "", 0}, {"Data", "integer", "", 0}, AGE_COL}, cells_secret},
    {"namespaces", {NAME_COL, {"Status", "string", "", 0}, AGE_COL}, cells_namespace},
    {"pods", {NAME_COL, {"Ready", "string", "", 0}, {"Status", "string", "", 0},
              {"Restarts", "string", "", 0}, AGE_COL, {"IP", "string", "", 1},
              {"Node", "string", "", 1}, {"Nominated Node", "string", "", 1},
              {"Readiness Gates", "string", "", 1}}, cells_pod},
    {"deployments", {NAME_COL, {"Ready", "string", "", 0}, {"Up-to-date", "integer", "", 0},
                     {"Available", "integer", "", 0}, AGE_COL, {"Containers", "string", "", 1},
                     {"Images", "string", "", 1}, {"Selector", "string", "", 1}}, cells_deployment},
    {"replicasets", {NAME_COL, {"Desired", "integer", "", 0}, {"Current", "integer", "", 0},
                     {"Ready", "integer", "", 0}, AGE_COL, {"Containers", "string", "", 1},
                     {"Images", "string", "", 1}, {"Selector", "string", "", 1}}, cells_replicaset},
    {"services", {NAME_COL, {"Type", "string", "", 0}, {"Cluster-IP", "string", "", 0},
                  {"External-IP", "string", "", 0}, {"Port(s)", "string", "", 0}, AGE_COL,
                  {"Selector", "string", "", 1}}, cells_service},
    {"nodes", {NAME_COL, {"Status", "string", "", 0}, {"Roles", "string", "", 0}, AGE_COL,
               {"Version", "string", "", 0}}, cells_node},
    {"leases", {NAME_COL, {"Holder", "string", "", 0}, AGE_COL}, cells_lease},
    {"serviceaccounts", {NAME_COL, {"Secrets", "integer", "", 0}, AGE_COL}, cells_serviceaccount},
    {"jobs", {NAME_COL, {"Status", "string", "", 0}, {"Completions", "string", "", 0},
              {"Duration", "string", "", 0}, AGE_COL, {"Containers", "string", "", 1},
              {"Images", "string", "", 1}, {"Selector", "string", "", 1}}, cells_job},
};
static const struct printer default_printer = {
    "", {NAME_COL, {"Created At", "date", "", 0}}, cells_default};

static const struct printer *printer_for(const struct kcp_schema_resource *rsrc)
{
    for (size_t i = 0; i < sizeof(printers) / sizeof(printers[0]); i++)
        if (strcmp(printers[i].resource, rsrc->resource) == 0)
            return &printers[i];
    return &default_printer;
}

json_t *api_table_new(const struct kcp_schema_resource *rsrc, bool with_columns)
{
    json_t *t = json_object();
    json_object_set_new(t, "kind", json_string("Table"));
    json_object_set_new(t, "apiVersion", json_string("meta.k8s.io/v1"));
    json_object_set_new(t, "metadata", json_object());
    if (with_columns) {
        json_t *cols = json_array();
        const struct printer *p = printer_for(rsrc);
        for (size_t i = 0; i < 12 && p->columns[i].name; i++) {
            const struct column *c = &p->columns[i];
            json_t *col = json_object();
            json_object_set_new(col, "name", json_string(c->name));
            json_object_set_new(col, "type", json_string(c->type));
            json_object_set_new(col, "format", json_string(c->format));
            json_object_set_new(col, "description", json_string(""));
            json_object_set_new(col, "priority", json_integer(c->priority));
            json_array_append_new(cols, col);
        }
        json_object_set_new(t, "columnDefinitions", cols);
    }
    json_object_set_new(t, "rows", json_array());
    return t;
}

json_t *api_table_row(const struct kcp_schema_resource *rsrc, const json_t *obj,
                      const char *include, int64_t now)
{
    json_t *row = json_object();
    json_t *cells = json_array();
    json_array_append_new(cells, json_string(api_meta_str(obj, "name") ?: ""));
    printer_for(rsrc)->cells(cells, obj, now);
    json_object_set_new(row, "cells", cells);
    if (strcmp(include, "Object") == 0) {
        json_object_set(row, "object", (json_t *)obj);
    } else if (strcmp(include, "None") != 0) {
        json_t *partial = json_object();
        json_object_set_new(partial, "kind", json_string("PartialObjectMetadata"));
        json_object_set_new(partial, "apiVersion", json_string("meta.k8s.io/v1"));
        json_object_set(partial, "metadata", json_object_get(obj, "metadata"));
        json_object_set_new(row, "object", partial);
    }
    return row;
}

void api_table_add_row(json_t *table, const struct kcp_schema_resource *rsrc, const json_t *obj,
                       const char *include, int64_t now)
{
    json_array_append_new(json_object_get(table, "rows"), api_table_row(rsrc, obj, include, now));
}
