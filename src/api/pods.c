/*
 * Pod subresources the scheduler and `kubectl drain` use: binding (assign a node) and eviction
 * (a delete that honours PodDisruptionBudgets, answering 429 when a budget forbids it).
 */
#include "api_int.h"

#include "meta.h"

#include <kcp/selector.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void subresource_on_done(struct api_req *r, int status, const struct kcp_store_result *res)
{
    if (status != 0)
        return api_fail(r, status, NULL, NULL, "storage: %s", kcp_error_message(status));
    if (res->ops[0].err)
        return api_fail_object(r, res->ops[0].err, r->path.name);
    json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:i}", "kind", "Status", "apiVersion", "v1",
                           "metadata", "status", "Success", "code", 201);
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_codec_json_write(&b, st);
    json_decref(st);
    api_respond_json_text(r, 201, "application/json", b.data, b.len);
    kcp_buf_free(&b);
}

static void pod_bind(struct api_req *r, const struct kcp_obj *pod, const json_t *binding)
{
    const char *node = json_string_value(json_object_get(json_object_get(binding, "target"), "name"));
    if (!node || !*node)
        return api_fail(r, KCP_EINVALID, r->path.name, NULL,
                        "Binding \"%s\" is invalid: target.name: Required value", r->path.name);
    const char *current = json_string_value(json_object_get(json_object_get(pod->doc, "spec"), "nodeName"));
    if (current && *current)
        return api_fail(r, KCP_ECONFLICT, r->path.name, NULL,
                        "Operation cannot be fulfilled on pods/binding \"%s\": pod %s is already "
                        "assigned to node \"%s\"", r->path.name, r->path.name, current);
    if (api_meta_str(pod->doc, "deletionTimestamp"))
        return api_fail(r, KCP_ECONFLICT, r->path.name, NULL,
                        "Operation cannot be fulfilled on pods/binding \"%s\": pod %s is being "
                        "deleted, cannot be assigned to a host", r->path.name, r->path.name);
    json_t *obj = json_deep_copy(pod->doc);
    json_object_del(json_object_get(obj, "metadata"), "resourceVersion");
    json_object_set_new(json_object_get(obj, "spec"), "nodeName", json_string(node));
    /* The PodScheduled condition, as upstream's binding storage sets it. */
    json_t *status = json_object_get(obj, "status");
    if (!status) {
        status = json_object();
        json_object_set_new(obj, "status", status);
    }
    json_t *conds = json_object_get(status, "conditions");
    if (!conds) {
        conds = json_array();
        json_object_set_new(status, "conditions", conds);
    }
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c) {
        if (strcmp(json_string_value(json_object_get(c, "type")) ?: "", "PodScheduled") == 0) {
            json_array_remove(conds, i);
            break;
        }
    }
    char ts[32];
    api_meta_time(ts, sizeof(ts), kcp_clock_wall_s(r->api->loop->clock));
    json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:s}", "type", "PodScheduled", "status",
                                           "True", "lastProbeTime", "lastTransitionTime", ts));
    r->obj = obj;
    r->cont = subresource_on_done;
    api_propose(r, "bind", r->key.data, r->key.len, obj, KCP_STORE_IF_REVISION, pod->mod_revision);
}

/* metav1.LabelSelector as selector text: matchLabels then matchExpressions. */
static char *selector_text(const json_t *sel)
{
    struct kcp_buf b = KCP_BUF_INIT;
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach(json_object_get(sel, "matchLabels"), k, v)
        kcp_buf_printf(&b, "%s%s=%s", n++ ? "," : "", k, json_string_value(v) ?: "");
    size_t i, j;
    json_t *e, *val;
    json_array_foreach(json_object_get(sel, "matchExpressions"), i, e) {
        const char *key = json_string_value(json_object_get(e, "key")) ?: "";
        const char *op = json_string_value(json_object_get(e, "operator")) ?: "";
        kcp_buf_puts(&b, n++ ? "," : "");
        if (!strcmp(op, "Exists"))
            kcp_buf_puts(&b, key);
        else if (!strcmp(op, "DoesNotExist"))
            kcp_buf_printf(&b, "!%s", key);
        else {
            kcp_buf_printf(&b, "%s %s (", key, !strcmp(op, "In") ? "in" : "notin");
            json_array_foreach(json_object_get(e, "values"), j, val)
                kcp_buf_printf(&b, "%s%s", j ? "," : "", json_string_value(val) ?: "");
            kcp_buf_puts(&b, ")");
        }
    }
    return kcp_buf_detach(&b);
}

struct pdb_ctx {
    const json_t *labels;
    char *blocking; /* name of a budget that allows no disruption */
};

static int pdb_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct pdb_ctx *pc = ctx;
    const json_t *sel = json_object_get(json_object_get(obj->doc, "spec"), "selector");
    if (!sel)
        return 0;
    char *text = selector_text(sel), *err = NULL;
    struct kcp_label_selector *ls = NULL;
    bool match = *text && kcp_selector_parse_labels(&ls, text, &err) == 0 &&
                 kcp_selector_labels_matches(ls, pc->labels);
    kcp_selector_labels_free(ls);
    free(err);
    free(text);
    if (!match)
        return 0;
    json_int_t allowed =
        json_integer_value(json_object_get(json_object_get(obj->doc, "status"), "disruptionsAllowed"));
    if (allowed < 1) {
        pc->blocking = kcp_strdup(api_meta_str(obj->doc, "name") ?: "");
        return 1;
    }
    return 0;
}

static void pod_evict(struct api_req *r, const struct kcp_obj *pod, const json_t *eviction)
{
    struct pdb_ctx pc = {json_object_get(json_object_get(pod->doc, "metadata"), "labels"), NULL};
    struct kcp_buf prefix = KCP_BUF_INIT;
    struct kcp_store_list_result lr;
    const char *phase = json_string_value(json_object_get(json_object_get(pod->doc, "status"), "phase"));
    /* Pods that are done running can always be evicted (upstream). */
    if (!phase || (strcmp(phase, "Succeeded") != 0 && strcmp(phase, "Failed") != 0)) {
        kcp_store_key(&prefix, "policy", "poddisruptionbudgets", r->path.namespace_, NULL);
        kcp_store_list(r->api->store, prefix.data, prefix.len, 0, NULL, 0, 0, pdb_on_item, &pc, &lr);
        kcp_buf_free(&prefix);
    }
    if (pc.blocking) {
        char *msg = kcp_sprintf("The disruption budget %s does not allow more disruptions",
                                pc.blocking);
        json_t *causes = json_pack("[{s:s, s:s}]", "reason", "DisruptionBudget", "message", msg);
        free(msg);
        free(pc.blocking);
        return api_fail(r, KCP_ETOOMANY, NULL, causes,
                        "Cannot evict pod as it would violate the pod's disruption budget.");
    }
    const json_t *opts = json_object_get(eviction, "deleteOptions");
    json_int_t grace = json_is_integer(json_object_get(opts, "gracePeriodSeconds"))
                           ? json_integer_value(json_object_get(opts, "gracePeriodSeconds"))
                           : 30;
    const char *node = json_string_value(json_object_get(json_object_get(pod->doc, "spec"), "nodeName"));
    r->cont = subresource_on_done;
    if (node && *node && grace > 0 && !api_meta_str(pod->doc, "deletionTimestamp")) {
        /* A running pod gets its grace period; the node's agent finishes the deletion. */
        json_t *obj = json_deep_copy(pod->doc);
        json_t *m = json_object_get(obj, "metadata");
        json_object_del(m, "resourceVersion");
        char ts[32];
        api_meta_time(ts, sizeof(ts), kcp_clock_wall_s(r->api->loop->clock) + grace);
        json_object_set_new(m, "deletionTimestamp", json_string(ts));
        json_object_set_new(m, "deletionGracePeriodSeconds", json_integer(grace));
        r->obj = obj;
        return api_propose(r, "evict", r->key.data, r->key.len, obj, KCP_STORE_IF_REVISION,
                           pod->mod_revision);
    }
    if (api_meta_str(pod->doc, "deletionTimestamp") && node && *node)
        return subresource_on_done(r, 0, &(struct kcp_store_result){
                                             .nops = 1, .ops = &(struct kcp_store_op_result){0}});
    api_propose(r, "evict", r->key.data, r->key.len, NULL, KCP_STORE_IF_REVISION, pod->mod_revision);
}

void api_pod_subresource(struct api_req *r)
{
    json_t *body = api_decode_body(r);
    struct kcp_obj *pod = NULL;
    if (!body)
        return;
    api_key(r, &r->key, r->path.name);
    int rc = kcp_store_get(r->api->store, r->key.data, r->key.len, 0, &pod);
    if (rc != 0) {
        json_decref(body);
        return api_fail_object(r, rc, r->path.name);
    }
    if (strcmp(r->sub->name, "binding") == 0)
        pod_bind(r, pod, body);
    else
        pod_evict(r, pod, body);
    json_decref(body);
    kcp_obj_unref(pod);
}
