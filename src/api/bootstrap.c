/* What every cluster starts with: the four namespaces and the kubernetes service. */
#include "api_int.h"

#include "meta.h"
#include "services.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct boot {
    struct kcp_api *api;
    struct kcp_store_req req;
    struct kcp_buf entry;
    kcp_api_ready_cb cb;
    void *data;
};

static json_t *stamp(json_t *obj, int64_t now)
{
    char uid[37], ts[32];
    json_t *meta = json_object_get(obj, "metadata");
    if (api_meta_uid(uid) == 0)
        json_object_set_new(meta, "uid", json_string(uid));
    api_meta_time(ts, sizeof(ts), now);
    json_object_set_new(meta, "creationTimestamp", json_string(ts));
    return obj;
}

static void boot_on_done(struct kcp_store_req *req, int status, const struct kcp_store_result *res)
{
    struct boot *b = req->data;
    /* An op that found its object already there is fine: the cluster was bootstrapped. */
    int rc = status;
    for (size_t i = 0; rc == 0 && res && i < res->nops; i++)
        if (res->ops[i].err && res->ops[i].err != KCP_EEXIST)
            rc = res->ops[i].err;
    b->cb(b->api, rc, b->data);
    kcp_buf_free(&b->entry);
    free(b);
}

void kcp_api_bootstrap(struct kcp_api *api, kcp_api_ready_cb cb, void *data)
{
    static const char *const namespaces[] = {"default", "kube-system", "kube-public",
                                             "kube-node-lease"};
    const struct kcp_schema_resource *ns_res = kcp_schema_resource_find("", "v1", "namespaces");
    const struct kcp_schema_resource *svc_res = kcp_schema_resource_find("", "v1", "services");
    int64_t now = kcp_clock_wall_s(api->loop->clock);
    struct kcp_buf keys[5], values[5], allocs = KCP_BUF_INIT;
    size_t n = 0;
    for (size_t i = 0; i < 4; i++, n++) {
        json_t *o = json_pack("{s:s, s:s, s:{s:s}}", "kind", "Namespace", "apiVersion", "v1",
                              "metadata", "name", namespaces[i]);
        api_admit_defaults(ns_res, stamp(o, now));
        keys[n] = (struct kcp_buf)KCP_BUF_INIT;
        values[n] = (struct kcp_buf)KCP_BUF_INIT;
        kcp_store_key(&keys[n], "", "namespaces", NULL, namespaces[i]);
        kcp_codec_json_write(&values[n], o);
        json_decref(o);
    }
    json_t *svc = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s, s:[{s:s, s:s, s:i, s:i}]}}", "kind",
        "Service", "apiVersion", "v1", "metadata", "name", "kubernetes", "namespace", "default",
        "labels", "component", "apiserver", "provider", "kubernetes", "spec", "clusterIP",
        "10.43.0.1", "ports", "name", "https", "protocol", "TCP", "port", 443, "targetPort", 6443);
    api_admit_defaults(svc_res, stamp(svc, now));
    json_object_set_new(json_object_get(svc, "spec"), "clusterIPs", json_pack("[s]", "10.43.0.1"));
    keys[n] = (struct kcp_buf)KCP_BUF_INIT;
    values[n] = (struct kcp_buf)KCP_BUF_INIT;
    kcp_store_key(&keys[n], "", "services", "default", "kubernetes");
    kcp_codec_json_write(&values[n], svc);
    /* Its ClusterIP's key, and those of Services stored before allocations had keys. */
    size_t nallocs = api_service_backfill(api->store, svc, &allocs);
    json_decref(svc);
    n++;
    struct kcp_store_op *ops = kcp_calloc(n + nallocs, sizeof(*ops));
    for (size_t i = 0; i < n; i++)
        ops[i] = (struct kcp_store_op){KCP_STORE_PUT, KCP_STORE_IF_ABSENT, 0, keys[i].data,
                                       keys[i].len, values[i].data, values[i].len};
    const char *p = allocs.data;
    for (size_t i = 0; i < nallocs; i++) {
        size_t klen = strlen(p);
        const char *v = p + klen + 1;
        size_t vlen = strlen(v);
        ops[n + i] = (struct kcp_store_op){KCP_STORE_PUT, KCP_STORE_IF_ABSENT, 0, p, klen, v, vlen};
        p = v + vlen + 1;
    }
    struct boot *b = kcp_calloc(1, sizeof(*b));
    b->api = api;
    b->cb = cb;
    b->data = data;
    struct kcp_store_entry e = {.wall_s = now, .verb = "create", .user = "system:kcp",
                                .request_id = "bootstrap", .nops = n + nallocs, .ops = ops};
    int rc = kcp_store_entry_encode(&b->entry, &e);
    for (size_t i = 0; i < n; i++) {
        kcp_buf_free(&keys[i]);
        kcp_buf_free(&values[i]);
    }
    free(ops);
    kcp_buf_free(&allocs);
    b->req.data = b;
    b->req.cb = boot_on_done;
    if (rc == 0)
        rc = kcp_store_propose(api->store, b->entry.data, b->entry.len, &b->req);
    if (rc != 0) {
        kcp_buf_free(&b->entry);
        free(b);
        cb(api, rc, data);
    }
}
