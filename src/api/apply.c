/*
 * PATCH with Content-Type application/apply-patch+yaml: server-side apply. The body (JSON, which
 * is what kubectl sends, or YAML) is checked against the resource's kind, handed to src/patch's
 * kcp_ssa_apply with the live object, and the result goes through the create or update
 * pipeline with its managedFields already decided. Apply to a missing object creates it.
 */
#include "api_int.h"

#include "meta.h"

#include <kcp/patch.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

/* A deep copy with object keys sorted, as Go encodes a map. */
static json_t *sorted_copy(const json_t *v)
{
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach ((json_t *)v, i, x)
            json_array_append_new(a, sorted_copy(x));
        return a;
    }
    if (!json_is_object(v))
        return json_deep_copy(v);
    size_t n = json_object_size(v), i = 0;
    const char **keys = kcp_calloc(n + 1, sizeof(*keys));
    const char *k;
    json_t *x;
    json_object_foreach ((json_t *)v, k, x)
        keys[i++] = k;
    for (size_t a = 1; a < n; a++)
        for (size_t c = a; c > 0 && strcmp(keys[c - 1], keys[c]) > 0; c--) {
            const char *t = keys[c];
            keys[c] = keys[c - 1];
            keys[c - 1] = t;
        }
    json_t *o = json_object();
    for (i = 0; i < n; i++)
        json_object_set_new(o, keys[i], sorted_copy(json_object_get(v, keys[i])));
    free(keys);
    return o;
}

/* lastAppliedUpdater: kubectl's server-side apply keeps a client-side apply annotation, where
 * the object has one, equal to what it applied (so a later client-side apply diffs right). */
static void sync_last_applied(json_t *obj, const json_t *raw, const char *manager)
{
    json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
    if (strcmp(manager, "kubectl") != 0 || !json_is_string(json_object_get(ann, LAST_APPLIED)))
        return;
    json_t *copy = sorted_copy(raw);
    json_t *meta = json_object_get(copy, "metadata");
    json_t *cann = json_object_get(meta, "annotations");
    if (json_is_object(cann)) {
        json_object_del(cann, LAST_APPLIED);
        if (json_object_size(cann) == 0)
            json_object_del(meta, "annotations");
    }
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_codec_json_write(&b, copy);
    kcp_buf_puts(&b, "\n");
    json_object_set_new(ann, LAST_APPLIED, json_string(b.data));
    kcp_buf_free(&b);
    json_decref(copy);
}

/* The body: JSON (kubectl's) or YAML; NULL with a completed 400. */
static json_t *parse_body(struct api_req *r)
{
    json_t *doc = NULL;
    struct kcp_codec_err err = {{0}};
    const char *p = r->http->body ? r->http->body : "";
    size_t n = r->http->body_len, i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    if (i < n && p[i] == '{') {
        if (kcp_codec_json_parse(&doc, r->http->body, r->http->body_len, NULL, &err) != 0) {
            api_fail(r, KCP_EBADREQUEST, NULL, NULL, "error converting YAML to JSON: %s",
                     err.msg[0] ? err.msg : "malformed JSON");
            return NULL;
        }
        return doc;
    }
    if (kcp_codec_yaml_parse(&doc, p, n, &err) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "%s", err.msg);
        return NULL;
    }
    return doc;
}

static void apply_run(struct api_req *r);

void api_apply(struct api_req *r)
{
    const char *fm = api_query(r, "fieldManager");
    if (!fm || !*fm)
        return api_fail_option(r, "fieldManager", "FieldValueRequired",
                               "Required value: is required for apply patch");
    if (api_check_field_manager(r) != 0)
        return;
    if (r->sub && strcmp(r->sub->name, "status") != 0)
        return api_fail(r, KCP_EMEDIATYPE, NULL, NULL,
                        "the body of the request was in an unknown format - accepted media types "
                        "include: application/json-patch+json, application/merge-patch+json, "
                        "application/strategic-merge-patch+json");
    apply_run(r);
}

static void apply_run(struct api_req *r)
{
    json_t *raw = NULL, *config = NULL, *live = NULL, *zero = NULL, *merged = NULL, *obj = NULL;
    json_t *causes = NULL, *unknown = json_array();
    struct kcp_obj *current = NULL;
    struct api_ssa_schema schema = {0};
    char *msg = NULL, *want_rv = NULL;
    char gv[128], manager[160], now[32], ident[512];
    const char *reset[4];
    const struct kcp_schema_message *m = kcp_schema_message_at(r->rsrc->msg);
    api_group_version(r->rsrc, gv, sizeof(gv));
    if (!(raw = parse_body(r)))
        goto done;
    if (!json_is_object(raw)) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "Object 'Kind' is missing in apply patch");
        goto done;
    }
    const char *av = json_string_value(json_object_get(raw, "apiVersion"));
    const char *kind = json_string_value(json_object_get(raw, "kind"));
    if (!av || strcmp(av, gv) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                 "Incorrect version specified in apply patch. "
                 "Specified patch version: %s, expected: %s",
                 av ? av : "", gv);
        goto done;
    }
    const char *ns = r->rsrc->namespaced ? r->path.namespace_ : "";
    snprintf(ident, sizeof(ident), "%s%s%s; %s, Kind=%s", ns, *ns ? "/" : "", r->path.name, gv,
             r->rsrc->kind);
    if (!kind || strcmp(kind, r->rsrc->kind) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                 "failed to create typed patch object (%s): no "
                 "corresponding type for %s, Kind=%s",
                 ident, gv, kind ? kind : "");
        goto done;
    }
    const json_t *rmeta = json_object_get(raw, "metadata");
    const json_t *mf = json_object_get(rmeta, "managedFields");
    if (mf && !json_is_null(mf)) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "metadata.managedFields must be nil");
        goto done;
    }
    struct kcp_codec_err err = {{0}};
    if (kcp_codec_normalize(&config, raw, m, 0, unknown, &err) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "failed to create typed patch object (%s): %s",
                 ident, err.msg);
        goto done;
    }
    if (json_array_size(unknown)) {
        /* structured-merge-diff knows only declared fields, whatever fieldValidation says. */
        api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                 "failed to create typed patch object (%s): %s: "
                 "field not declared in schema",
                 ident, json_string_value(json_array_get(unknown, 0)));
        goto done;
    }
    json_t *meta = json_object_get(config, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(config, "metadata", meta);
    }
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (name && *name && strcmp(name, r->path.name) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                 "the name of the object (%s) does not match the name on the URL (%s)", name,
                 r->path.name);
        goto done;
    }
    const char *cns = json_string_value(json_object_get(meta, "namespace"));
    if (r->rsrc->namespaced && cns && *cns && strcmp(cns, r->path.namespace_) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                 "the namespace of the provided object does not "
                 "match the namespace sent on the request");
        goto done;
    }
    const char *crv = json_string_value(json_object_get(meta, "resourceVersion"));
    want_rv = crv && *crv ? kcp_strdup(crv) : NULL;
    json_object_del(meta, "resourceVersion");
    api_key(r, &r->key, r->path.name);
    int rc = kcp_store_get(r->api->store, r->key.data, r->key.len, 0, &current);
    if (rc != 0 && (rc != KCP_ENOTFOUND || r->sub || want_rv)) {
        api_fail_object(r, rc, r->path.name);
        goto done;
    }
    zero = api_zero_object(m);
    if (current) {
        live = json_deep_copy(current->doc);
        json_object_del(json_object_get(live, "metadata"), "resourceVersion");
    } else {
        /* Applying to a missing object creates it: the configuration over the zero value. */
        live = json_incref(zero);
        json_object_set_new(meta, "name", json_string(r->path.name));
        if (r->rsrc->namespaced)
            json_object_set_new(meta, "namespace", json_string(r->path.namespace_));
    }
    api_meta_time(now, sizeof(now), kcp_clock_wall_s(r->api->loop->clock));
    api_ssa_reset(r, reset, 4);
    struct kcp_ssa_op op = {
        .manager = api_field_manager(r, manager, sizeof(manager)),
        .api_version = gv,
        .subresource = r->sub ? r->sub->name : NULL,
        .time = now,
        .reset = reset,
        .force = api_query_bool(r, "force"),
    };
    api_ssa_schema_init(&schema, m);
    bool changed = false;
    rc = kcp_ssa_apply(&merged, &changed, live, zero, config, &schema.schema, &op, &causes, &msg);
    if (rc == KCP_ECONFLICT) {
        api_fail(r, KCP_ECONFLICT, NULL, causes, "%s", msg ? msg : "Apply failed");
        causes = NULL;
        goto done;
    }
    if (rc == KCP_EBADREQUEST) {
        api_fail(r, rc, NULL, NULL, "failed to create typed patch object (%s): %s", ident,
                 msg ? msg : "invalid apply patch");
        goto done;
    }
    if (rc != 0) {
        api_fail(r, rc, NULL, NULL, "%s", msg ? msg : kcp_error_message(rc));
        goto done;
    }
    sync_last_applied(merged, raw, op.manager);
    /* The merge keeps the live object's order and appends new members: back to upstream's. */
    err.msg[0] = '\0';
    if (kcp_codec_normalize(&obj, merged, m, 0, NULL, &err) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "%s", err.msg);
        goto done;
    }
    json_t *rest = obj;
    obj = json_object();
    json_object_set_new(obj, "kind", json_string(r->rsrc->kind));
    json_object_set_new(obj, "apiVersion", json_string(gv));
    json_object_update_missing(obj, rest);
    json_decref(rest);
    r->managed_set = true;
    json_decref(r->obj);
    r->obj = NULL;
    if (!current) {
        api_write_create(r, obj);
        obj = NULL;
        goto done;
    }
    if (want_rv) {
        json_t *om = json_object_get(obj, "metadata");
        if (json_is_object(om))
            json_object_set_new(om, "resourceVersion", json_string(want_rv));
    }
    r->retry = apply_run;
    api_write_update(r, current, obj);
    obj = NULL;
done:
    api_ssa_schema_free(&schema);
    free(msg);
    free(want_rv);
    json_decref(raw);
    json_decref(config);
    json_decref(live);
    json_decref(zero);
    json_decref(merged);
    json_decref(obj);
    json_decref(causes);
    json_decref(unknown);
    kcp_obj_unref(current);
}
