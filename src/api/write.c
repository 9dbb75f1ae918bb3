/*
 * The write verbs' shared pipeline: body -> object of the right kind (normalised, unknown
 * fields per fieldValidation) -> metadata decided here (uid, timestamps, generation, names)
 * -> defaults and validation -> one deterministic entry -> propose -> answer from the result.
 * Create and update (PUT) live here; patch.c and delete.c reuse the pipeline.
 */
#include "api_int.h"

#include "meta.h"
#include "services.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void store_on_done(struct kcp_store_req *sreq, int status, const struct kcp_store_result *res)
{
    struct api_req *r = sreq->data;
    r->in_store = false;
    /* The request's own entry was applied (or it failed for a reason that is no statement
     * about the state): what follows is decided after every write acknowledged before it. */
    r->unconfirmed = false;
    if (r->gone) {
        api_req_finish(r);
        return;
    }
    if (api_service_on_done(r, status, res))
        return;
    r->cont(r, status, res);
}

void api_propose(struct api_req *r, const char *verb, const char *key, size_t key_len,
                 const json_t *obj, int precond, uint64_t revision)
{
    struct kcp_buf value = KCP_BUF_INIT, enc = KCP_BUF_INIT;
    char *json = NULL;
    if (obj)
        kcp_codec_json_write(&value, obj);
    struct kcp_store_op op = {
        .type = obj ? KCP_STORE_PUT : KCP_STORE_DELETE,
        .precond = (enum kcp_store_precond)precond,
        .revision = precond == KCP_STORE_IF_REVISION ? revision : 0,
        .key = key,
        .key_len = key_len,
        .value = obj ? value.data : NULL,
        .value_len = obj ? value.len : 0,
    };
    int64_t now = kcp_clock_wall_s(r->api->loop->clock);
    char reqid[32];
    snprintf(reqid, sizeof(reqid), "%" PRIu64, r->http->id);
    struct kcp_store_entry e = {
        /* A precondition the server chose (not the client's resourceVersion): a conflict on it
         * is retried here, so history need not keep it as a branch. */
        .flags = (precond == KCP_STORE_IF_REVISION && !r->client_revision) ? KCP_STORE_SERVER_PRECOND
                                                                           : 0,
        .wall_s = now,
        .wall_ns = 0,
        .verb = verb,
        .user = r->http->identity && r->http->identity->user ? r->http->identity->user
                                                             : "system:anonymous",
        .request_id = reqid,
        .nops = 1,
        .ops = &op,
    };
    api_service_entry(r, &e, obj); /* a Service's allocation keys join its entry */
    int rc = kcp_store_entry_encode(&enc, &e);
    if (rc == 0) {
        r->store_req.data = r;
        r->store_req.cb = store_on_done;
        rc = kcp_store_propose(r->api->store, enc.data, enc.len, &r->store_req);
        if (rc == 0)
            r->in_store = true;
    }
    kcp_buf_free(&value);
    kcp_buf_free(&enc);
    free(json);
    if (rc == KCP_ETOOLARGE)
        return api_fail(r, KCP_ETOOLARGE, NULL, NULL, "Request entity too large: limit is 1572864");
    if (rc != 0)
        return api_fail(r, rc, NULL, NULL, "storage: %s", kcp_error_message(rc));
}

/* ---- decoding ---- */

void api_warn_field(struct api_req *r, const char *what, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s field \"%s\"", what, path[0] == '.' ? path + 1 : path);
    if (!r->warnings)
        r->warnings = json_array();
    json_array_append_new(r->warnings, json_string(buf));
}

json_t *api_decode_body(struct api_req *r)
{
    enum api_body_type type;
    struct kcp_codec_err err = {{0}};
    json_t *in = NULL, *out = NULL, *unknown = json_array(), *dups = json_array();
    char gv[128];
    /* A subresource with a kind of its own (Scale, Binding, Eviction) takes that kind. */
    const char *group = r->rsrc->group, *version = r->rsrc->version, *kind = r->rsrc->kind;
    if (r->sub && r->sub->kind && r->sub->kind[0] && strcmp(r->sub->name, "status") != 0) {
        kind = r->sub->kind;
        if (r->sub->version && r->sub->version[0]) {
            group = r->sub->group ? r->sub->group : "";
            version = r->sub->version;
        }
    }
    if (api_media_body_type(&type, kcp_http_header(r->http, "Content-Type")) != 0 ||
        (type != API_BODY_JSON && type != API_BODY_PROTOBUF)) {
        api_fail(r, KCP_EMEDIATYPE, NULL, NULL, "the body of the request was in an unknown format - "
                 "accepted media types include: application/json, application/yaml, "
                 "application/vnd.kubernetes.protobuf");
        goto done;
    }
    int rc = type == API_BODY_PROTOBUF
                 ? kcp_codec_pb_decode_object(&in, (const uint8_t *)r->http->body, r->http->body_len, &err)
                 : kcp_codec_json_parse(&in, r->http->body, r->http->body_len, dups, &err);
    if (rc != 0 || !json_is_object(in)) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "%s",
                 err.msg[0] ? err.msg : "the request body is not a JSON object");
        goto done;
    }
    const char *body_kind = json_string_value(json_object_get(in, "kind"));
    const char *body_av = json_string_value(json_object_get(in, "apiVersion"));
    if (group[0])
        snprintf(gv, sizeof(gv), "%s/%s", group, version);
    else
        snprintf(gv, sizeof(gv), "%s", version);
    /* Like upstream's decoder, a body without kind/apiVersion takes them from the URL. */
    if (!body_kind || !*body_kind)
        body_kind = kind;
    if (body_av && !*body_av)
        body_av = NULL;
    if (strcmp(body_kind, kind) != 0 || (body_av && strcmp(body_av, gv) != 0)) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                 "the API version in the data (%s) does not match the expected API version (%s)",
                 body_av ? body_av : "", gv);
        goto done;
    }
    const struct kcp_schema_message *m = kcp_schema_message_by_gvk(group, version, kind);
    if (!m) {
        api_fail(r, KCP_EINTERNAL, NULL, NULL, "no schema for %s %s", gv, kind);
        goto done;
    }
    if (kcp_codec_normalize(&out, in, m, 0, unknown, &err) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "%s in version \"%s\" cannot be handled as a %s: %s",
                 kind, version, kind, err.msg);
        goto done;
    }
    /* kind and apiVersion lead, as upstream writes them. */
    json_t *rest = out;
    out = json_object();
    json_object_set_new(out, "kind", json_string(kind));
    json_object_set_new(out, "apiVersion", json_string(gv));
    json_object_update_missing(out, rest);
    json_decref(rest);
    const char *fv = api_query(r, "fieldValidation");
    if (fv && *fv && strcmp(fv, "Strict") != 0 && strcmp(fv, "Warn") != 0 && strcmp(fv, "Ignore") != 0) {
        json_decref(out);
        out = NULL;
        api_fail_options(r, "fieldValidation", fv,
                         "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\"");
        goto done;
    }
    size_t i;
    json_t *path;
    if (fv && strcmp(fv, "Strict") == 0 && (json_array_size(unknown) || json_array_size(dups))) {
        struct kcp_buf msg = KCP_BUF_INIT;
        int n = 0;
        json_array_foreach(unknown, i, path) {
            const char *p = json_string_value(path);
            kcp_buf_printf(&msg, "%sunknown field \"%s\"", n++ ? ", " : "", p[0] == '.' ? p + 1 : p);
        }
        json_array_foreach(dups, i, path) {
            const char *p = json_string_value(path);
            kcp_buf_printf(&msg, "%sduplicate field \"%s\"", n++ ? ", " : "", p[0] == '.' ? p + 1 : p);
        }
        json_decref(out);
        out = NULL;
        api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                 "%s in version \"%s\" cannot be handled as a %s: strict decoding error: %s", kind,
                 r->rsrc->version, kind, msg.data);
        kcp_buf_free(&msg);
        goto done;
    }
    if (!fv || strcmp(fv, "Ignore") != 0) {
        json_array_foreach(unknown, i, path)
            api_warn_field(r, "unknown", json_string_value(path));
        json_array_foreach(dups, i, path)
            api_warn_field(r, "duplicate", json_string_value(path));
    }
done:
    json_decref(in);
    json_decref(unknown);
    json_decref(dups);
    return out;
}

json_t *api_parse_json_body(struct api_req *r)
{
    json_t *doc = NULL;
    struct kcp_codec_err err = {{0}};
    if (kcp_codec_json_parse(&doc, r->http->body, r->http->body_len, NULL, &err) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "%s", err.msg[0] ? err.msg : "malformed JSON body");
        return NULL;
    }
    return doc;
}

/* ---- metadata ---- */

static json_t *meta_of(json_t *obj)
{
    json_t *m = json_object_get(obj, "metadata");
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(obj, "metadata", m);
    }
    return m;
}

static bool has_spec(const struct kcp_schema_resource *rsrc)
{
    const struct kcp_schema_message *m = kcp_schema_message_at(rsrc->msg);
    const struct kcp_schema_field *f, *inl;
    return m && kcp_schema_field_find(&f, &inl, m, "spec") == 0;
}

static bool has_status_sub(const struct kcp_schema_resource *rsrc)
{
    return kcp_schema_subresource_find(rsrc, "status") != NULL;
}

static bool dry_run(struct api_req *r)
{
    const char *d = api_query(r, "dryRun");
    return d && strcmp(d, "All") == 0;
}

static int check_dry_run_param(struct api_req *r)
{
    const char *d = api_query(r, "dryRun");
    if (d && *d && strcmp(d, "All") != 0) {
        api_fail_options(r, "dryRun", d, "supported values: \"All\"");
        return KCP_EINVALID;
    }
    return 0;
}

static void fail_invalid(struct api_req *r, const char *name, json_t *causes)
{
    struct kcp_buf msg = KCP_BUF_INIT;
    size_t i;
    json_t *c;
    size_t n = json_array_size(causes);
    json_array_foreach(causes, i, c) {
        kcp_buf_printf(&msg, "%s%s: %s", i ? ", " : "",
                       json_string_value(json_object_get(c, "field")),
                       json_string_value(json_object_get(c, "message")));
    }
    char *text = n > 1 ? kcp_sprintf("[%s]", msg.data) : kcp_strdup(msg.data ? msg.data : "");
    api_fail(r, KCP_EINVALID, name, causes, "%s \"%s\" is invalid: %s", r->rsrc->kind,
             name ? name : "", text);
    free(text);
    kcp_buf_free(&msg);
}


/* Checks the request's namespace exists and is not terminating; 0 or a completed failure. */
static int check_namespace(struct api_req *r, const char *name)
{
    if (!r->rsrc->namespaced)
        return 0;
    struct kcp_buf key = KCP_BUF_INIT;
    struct kcp_obj *ns = NULL;
    kcp_store_key(&key, "", "namespaces", NULL, r->path.namespace_);
    int rc = kcp_store_get(r->api->store, key.data, key.len, 0, &ns);
    kcp_buf_free(&key);
    if (rc == KCP_ENOTFOUND) {
        /* The details name the namespace, as the message does; r completes here. */
        r->rsrc = kcp_schema_resource_find("", "v1", "namespaces");
        api_fail(r, KCP_ENOTFOUND, r->path.namespace_, NULL, "namespaces \"%s\" not found",
                 r->path.namespace_);
        return rc;
    }
    if (rc != 0) {
        api_fail(r, rc, NULL, NULL, "namespace lookup: %s", kcp_error_message(rc));
        return rc;
    }
    bool terminating = api_meta_str(ns->doc, "deletionTimestamp") != NULL;
    kcp_obj_unref(ns);
    if (terminating && r->verb == API_VERB_CREATE) {
        char *msg = kcp_sprintf("namespace %s is being terminated", r->path.namespace_);
        json_t *causes = json_pack("[{s:s, s:s, s:s}]", "reason", "NamespaceTerminating",
                                   "message", msg, "field", "metadata.namespace");
        free(msg);
        api_fail(r, KCP_EFORBIDDEN, name, causes,
                 "%s \"%s\" is forbidden: unable to create new content in namespace %s because "
                 "it is being terminated", r->rsrc->resource, name, r->path.namespace_);
        return KCP_EFORBIDDEN;
    }
    return 0;
}

/* ---- create ---- */

static void create_on_done(struct api_req *r, int status, const struct kcp_store_result *res)
{
    const char *name = api_meta_str(r->obj, "name");
    if (status != 0)
        return api_fail(r, status, NULL, NULL, "storage: %s", kcp_error_message(status));
    if (res->ops[0].err)
        return api_fail_object(r, res->ops[0].err, name);
    api_respond_stored(r, 201, res->ops[0].obj);
}

void api_create(struct api_req *r)
{
    if (r->sub && strcmp(r->rsrc->resource, "pods") == 0 && !r->rsrc->group[0] &&
        (strcmp(r->sub->name, "binding") == 0 || strcmp(r->sub->name, "eviction") == 0))
        return api_pod_subresource(r);
    if (r->sub)
        return api_fail(r, KCP_EMETHOD, NULL, NULL,
                        "the server does not allow this method on the requested resource");
    if (check_dry_run_param(r) != 0 || api_check_field_manager(r) != 0)
        return;
    json_t *obj = api_decode_body(r);
    if (!obj)
        return;
    api_write_create(r, obj);
}

void api_write_create(struct api_req *r, json_t *obj)
{
    json_decref(r->obj);
    r->obj = obj;
    json_t *meta = meta_of(obj);
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (r->rsrc->namespaced) {
        if (ns && *ns && strcmp(ns, r->path.namespace_) != 0)
            return api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                            "the namespace of the provided object does not match the namespace "
                            "sent on the request");
        json_object_set_new(meta, "namespace", json_string(r->path.namespace_));
    } else {
        json_object_del(meta, "namespace");
    }
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *gen = json_string_value(json_object_get(meta, "generateName"));
    if ((!name || !*name) && gen && *gen) {
        char sfx[6];
        api_meta_name_suffix(sfx);
        char *full = kcp_sprintf("%s%s", gen, sfx);
        json_object_set_new(meta, "name", json_string(full));
        free(full);
        name = json_string_value(json_object_get(meta, "name"));
    }
    /* Decided here, before the entry exists, so every replica stores the same bytes. */
    char uid[37], ts[32];
    if (api_meta_uid(uid) != 0)
        return api_fail(r, KCP_EINTERNAL, NULL, NULL, "no randomness for a uid");
    api_meta_time(ts, sizeof(ts), kcp_clock_wall_s(r->api->loop->clock));
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(ts));
    json_object_del(meta, "resourceVersion");
    json_object_del(meta, "selfLink");
    json_object_del(meta, "deletionTimestamp");
    json_object_del(meta, "deletionGracePeriodSeconds");
    if (has_spec(r->rsrc))
        json_object_set_new(meta, "generation", json_integer(1));
    else
        json_object_del(meta, "generation");
    if (has_status_sub(r->rsrc))
        json_object_del(obj, "status");
    api_admit_defaults(r->rsrc, obj);
    /* Before allocation, as upstream's handler records fields before storage allocates. */
    if (!r->managed_set)
        api_managed_update(r, NULL, obj);
    bool service = strcmp(r->rsrc->resource, "services") == 0 && !r->rsrc->group[0];
    if (service)
        api_service_prepare(obj, NULL);
    json_t *causes = api_admit_validate(r->rsrc, obj, NULL);
    if (!causes)
        causes = json_array();
    if (service && json_array_size(causes) == 0 && api_service_allocate(r, obj, NULL, causes) != 0) {
        json_decref(causes);
        return api_service_fail_full(r);
    }
    if (json_array_size(causes)) {
        name = api_meta_str(obj, "name");
        return fail_invalid(r, name, causes);
    }
    json_decref(causes);
    if (check_namespace(r, api_meta_str(obj, "name")) != 0)
        return;
    /* managedFields is ObjectMeta's last field; the members decided above came after it. */
    json_t *mf = json_incref(json_object_get(meta, "managedFields"));
    if (mf) {
        json_object_del(meta, "managedFields");
        json_object_set_new(meta, "managedFields", mf);
    }
    api_key(r, &r->key, api_meta_str(obj, "name"));
    if (dry_run(r)) {
        struct kcp_obj *existing = NULL;
        if (kcp_store_get(r->api->store, r->key.data, r->key.len, 0, &existing) == 0) {
            kcp_obj_unref(existing);
            return api_fail_object(r, KCP_EEXIST, api_meta_str(obj, "name"));
        }
        return api_respond_object(r, 201, obj);
    }
    r->cont = create_on_done;
    api_propose(r, "create", r->key.data, r->key.len, obj, KCP_STORE_IF_ABSENT, 0);
}

/* ---- update ---- */

static void update_on_done(struct api_req *r, int status, const struct kcp_store_result *res);

static void update_retry(struct api_req *r)
{
    struct kcp_obj *current = NULL;
    int rc = kcp_store_get(r->api->store, r->key.data, r->key.len, 0, &current);
    if (rc != 0)
        return api_fail_object(r, rc, r->path.name);
    json_t *obj = json_incref(r->obj);
    json_decref(r->obj);
    r->obj = NULL;
    api_write_update(r, current, obj);
    kcp_obj_unref(current);
}

static void update_on_done(struct api_req *r, int status, const struct kcp_store_result *res)
{
    if (status != 0)
        return api_fail(r, status, NULL, NULL, "storage: %s", kcp_error_message(status));
    int err = res->ops[0].err;
    if (err == KCP_ECONFLICT && !r->client_revision && ++r->attempts < API_MAX_SERVER_RETRIES)
        return r->retry ? r->retry(r) : update_retry(r);
    if (err)
        return api_fail_object(r, err, r->path.name);
    if (r->sub && strcmp(r->sub->name, "scale") == 0) {
        json_t *scale = api_scale_of(r, res->ops[0].obj ? res->ops[0].obj->doc : r->obj);
        api_respond_object(r, 200, scale);
        json_decref(scale);
        return;
    }
    if (r->finalizing) { /* a marked object whose last finalizer went: it is gone now */
        if (r->rsrc->namespaced)
            api_namespace_changed(r->api, r->path.namespace_);
        return api_respond_object(r, 200, r->obj);
    }
    api_respond_stored(r, 200, res->ops[0].obj);
}

/* Whether the spec (everything but metadata and status) changed: generation counts those. */
static bool spec_changed(const json_t *a, const json_t *b)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v) {
        if (!strcmp(k, "metadata") || !strcmp(k, "status") || !strcmp(k, "kind") || !strcmp(k, "apiVersion"))
            continue;
        if (!json_equal(v, json_object_get(b, k)))
            return true;
    }
    json_object_foreach((json_t *)b, k, v) {
        if (!strcmp(k, "metadata") || !strcmp(k, "status") || !strcmp(k, "kind") || !strcmp(k, "apiVersion"))
            continue;
        if (!json_object_get(a, k))
            return true;
    }
    return false;
}

void api_write_update(struct api_req *r, const struct kcp_obj *current, json_t *obj)
{
    const json_t *old = current->doc;
    json_t *meta = meta_of(obj);
    const json_t *old_meta = json_object_get(old, "metadata");
    const char *name = api_meta_str(old, "name");
    r->obj = obj;
    const char *new_name = json_string_value(json_object_get(meta, "name"));
    if (new_name && *new_name && strcmp(new_name, name) != 0)
        return api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                        "the name of the object (%s) does not match the name on the URL (%s)",
                        new_name, name);
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    uint64_t expect = current->mod_revision;
    if (rv && *rv && r->attempts == 0) {
        char *end = NULL;
        expect = strtoull(rv, &end, 10);
        if (*end)
            return api_fail(r, KCP_EBADREQUEST, NULL, NULL, "invalid resourceVersion: %s", rv);
        /* A stale resourceVersion is not refused here: the entry carries it as a precondition
         * and apply rejects it, so every replica decides the conflict alike and history can
         * record it as a branch. */
        r->client_revision = true;
    }
    bool stale = expect != current->mod_revision;
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    const char *old_uid = json_string_value(json_object_get(old_meta, "uid"));
    if (uid && *uid && old_uid && strcmp(uid, old_uid) != 0)
        return api_fail(r, KCP_ECONFLICT, name, NULL,
                        "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                        uid, old_uid);
    /* Fields the server owns are carried over from the stored object. */
    static const char *const carried[] = {"uid", "creationTimestamp", "deletionTimestamp",
                                          "deletionGracePeriodSeconds", "generation", "namespace",
                                          "name", "selfLink", NULL};
    for (size_t i = 0; carried[i]; i++) {
        json_t *v = json_object_get(old_meta, carried[i]);
        if (v)
            json_object_set(meta, carried[i], v);
        else
            json_object_del(meta, carried[i]);
    }
    json_object_del(meta, "resourceVersion");
    bool status_only = r->sub && strcmp(r->sub->name, "status") == 0;
    if (status_only) {
        /* PUT .../status changes status and nothing else. */
        json_t *status = json_incref(json_object_get(obj, "status"));
        json_t *managed = json_incref(json_object_get(meta, "managedFields"));
        json_t *copy = json_deep_copy(old);
        json_object_del(json_object_get(copy, "metadata"), "resourceVersion");
        if (status)
            json_object_set_new(copy, "status", status);
        else
            json_object_del(copy, "status");
        json_decref(r->obj);
        r->obj = obj = copy;
        meta = meta_of(obj);
        /* An apply through /status decided the managedFields too. */
        if (r->managed_set && managed)
            json_object_set(meta, "managedFields", managed);
        else if (r->managed_set)
            json_object_del(meta, "managedFields");
        json_decref(managed);
    } else if (has_status_sub(r->rsrc)) {
        json_t *st = json_object_get(old, "status");
        if (st)
            json_object_set(obj, "status", st);
        else
            json_object_del(obj, "status");
    }
    /* New finalizers cannot be added once deletion started (upstream). */
    if (api_meta_str(old, "deletionTimestamp")) {
        const json_t *of = json_object_get(old_meta, "finalizers");
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(meta, "finalizers"), i, f) {
            bool known = false;
            size_t k;
            json_t *g;
            json_array_foreach(of, k, g) known = known || json_equal(f, g);
            if (!known) {
                char *msg = kcp_sprintf("Forbidden: no new finalizers can be added if the object "
                                        "is being deleted, found new finalizers []string{\"%s\"}",
                                        json_string_value(f));
                json_t *causes = json_pack("[{s:s, s:s, s:s}]", "reason", "FieldValueForbidden",
                                           "message", msg, "field", "metadata.finalizers");
                api_fail(r, KCP_EINVALID, name, causes, "%s \"%s\" is invalid: metadata.finalizers: %s",
                         r->rsrc->kind, name, msg);
                free(msg);
                return;
            }
        }
    }
    if (json_object_get(old_meta, "generation") && spec_changed(obj, old))
        json_object_set_new(meta, "generation",
                            json_integer(json_integer_value(json_object_get(old_meta, "generation")) + 1));
    api_admit_defaults(r->rsrc, obj);
    if (!r->managed_set)
        api_managed_update(r, old, obj);
    bool service = strcmp(r->rsrc->resource, "services") == 0 && !r->rsrc->group[0];
    /* After the field manager, as upstream's registry changes what its handler recorded. */
    if (service && !status_only)
        api_service_prepare(obj, old);
    json_t *causes = api_admit_validate(r->rsrc, obj, old);
    if (!causes)
        causes = json_array();
    if (service && json_array_size(causes) == 0 && api_service_allocate(r, obj, old, causes) != 0) {
        json_decref(causes);
        return api_service_fail_full(r);
    }
    if (json_array_size(causes))
        return fail_invalid(r, name, causes);
    json_decref(causes);
    if (check_dry_run_param(r) != 0)
        return;
    if (dry_run(r) && stale)
        return api_fail_object(r, KCP_ECONFLICT, name);
    if (dry_run(r)) {
        char rvs[32];
        snprintf(rvs, sizeof(rvs), "%" PRIu64, current->mod_revision);
        json_object_set_new(meta, "resourceVersion", json_string(rvs));
        return api_respond_object(r, 200, obj);
    }
    /* A no-op write stores nothing and keeps resourceVersion (upstream). */
    json_t *old_bare = json_deep_copy(old);
    json_object_del(json_object_get(old_bare, "metadata"), "resourceVersion");
    bool same = json_equal(old_bare, obj);
    json_decref(old_bare);
    if (same && !stale)
        return api_respond_stored(r, 200, current);
    api_key(r, &r->key, name);
    r->cont = update_on_done;
    r->expect_revision = expect;
    /* An object being deleted whose last finalizer is removed goes away with this write. */
    bool finalize = api_meta_str(obj, "deletionTimestamp") &&
                    json_array_size(json_object_get(meta, "finalizers")) == 0;
    r->finalizing = finalize;
    api_propose(r, finalize ? "delete" : "update", r->key.data, r->key.len, finalize ? NULL : obj,
                KCP_STORE_IF_REVISION, expect);
}

void api_update(struct api_req *r)
{
    if (r->sub && strcmp(r->sub->name, "status") != 0 && strcmp(r->sub->name, "scale") != 0)
        return api_fail(r, KCP_EMETHOD, NULL, NULL,
                        "the server does not allow this method on the requested resource");
    if (check_dry_run_param(r) != 0 || api_check_field_manager(r) != 0)
        return;
    json_t *body = api_decode_body(r);
    if (!body)
        return;
    if (r->rsrc->namespaced) {
        const char *ns = api_meta_str(body, "namespace");
        if (ns && *ns && strcmp(ns, r->path.namespace_) != 0) {
            json_decref(body);
            return api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                            "the namespace of the provided object does not match the namespace "
                            "sent on the request");
        }
    }
    const char *body_name = api_meta_str(body, "name");
    if (body_name && *body_name && strcmp(body_name, r->path.name) != 0) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL,
                 "the name of the object (%s) does not match the name on the URL (%s)", body_name,
                 r->path.name);
        json_decref(body);
        return;
    }
    api_key(r, &r->key, r->path.name);
    struct kcp_obj *current = NULL;
    int rc = kcp_store_get(r->api->store, r->key.data, r->key.len, 0, &current);
    if (rc != 0) {
        json_decref(body);
        return api_fail_object(r, rc, r->path.name);
    }
    if (r->sub && strcmp(r->sub->name, "scale") == 0) {
        json_t *obj = json_deep_copy(current->doc);
        json_object_del(json_object_get(obj, "metadata"), "resourceVersion");
        const char *rv = api_meta_str(body, "resourceVersion");
        if (rv && *rv)
            json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(rv));
        api_scale_apply(obj, body);
        json_decref(body);
        body = obj;
    }
    api_write_update(r, current, body);
    kcp_obj_unref(current);
}
