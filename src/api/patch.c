/*
 * PATCH: JSON patch, merge patch and strategic merge patch applied to the stored object (or its
 * Scale), then the update pipeline. A conflict the patch did not ask for is retried on the
 * fresh object, as upstream does.
 */
#include "api_int.h"

#include <kcp/patch.h>

#include <stdlib.h>
#include <string.h>

/* Strategic-merge schema nodes over the generated tables; allocated per patch call. */
struct smp_node {
    struct smp_node *next; /* arena list */
    struct smp_node **arena;
    const struct kcp_schema_message *msg; /* set for message values */
    const struct kcp_schema_field *field; /* the field this node is the value of, or NULL */
    bool element;                          /* a list item or map value of field */
};

static const struct smp_node *node_new(struct smp_node **arena, const struct kcp_schema_field *f,
                                       const struct kcp_schema_message *msg, bool element)
{
    struct smp_node *n = kcp_calloc(1, sizeof(*n));
    n->next = *arena;
    *arena = n;
    n->arena = arena;
    n->field = f;
    n->element = element;
    n->msg = msg ? msg : f ? kcp_schema_field_message(f) : NULL;
    return n;
}

static const void *smp_field(const void *node, const char *name)
{
    const struct smp_node *n = node;
    if (n->field && !n->element && (n->field->flags & KCP_SCHEMA_F_MAP))
        return node_new(n->arena, n->field, NULL, true);
    if (n->field && !n->element && (n->field->flags & KCP_SCHEMA_F_REPEATED))
        return NULL;
    if (!n->msg || n->msg->kind != KCP_SCHEMA_MESSAGE)
        return NULL;
    const struct kcp_schema_field *f, *inl;
    if (kcp_schema_field_find(&f, &inl, n->msg, name) != 0)
        return NULL;
    return node_new(n->arena, f, NULL, false);
}

static const void *smp_items(const void *node)
{
    const struct smp_node *n = node;
    if (n->field && !n->element && (n->field->flags & KCP_SCHEMA_F_REPEATED))
        return node_new(n->arena, n->field, NULL, true);
    return NULL;
}

static unsigned smp_strategy(const void *node, const char **out_merge_key)
{
    const struct smp_node *n = node;
    unsigned flags = 0;
    if (!n->field || n->element)
        return 0;
    if (n->field->patch & KCP_SCHEMA_PATCH_MERGE)
        flags |= KCP_SMP_MERGE;
    if (n->field->patch & KCP_SCHEMA_PATCH_RETAIN_KEYS)
        flags |= KCP_SMP_RETAIN_KEYS;
    if (n->field->patch & KCP_SCHEMA_PATCH_REPLACE)
        flags |= KCP_SMP_REPLACE;
    if (out_merge_key)
        *out_merge_key = n->field->merge_key;
    return flags;
}

static void patch_run(struct api_req *r);

static int patch_error(struct api_req *r, int rc, char *msg)
{
    if (rc == KCP_EINVALID)
        api_fail(r, KCP_EINVALID, NULL, NULL,
                 "the server rejected our request due to an error in our request: %s",
                 msg ? msg : "invalid patch");
    else if (rc == KCP_ETOOLARGE)
        api_fail(r, KCP_ETOOLARGE, NULL, NULL, "Request entity too large: %s", msg ? msg : "");
    else
        api_fail(r, rc, NULL, NULL, "%s", msg ? msg : kcp_error_message(rc));
    free(msg);
    return rc;
}

static void patch_run(struct api_req *r)
{
    enum api_body_type type;
    json_t *patch = NULL, *target = NULL, *result = NULL, *obj = NULL;
    struct kcp_obj *current = NULL;
    char *msg = NULL, *want_rv = NULL;
    api_media_body_type(&type, kcp_http_header(r->http, "Content-Type"));
    if (!(patch = api_parse_json_body(r)))
        return;
    api_key(r, &r->key, r->path.name);
    int rc = kcp_store_get(r->api->store, r->key.data, r->key.len, 0, &current);
    if (rc != 0) {
        api_fail_object(r, rc, r->path.name);
        goto done;
    }
    bool scale = r->sub && strcmp(r->sub->name, "scale") == 0;
    target = scale ? api_scale_of(r, current->doc) : json_incref(current->doc);
    struct smp_node *arena = NULL;
    switch (type) {
    case API_BODY_JSON_PATCH:
        rc = kcp_patch_apply_json(&result, target, patch, &msg);
        break;
    case API_BODY_MERGE_PATCH:
        rc = kcp_patch_apply_merge(&result, target, patch, &msg);
        break;
    default: {
        const struct kcp_schema_message *m =
            scale ? kcp_schema_message_by_gvk("autoscaling", "v1", "Scale")
                  : kcp_schema_message_at(r->rsrc->msg);
        struct kcp_smp_schema schema = {
            .root = node_new(&arena, NULL, m, false),
            .field = smp_field,
            .items = smp_items,
            .strategy = smp_strategy,
        };
        rc = kcp_patch_apply_strategic(&result, target, patch, &schema, &msg);
        break;
    }
    }
    while (arena) {
        struct smp_node *n = arena;
        arena = n->next;
        free(n);
    }
    if (rc != 0) {
        patch_error(r, rc, msg);
        goto done;
    }
    free(msg);
    if (!json_is_object(result)) {
        api_fail(r, KCP_EBADREQUEST, NULL, NULL, "the patch result is not an object");
        goto done;
    }
    const char *patched_rv = api_meta_str(result, "resourceVersion");
    const char *stored_rv = api_meta_str(scale ? target : current->doc, "resourceVersion");
    /* A patch that names another resourceVersion makes it a precondition (kubectl diff,
     * apply --force): kept on the object so apply decides the conflict. */
    bool precondition = patched_rv && stored_rv && strcmp(patched_rv, stored_rv) != 0;
    want_rv = precondition ? kcp_strdup(patched_rv) : NULL;
    if (scale) {
        obj = json_deep_copy(current->doc);
        json_object_del(json_object_get(obj, "metadata"), "resourceVersion");
        if (api_scale_apply(obj, result) != 0) {
            api_fail(r, KCP_EBADREQUEST, NULL, NULL, "the patched Scale has no spec.replicas");
            goto done;
        }
    } else {
        json_t *unknown = json_array();
        struct kcp_codec_err err = {{0}};
        rc = kcp_codec_normalize(&obj, result, kcp_schema_message_at(r->rsrc->msg), 0, unknown, &err);
        if (rc != 0) {
            json_decref(unknown);
            api_fail(r, KCP_EBADREQUEST, NULL, NULL, "%s", err.msg);
            goto done;
        }
        const char *fv = api_query(r, "fieldValidation");
        if (json_array_size(unknown) && fv && strcmp(fv, "Strict") == 0) {
            const char *path = json_string_value(json_array_get(unknown, 0));
            api_fail(r, KCP_EBADREQUEST, NULL, NULL, "strict decoding error: unknown field \"%s\"",
                     path[0] == '.' ? path + 1 : path);
            json_decref(unknown);
            goto done;
        }
        if (!fv || strcmp(fv, "Ignore") != 0) {
            size_t i;
            json_t *path;
            json_array_foreach(unknown, i, path)
                api_warn_field(r, "unknown", json_string_value(path));
        }
        json_decref(unknown);
        /* Fields a patch may not move: kind, apiVersion, name, namespace. */
        json_object_set(obj, "kind", json_object_get(current->doc, "kind"));
        json_object_set(obj, "apiVersion", json_object_get(current->doc, "apiVersion"));
        json_object_del(json_object_get(obj, "metadata"), "resourceVersion");
    }
    if (want_rv) {
        json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(want_rv));
        free(want_rv);
        want_rv = NULL;
    }
    r->retry = patch_run;
    json_decref(r->obj);
    r->obj = NULL;
    api_write_update(r, current, obj);
    obj = NULL;
done:
    free(want_rv);
    json_decref(patch);
    json_decref(target);
    json_decref(result);
    json_decref(obj);
    kcp_obj_unref(current);
}

void api_patch(struct api_req *r)
{
    enum api_body_type type;
    if (api_media_body_type(&type, kcp_http_header(r->http, "Content-Type")) != 0 ||
        (type != API_BODY_JSON_PATCH && type != API_BODY_MERGE_PATCH &&
         type != API_BODY_STRATEGIC_PATCH && type != API_BODY_APPLY_PATCH))
        return api_fail(r, KCP_EMEDIATYPE, NULL, NULL,
                        "the body of the request was in an unknown format - accepted media types "
                        "include: application/json-patch+json, application/merge-patch+json, "
                        "application/strategic-merge-patch+json, application/apply-patch+yaml");
    if (r->sub && strcmp(r->sub->name, "status") != 0 && strcmp(r->sub->name, "scale") != 0)
        return api_fail(r, KCP_EMETHOD, NULL, NULL,
                        "the server does not allow this method on the requested resource");
    /* PatchOptions as upstream validates them, before the object is looked up. */
    if (type == API_BODY_APPLY_PATCH)
        return api_apply(r);
    if (api_query(r, "force"))
        return api_fail_option(r, "force", "FieldValueForbidden",
                               "Forbidden: may not be specified for non-apply patch");
    if (api_check_field_manager(r) != 0)
        return;
    patch_run(r);
}
