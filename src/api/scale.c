/* The Scale subresource (autoscaling/v1) of workloads: spec.replicas read and written. */
#include "api_int.h"

#include <string.h>

static json_t *obj_at(json_t *parent, const char *key)
{
    json_t *v = json_object_get(parent, key);
    if (!json_is_object(v)) {
        v = json_object();
        json_object_set_new(parent, key, v);
    }
    return v;
}

json_t *api_scale_of(const struct api_req *r, const json_t *obj)
{
    const json_t *meta = json_object_get(obj, "metadata");
    json_t *scale = json_object();
    json_object_set_new(scale, "kind", json_string("Scale"));
    json_object_set_new(scale, "apiVersion", json_string("autoscaling/v1"));
    json_t *m = json_object();
    static const char *const keep[] = {"name", "namespace", "uid", "resourceVersion",
                                       "creationTimestamp", NULL};
    for (size_t i = 0; keep[i]; i++)
        if (json_object_get(meta, keep[i]))
            json_object_set(m, keep[i], json_object_get(meta, keep[i]));
    json_object_set_new(scale, "metadata", m);
    const json_t *spec = json_object_get(obj, "spec");
    json_object_set_new(scale, "spec", json_pack("{s:I}", "replicas",
                                                 (json_int_t)json_integer_value(json_object_get(spec, "replicas"))));
    json_t *status = json_object();
    json_object_set_new(status, "replicas",
                        json_integer(json_integer_value(json_object_get(json_object_get(obj, "status"), "replicas"))));
    const json_t *ml = json_object_get(json_object_get(spec, "selector"), "matchLabels");
    if (json_object_size(ml)) {
        struct kcp_buf b = KCP_BUF_INIT;
        const char *k;
        json_t *v;
        int n = 0;
        json_object_foreach((json_t *)ml, k, v)
            kcp_buf_printf(&b, "%s%s=%s", n++ ? "," : "", k, json_string_value(v) ?: "");
        json_object_set_new(status, "selector", json_string(b.data));
        kcp_buf_free(&b);
    }
    json_object_set_new(scale, "status", status);
    return scale;
}

int api_scale_apply(json_t *obj, const json_t *scale)
{
    const json_t *replicas = json_object_get(json_object_get(scale, "spec"), "replicas");
    if (!json_is_integer(replicas))
        return KCP_EINVAL;
    json_object_set(obj_at(obj, "spec"), "replicas", (json_t *)replicas);
    return 0;
}
