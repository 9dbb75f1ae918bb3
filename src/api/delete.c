/*
 * DELETE and deletecollection: preconditions, finalizers (mark, don't remove), graceful pod
 * deletion, and namespace termination (mark Terminating, then remove the namespace's content
 * and the namespace in one entry).
 */
#include "api_int.h"

#include "meta.h"
#include "services.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DeleteOptions from the body (kubectl sends one without kind) or the query. */
struct delete_opts {
    const char *propagation;
    int64_t grace; /* -1: unset */
    const char *pre_uid;
    const char *pre_rv;
    bool dry_run;
    json_t *doc;
};

static int parse_opts(struct api_req *r, struct delete_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->grace = -1;
    if (r->http->body_len) {
        if (!(o->doc = api_parse_json_body(r)))
            return KCP_EBADREQUEST;
        if (!json_is_object(o->doc)) {
            api_fail(r, KCP_EBADREQUEST, NULL, NULL, "DeleteOptions must be a JSON object");
            return KCP_EBADREQUEST;
        }
        o->propagation = json_string_value(json_object_get(o->doc, "propagationPolicy"));
        json_t *g = json_object_get(o->doc, "gracePeriodSeconds");
        if (json_is_integer(g))
            o->grace = json_integer_value(g);
        json_t *pre = json_object_get(o->doc, "preconditions");
        o->pre_uid = json_string_value(json_object_get(pre, "uid"));
        o->pre_rv = json_string_value(json_object_get(pre, "resourceVersion"));
        json_t *dr = json_object_get(o->doc, "dryRun");
        size_t i;
        json_t *v;
        json_array_foreach(dr, i, v) {
            if (strcmp(json_string_value(v) ?: "", "All") != 0) {
                api_fail(r, KCP_EINVALID, NULL, NULL,
                         "DeleteOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value");
                return KCP_EINVALID;
            }
            o->dry_run = true;
        }
    }
    const char *q;
    if ((q = api_query(r, "propagationPolicy")))
        o->propagation = q;
    if ((q = api_query(r, "gracePeriodSeconds")))
        o->grace = strtoll(q, NULL, 10);
    if ((q = api_query(r, "dryRun")))
        o->dry_run = strcmp(q, "All") == 0;
    if (o->propagation && strcmp(o->propagation, "Background") && strcmp(o->propagation, "Foreground") &&
        strcmp(o->propagation, "Orphan")) {
        api_fail(r, KCP_EINVALID, NULL, NULL,
                 "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: "
                 "\"%s\": supported values: \"Foreground\", \"Background\", \"Orphan\"",
                 o->propagation);
        return KCP_EINVALID;
    }
    return 0;
}


static void delete_on_done(struct api_req *r, int status, const struct kcp_store_result *res)
{
    if (status != 0)
        return api_fail(r, status, NULL, NULL, "storage: %s", kcp_error_message(status));
    const struct kcp_store_op_result *op = &res->ops[0];
    if (op->err)
        return api_fail_object(r, op->err, r->path.name);
    const json_t *doc = op->obj ? op->obj->doc : r->obj;
    bool marked = op->obj && r->verb_state != NULL;
    if (strcmp(r->rsrc->resource, "namespaces") == 0 && !r->rsrc->group[0] && marked)
        api_namespace_cleanup(r->api, r->path.name);
    if (!marked && r->rsrc->namespaced)
        api_namespace_changed(r->api, r->path.namespace_);
    /* Upstream answers pods and anything still present with the object, the rest with a
     * Success Status. */
    if (marked || strcmp(r->rsrc->resource, "pods") == 0)
        return api_respond_stored(r, 200, op->obj);
    api_respond_success(r, r->path.name, api_meta_str(doc, "uid"));
}

void api_delete(struct api_req *r)
{
    struct delete_opts o;
    struct kcp_obj *current = NULL;
    if (r->sub)
        return api_fail(r, KCP_EMETHOD, NULL, NULL,
                        "the server does not allow this method on the requested resource");
    if (parse_opts(r, &o) != 0)
        return;
    api_key(r, &r->key, r->path.name);
    int rc = kcp_store_get(r->api->store, r->key.data, r->key.len, 0, &current);
    if (rc != 0) {
        json_decref(o.doc);
        return api_fail_object(r, rc, r->path.name);
    }
    const json_t *old = current->doc;
    const char *uid = api_meta_str(old, "uid");
    if (o.pre_uid && strcmp(o.pre_uid, uid ?: "") != 0) {
        api_fail(r, KCP_ECONFLICT, r->path.name, NULL,
                 "Precondition failed: UID in precondition: %s, UID in object meta: %s", o.pre_uid,
                 uid ?: "");
        goto done;
    }
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%" PRIu64, current->mod_revision);
    if (o.pre_rv && strcmp(o.pre_rv, rvs) != 0) {
        api_fail(r, KCP_ECONFLICT, r->path.name, NULL,
                 "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in "
                 "object meta: %s", o.pre_rv, rvs);
        goto done;
    }
    json_t *meta = json_object_get(old, "metadata");
    json_t *fin = json_object_get(meta, "finalizers");
    bool is_ns = strcmp(r->rsrc->resource, "namespaces") == 0 && !r->rsrc->group[0];
    if (is_ns && (!strcmp(r->path.name, "default") || !strcmp(r->path.name, "kube-system") ||
                  !strcmp(r->path.name, "kube-public"))) {
        api_fail(r, KCP_EFORBIDDEN, r->path.name, NULL,
                 "namespaces \"%s\" is forbidden: this namespace may not be deleted", r->path.name);
        goto done;
    }
    bool is_pod = strcmp(r->rsrc->resource, "pods") == 0 && !r->rsrc->group[0];
    const char *node = json_string_value(json_object_get(json_object_get(old, "spec"), "nodeName"));
    int64_t grace = o.grace >= 0 ? o.grace : 30;
    bool graceful = is_pod && node && *node && grace > 0;
    bool add_fin = o.propagation && (!strcmp(o.propagation, "Foreground") || !strcmp(o.propagation, "Orphan"));
    bool mark = json_array_size(fin) > 0 || is_ns || graceful || add_fin;
    if (o.dry_run) {
        api_respond_stored(r, 200, current);
        goto done;
    }
    if (mark) {
        if (api_meta_str(old, "deletionTimestamp") && !graceful) {
            /* Already being deleted: nothing more to do but say so. */
            api_respond_stored(r, 200, current);
            goto done;
        }
        json_t *obj = json_deep_copy(old);
        json_t *m = json_object_get(obj, "metadata");
        json_object_del(m, "resourceVersion");
        char ts[32];
        int64_t now = kcp_clock_wall_s(r->api->loop->clock);
        api_meta_time(ts, sizeof(ts), now + (graceful ? grace : 0));
        if (!api_meta_str(old, "deletionTimestamp")) {
            json_object_set_new(m, "deletionTimestamp", json_string(ts));
            /* Marking for deletion is a change of intent: generation moves (upstream). */
            json_t *gen = json_object_get(m, "generation");
            if (json_is_integer(gen))
                json_object_set_new(m, "generation", json_integer(json_integer_value(gen) + 1));
        }
        json_object_set_new(m, "deletionGracePeriodSeconds", json_integer(graceful ? grace : 0));
        if (add_fin) {
            const char *f = !strcmp(o.propagation, "Foreground") ? "foregroundDeletion" : "orphan";
            json_t *list = json_object_get(m, "finalizers");
            if (!list) {
                list = json_array();
                json_object_set_new(m, "finalizers", list);
            }
            json_array_append_new(list, json_string(f));
        }
        if (is_ns) {
            json_t *st = json_object_get(obj, "status");
            if (!st) {
                st = json_object();
                json_object_set_new(obj, "status", st);
            }
            json_object_set_new(st, "phase", json_string("Terminating"));
        }
        r->obj = obj;
        r->verb_state = r; /* marks "the object stays, marked" for delete_on_done */
        r->cont = delete_on_done;
        api_propose(r, "delete", r->key.data, r->key.len, obj, KCP_STORE_IF_REVISION,
                    current->mod_revision);
        goto done;
    }
    r->obj = json_incref((json_t *)old);
    r->cont = delete_on_done;
    api_propose(r, "delete", r->key.data, r->key.len, NULL, KCP_STORE_IF_REVISION,
                current->mod_revision);
done:
    json_decref(o.doc);
    kcp_obj_unref(current);
}

/* ---- namespace termination ---- */

struct ns_cleanup {
    struct kcp_store_req req;
    struct kcp_buf entry;
    struct kcp_api *api;
    char *ns;
    bool finished; /* the namespace itself was in the entry */
};

static void cleanup_on_done(struct kcp_store_req *req, int status, const struct kcp_store_result *res)
{
    struct ns_cleanup *c = req->data;
    if (status != 0)
        kcp_log(KCP_LOG_ERROR, "api", "namespace %s cleanup: %s", c->ns, kcp_error_message(status));
    kcp_buf_free(&c->entry);
    free(c->ns);
    free(c);
}

struct collect_ctx {
    struct kcp_buf keys;   /* NUL-separated keys to delete */
    struct kcp_buf marks;  /* NUL-separated keys, then values, of objects to mark */
    size_t n, nmarks;
    uint64_t *mark_revs;   /* each marked object's revision: the mark must not overwrite news */
    size_t held;           /* objects still waiting for their finalizers */
    int64_t now;
    struct kcp_store *store;
    struct kcp_buf allocs; /* NUL-separated allocation keys of deleted Services */
    uint64_t *alloc_revs;  /* ...deleted only as they were seen */
    size_t nallocs;
};

static int collect_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct collect_ctx *cc = ctx;
    const json_t *meta = json_object_get(obj->doc, "metadata");
    if (json_array_size(json_object_get(meta, "finalizers")) == 0) {
        kcp_buf_append(&cc->keys, obj->key, obj->key_len + 1);
        cc->n++;
        if (!strncmp(obj->key, "/core/services/", 15))
            cc->nallocs += api_service_keys_held(cc->store, obj->doc, &cc->allocs,
                                                 &cc->alloc_revs, cc->nallocs);
        return 0;
    }
    /* Finalizers hold the object (and so the namespace) until their controllers let go. */
    cc->held++;
    if (json_object_get(meta, "deletionTimestamp"))
        return 0;
    json_t *copy = json_deep_copy(obj->doc);
    json_t *m = json_object_get(copy, "metadata");
    char ts[32];
    api_meta_time(ts, sizeof(ts), cc->now);
    json_object_del(m, "resourceVersion");
    json_object_set_new(m, "deletionTimestamp", json_string(ts));
    json_object_set_new(m, "deletionGracePeriodSeconds", json_integer(0));
    struct kcp_buf v = KCP_BUF_INIT;
    kcp_codec_json_write(&v, copy);
    json_decref(copy);
    kcp_buf_append(&cc->marks, obj->key, obj->key_len + 1);
    kcp_buf_append(&cc->marks, v.data, v.len + 1);
    kcp_buf_free(&v);
    cc->mark_revs = kcp_realloc(cc->mark_revs, (cc->nmarks + 1) * sizeof(*cc->mark_revs));
    cc->mark_revs[cc->nmarks++] = obj->mod_revision;
    return 0;
}

static void collect(struct kcp_store *s, struct collect_ctx *cc, const char *group,
                    const char *resource, const char *ns)
{
    struct kcp_buf prefix = KCP_BUF_INIT;
    struct kcp_store_list_result lr;
    kcp_store_key(&prefix, group, resource, ns, NULL);
    kcp_store_list(s, prefix.data, prefix.len, 0, NULL, 0, 0, collect_on_item, cc, &lr);
    kcp_buf_free(&prefix);
}

/*
 * The namespace controller's pass, in one entry: content without finalizers is deleted, content
 * with finalizers is marked, and the namespace goes once nothing is held. Run when a namespace
 * is marked, and again whenever an object in a terminating namespace finishes finalizing.
 */
void api_namespace_cleanup(struct kcp_api *api, const char *ns)
{
    struct collect_ctx cc = {KCP_BUF_INIT, KCP_BUF_INIT, 0, 0, NULL, 0,
                             kcp_clock_wall_s(api->loop->clock), api->store, KCP_BUF_INIT, NULL, 0};
    for (size_t i = 0; i < kcp_schema_resource_count(); i++) {
        const struct kcp_schema_resource *res = kcp_schema_resource_at(i);
        if (!res->namespaced)
            continue;
        /* A resource served in several versions is stored once. */
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++) {
            const struct kcp_schema_resource *o = kcp_schema_resource_at(k);
            seen = o->namespaced && !strcmp(o->group, res->group) && !strcmp(o->resource, res->resource);
        }
        if (!seen)
            collect(api->store, &cc, res->group, res->resource, ns);
    }
    bool finished = cc.held == 0;
    /* The namespace's own finalizers (metadata) hold it too, until their owners remove them. */
    struct kcp_buf nsk = KCP_BUF_INIT;
    struct kcp_obj *nsobj = NULL;
    kcp_store_key(&nsk, "", "namespaces", NULL, ns);
    if (kcp_store_get(api->store, nsk.data, nsk.len, 0, &nsobj) == 0) {
        if (json_array_size(json_object_get(json_object_get(nsobj->doc, "metadata"), "finalizers")))
            finished = false;
        kcp_obj_unref(nsobj);
    }
    kcp_buf_free(&nsk);
    if (finished) {
        struct kcp_buf nskey = KCP_BUF_INIT;
        kcp_store_key(&nskey, "", "namespaces", NULL, ns);
        kcp_buf_append(&cc.keys, nskey.data, nskey.len + 1);
        cc.n++;
        kcp_buf_free(&nskey);
    }
    size_t nops = cc.n + cc.nmarks + cc.nallocs;
    struct kcp_store_op *ops = kcp_calloc(nops ? nops : 1, sizeof(*ops));
    const char *p = cc.keys.data;
    for (size_t i = 0; i < cc.n; i++) {
        ops[i] = (struct kcp_store_op){.type = KCP_STORE_DELETE, .key = p, .key_len = strlen(p)};
        p += ops[i].key_len + 1;
    }
    p = cc.marks.data;
    for (size_t i = 0; i < cc.nmarks; i++) {
        struct kcp_store_op *op = &ops[cc.n + i];
        op->type = KCP_STORE_PUT;
        op->precond = KCP_STORE_IF_REVISION;
        op->revision = cc.mark_revs[i];
        op->key = p;
        op->key_len = strlen(p);
        p += op->key_len + 1;
        op->value = p;
        op->value_len = strlen(p);
        p += op->value_len + 1;
    }
    p = cc.allocs.data;
    for (size_t i = 0; i < cc.nallocs; i++) {
        ops[cc.n + cc.nmarks + i] = (struct kcp_store_op){
            .type = KCP_STORE_DELETE, .precond = KCP_STORE_IF_REVISION,
            .revision = cc.alloc_revs[i], .key = p, .key_len = strlen(p)};
        p += strlen(p) + 1;
    }
    if (nops == 0)
        goto done;
    struct ns_cleanup *c = kcp_calloc(1, sizeof(*c));
    c->api = api;
    c->ns = kcp_strdup(ns);
    c->finished = finished;
    struct kcp_store_entry e = {
        .wall_s = cc.now,
        .verb = "delete",
        .user = "system:serviceaccount:kube-system:namespace-controller",
        .request_id = "namespace-controller",
        .nops = nops,
        .ops = ops,
    };
    int rc = kcp_store_entry_encode(&c->entry, &e);
    c->req.data = c;
    c->req.cb = cleanup_on_done;
    if (rc == 0)
        rc = kcp_store_propose(api->store, c->entry.data, c->entry.len, &c->req);
    if (rc != 0) {
        kcp_log(KCP_LOG_ERROR, "api", "namespace %s cleanup: %s", ns, kcp_error_message(rc));
        kcp_buf_free(&c->entry);
        free(c->ns);
        free(c);
    }
done:
    free(ops);
    free(cc.mark_revs);
    free(cc.alloc_revs);
    kcp_buf_free(&cc.keys);
    kcp_buf_free(&cc.marks);
    kcp_buf_free(&cc.allocs);
}

/* Called after an object in namespace ns went away: a terminating namespace may now finish. */
void api_namespace_changed(struct kcp_api *api, const char *ns)
{
    if (!ns)
        return;
    struct kcp_buf key = KCP_BUF_INIT;
    struct kcp_obj *nsobj = NULL;
    kcp_store_key(&key, "", "namespaces", NULL, ns);
    if (kcp_store_get(api->store, key.data, key.len, 0, &nsobj) == 0) {
        if (api_meta_str(nsobj->doc, "deletionTimestamp"))
            api_namespace_cleanup(api, ns);
        kcp_obj_unref(nsobj);
    }
    kcp_buf_free(&key);
}

/* ---- deletecollection ---- */

struct dc_ctx {
    struct api_req *r;
    struct api_filter filter;
    struct kcp_buf keys;
    size_t n;
    struct kcp_buf allocs; /* allocation keys of the Services deleted, and their revisions */
    uint64_t *alloc_revs;
    size_t nallocs;
};

static int dc_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct dc_ctx *dc = ctx;
    if (!api_filter_match(dc->r, &dc->filter, obj->doc))
        return 0;
    kcp_buf_append(&dc->keys, obj->key, obj->key_len + 1);
    dc->n++;
    if (!strncmp(obj->key, "/core/services/", 15))
        dc->nallocs += api_service_keys_held(dc->r->api->store, obj->doc, &dc->allocs,
                                             &dc->alloc_revs, dc->nallocs);
    return 0;
}

static void dc_on_done(struct kcp_store_req *req, int status, const struct kcp_store_result *res)
{
    struct api_req *r = req->data;
    r->in_store = false;
    if (r->gone)
        return api_req_finish(r);
    if (status != 0)
        return api_fail(r, status, NULL, NULL, "storage: %s", kcp_error_message(status));
    json_t *st = json_pack("{s:s, s:s, s:{}, s:s}", "kind", "Status", "apiVersion", "v1",
                           "metadata", "status", "Success");
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_codec_json_write(&b, st);
    json_decref(st);
    api_respond_json_text(r, 200, "application/json", b.data, b.len);
    kcp_buf_free(&b);
}

void api_delete_collection(struct api_req *r)
{
    struct dc_ctx dc = {.r = r, .keys = KCP_BUF_INIT, .allocs = KCP_BUF_INIT};
    if (api_filter_parse(r, &dc.filter) != 0)
        return;
    api_key(r, &r->key, NULL);
    struct kcp_store_list_result lr;
    kcp_store_list(r->api->store, r->key.data, r->key.len, 0, NULL, 0, 0, dc_on_item, &dc, &lr);
    api_filter_free(&dc.filter);
    if (dc.n == 0) {
        kcp_buf_free(&dc.keys);
        r->store_req.data = r;
        dc_on_done(&r->store_req, 0, NULL);
        return;
    }
    struct kcp_store_op *ops = kcp_calloc(dc.n + dc.nallocs, sizeof(*ops));
    const char *p = dc.keys.data;
    for (size_t i = 0; i < dc.n; i++) {
        ops[i].type = KCP_STORE_DELETE;
        ops[i].key = p;
        ops[i].key_len = strlen(p);
        p += ops[i].key_len + 1;
    }
    p = dc.allocs.data;
    for (size_t i = 0; i < dc.nallocs; i++) {
        ops[dc.n + i] = (struct kcp_store_op){
            .type = KCP_STORE_DELETE, .precond = KCP_STORE_IF_REVISION,
            .revision = dc.alloc_revs[i], .key = p, .key_len = strlen(p)};
        p += strlen(p) + 1;
    }
    struct kcp_buf enc = KCP_BUF_INIT;
    struct kcp_store_entry e = {
        .wall_s = kcp_clock_wall_s(r->api->loop->clock),
        .verb = "deletecollection",
        .user = r->http->identity && r->http->identity->user ? r->http->identity->user : "",
        .request_id = "",
        .nops = dc.n + dc.nallocs,
        .ops = ops,
    };
    int rc = kcp_store_entry_encode(&enc, &e);
    r->store_req.data = r;
    r->store_req.cb = dc_on_done;
    if (rc == 0)
        rc = kcp_store_propose(r->api->store, enc.data, enc.len, &r->store_req);
    if (rc == 0)
        r->in_store = true;
    kcp_buf_free(&enc);
    free(ops);
    kcp_buf_free(&dc.keys);
    kcp_buf_free(&dc.allocs);
    free(dc.alloc_revs);
    if (rc != 0)
        api_fail(r, rc, NULL, NULL, "storage: %s", kcp_error_message(rc));
}
