/*
 * Admission: the defaults upstream's defaulting functions apply and the validation rules users
 * meet most (names, required fields, immutable fields), per kind. Field paths and messages
 * follow upstream's so kubectl prints the same errors.
 */
#include "api_int.h"

#include "meta.h"
#include "services.h"

#include <mbedtls/base64.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

static void set_default(json_t *o, const char *key, json_t *value)
{
    if (!json_object_get(o, key))
        json_object_set_new(o, key, value);
    else
        json_decref(value);
}

static bool is(const struct kcp_schema_resource *rsrc, const char *group, const char *resource)
{
    return strcmp(rsrc->group, group) == 0 && strcmp(rsrc->resource, resource) == 0;
}

static void default_container(json_t *c)
{
    set_default(c, "terminationMessagePath", json_string("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json_string("File"));
    const char *image = json_string_value(json_object_get(c, "image"));
    if (image && !json_object_get(c, "imagePullPolicy")) {
        /* Always for :latest or no tag (a digest pins the image), else IfNotPresent. */
        const char *slash = strrchr(image, '/');
        const char *colon = strrchr(slash ? slash : image, ':');
        bool latest = !strchr(image, '@') && (!colon || strcmp(colon, ":latest") == 0);
        json_object_set_new(c, "imagePullPolicy", json_string(latest ? "Always" : "IfNotPresent"));
    }
    set_default(c, "resources", json_object());
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(c, "ports"), i, p)
        set_default(p, "protocol", json_string("TCP"));
}

static void default_pod_spec(json_t *spec)
{
    set_default(spec, "restartPolicy", json_string("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json_integer(30));
    set_default(spec, "dnsPolicy", json_string("ClusterFirst"));
    set_default(spec, "securityContext", json_object());
    set_default(spec, "schedulerName", json_string("default-scheduler"));
    set_default(spec, "enableServiceLinks", json_true());
    set_default(spec, "preemptionPolicy", json_string("PreemptLowerPriority"));
    set_default(spec, "priority", json_integer(0));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
        default_container(c);
    json_array_foreach(json_object_get(spec, "initContainers"), i, c)
        default_container(c);
}

static void default_template(json_t *obj)
{
    json_t *spec = obj_at(obj, "spec");
    json_t *tmpl = obj_at(spec, "template");
    obj_at(tmpl, "metadata");
    default_pod_spec(obj_at(tmpl, "spec"));
}

static json_t *pct(const char *s)
{
    return json_string(s);
}

void api_admit_defaults(const struct kcp_schema_resource *rsrc, json_t *obj)
{
    json_t *meta = obj_at(obj, "metadata");
    if (is(rsrc, "", "secrets")) {
        set_default(obj, "type", json_string("Opaque"));
        /* stringData is write-only: merged into data (base64), never stored (upstream). */
        json_t *sd = json_object_get(obj, "stringData");
        if (json_is_object(sd)) {
            json_t *data = obj_at(obj, "data");
            const char *k;
            json_t *v;
            json_object_foreach(sd, k, v) {
                const char *text = json_string_value(v) ?: "";
                size_t n = 0, len = strlen(text);
                mbedtls_base64_encode(NULL, 0, &n, (const unsigned char *)text, len);
                unsigned char *b64 = kcp_malloc(n + 1);
                mbedtls_base64_encode(b64, n + 1, &n, (const unsigned char *)text, len);
                b64[n] = '\0';
                json_object_set_new(data, k, json_string((char *)b64));
                free(b64);
            }
        }
        json_object_del(obj, "stringData");
    } else if (is(rsrc, "", "namespaces")) {
        json_t *labels = obj_at(meta, "labels");
        const char *name = json_string_value(json_object_get(meta, "name"));
        if (name)
            json_object_set_new(labels, "kubernetes.io/metadata.name", json_string(name));
        json_t *spec = obj_at(obj, "spec");
        set_default(spec, "finalizers", json_pack("[s]", "kubernetes"));
        json_t *status = obj_at(obj, "status");
        set_default(status, "phase", json_string("Active"));
    } else if (is(rsrc, "", "pods")) {
        default_pod_spec(obj_at(obj, "spec"));
        json_t *status = obj_at(obj, "status");
        set_default(status, "phase", json_string("Pending"));
        set_default(status, "qosClass", json_string("BestEffort"));
    } else if (is(rsrc, "apps", "deployments")) {
        json_t *spec = obj_at(obj, "spec");
        set_default(spec, "replicas", json_integer(1));
        json_t *strategy = obj_at(spec, "strategy");
        set_default(strategy, "type", json_string("RollingUpdate"));
        if (strcmp(json_string_value(json_object_get(strategy, "type")) ?: "", "RollingUpdate") == 0) {
            json_t *ru = obj_at(strategy, "rollingUpdate");
            set_default(ru, "maxUnavailable", pct("25%"));
            set_default(ru, "maxSurge", pct("25%"));
        }
        set_default(spec, "revisionHistoryLimit", json_integer(10));
        set_default(spec, "progressDeadlineSeconds", json_integer(600));
        default_template(obj);
    } else if (is(rsrc, "apps", "replicasets")) {
        set_default(obj_at(obj, "spec"), "replicas", json_integer(1));
        default_template(obj);
    } else if (is(rsrc, "apps", "statefulsets")) {
        json_t *spec = obj_at(obj, "spec");
        set_default(spec, "replicas", json_integer(1));
        set_default(spec, "podManagementPolicy", json_string("OrderedReady"));
        set_default(spec, "revisionHistoryLimit", json_integer(10));
        json_t *us = obj_at(spec, "updateStrategy");
        set_default(us, "type", json_string("RollingUpdate"));
        default_template(obj);
    } else if (is(rsrc, "apps", "daemonsets")) {
        json_t *spec = obj_at(obj, "spec");
        set_default(spec, "revisionHistoryLimit", json_integer(10));
        json_t *us = obj_at(spec, "updateStrategy");
        set_default(us, "type", json_string("RollingUpdate"));
        default_template(obj);
    } else if (is(rsrc, "batch", "jobs")) {
        json_t *spec = obj_at(obj, "spec");
        set_default(spec, "completions", json_integer(1));
        set_default(spec, "parallelism", json_integer(1));
        set_default(spec, "backoffLimit", json_integer(6));
        set_default(spec, "completionMode", json_string("NonIndexed"));
        set_default(spec, "suspend", json_false());
        default_template(obj);
    } else if (is(rsrc, "batch", "cronjobs")) {
        json_t *spec = obj_at(obj, "spec");
        set_default(spec, "concurrencyPolicy", json_string("Allow"));
        set_default(spec, "suspend", json_false());
        set_default(spec, "successfulJobsHistoryLimit", json_integer(3));
        set_default(spec, "failedJobsHistoryLimit", json_integer(1));
        json_t *jt = obj_at(spec, "jobTemplate");
        default_template(jt);
    } else if (is(rsrc, "", "services")) {
        json_t *spec = obj_at(obj, "spec");
        set_default(spec, "type", json_string("ClusterIP"));
        set_default(spec, "sessionAffinity", json_string("None"));
        const char *type = json_string_value(json_object_get(spec, "type")) ?: "";
        if (strcmp(type, "ExternalName") != 0) {
            set_default(spec, "internalTrafficPolicy", json_string("Cluster"));
            set_default(spec, "ipFamilyPolicy", json_string("SingleStack"));
            set_default(spec, "ipFamilies", json_pack("[s]", "IPv4"));
        }
        if (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer"))
            set_default(spec, "externalTrafficPolicy", json_string("Cluster"));
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(spec, "ports"), i, p) {
            set_default(p, "protocol", json_string("TCP"));
            json_t *port = json_object_get(p, "port");
            if (port)
                set_default(p, "targetPort", json_incref(port));
        }
        obj_at(obj, "status");
        obj_at(json_object_get(obj, "status"), "loadBalancer");
    } else if (is(rsrc, "", "serviceaccounts") || is(rsrc, "", "configmaps")) {
        /* nothing upstream defaults */
    }
}

/* ---- validation ---- */

static void add_cause(json_t *causes, const char *reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add_cause(json_t *causes, const char *reason, const char *field, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(causes, json_pack("{s:s, s:s, s:s}", "reason", reason, "message", buf,
                                            "field", field));
}

static bool label_named(const struct kcp_schema_resource *rsrc)
{
    /* Kinds whose names must be DNS-1123 labels (they become DNS names or label values). */
    return !rsrc->group[0] && (!strcmp(rsrc->resource, "namespaces") || !strcmp(rsrc->resource, "services") ||
                               !strcmp(rsrc->resource, "replicationcontrollers"));
}

static void validate_containers(json_t *causes, const json_t *spec, const char *prefix)
{
    const json_t *containers = json_object_get(spec, "containers");
    char field[128];
    if (json_array_size(containers) == 0) {
        snprintf(field, sizeof(field), "%s.containers", prefix);
        add_cause(causes, "FieldValueRequired", field, "Required value");
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *image = json_string_value(json_object_get(c, "image"));
        if (!name || !*name) {
            snprintf(field, sizeof(field), "%s.containers[%zu].name", prefix, i);
            add_cause(causes, "FieldValueRequired", field, "Required value");
        }
        if (!image || !*image) {
            snprintf(field, sizeof(field), "%s.containers[%zu].image", prefix, i);
            add_cause(causes, "FieldValueRequired", field, "Required value");
        }
    }
}

static bool config_key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 253 || !strcmp(k, ".") || !strcmp(k, ".."))
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

static void validate_keys(json_t *causes, const json_t *map, const char *field)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v) {
        if (config_key_ok(k))
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s[%s]", field, k);
        add_cause(causes, "FieldValueInvalid", path,
                  "Invalid value: \"%s\": a valid config key must consist of alphanumeric "
                  "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', "
                  "regex used for validation is '[-._a-zA-Z0-9]+')", k);
    }
}

static void validate_replicas(json_t *causes, const json_t *spec, const char *field)
{
    const json_t *r = json_object_get(spec, "replicas");
    if (json_is_integer(r) && json_integer_value(r) < 0)
        add_cause(causes, "FieldValueInvalid", field,
                  "Invalid value: %" JSON_INTEGER_FORMAT ": must be greater than or equal to 0",
                  json_integer_value(r));
}

json_t *api_admit_validate(const struct kcp_schema_resource *rsrc, const json_t *obj,
                           const json_t *old)
{
    json_t *causes = json_array();
    const char *name = api_meta_str(obj, "name");
    if (!name || !*name) {
        add_cause(causes, "FieldValueRequired", "metadata.name",
                  "Required value: name or generateName is required");
    } else if (!old) {
        char *msg = label_named(rsrc) ? api_meta_check_dns1123_label(name)
                                      : api_meta_check_dns1123_subdomain(name);
        if (msg) {
            add_cause(causes, "FieldValueInvalid", "metadata.name", "Invalid value: \"%s\": %s",
                      name, msg);
            free(msg);
        }
    }
    const json_t *spec = json_object_get(obj, "spec");
    if (is(rsrc, "", "pods")) {
        validate_containers(causes, spec, "spec");
    } else if (is(rsrc, "apps", "deployments") || is(rsrc, "apps", "replicasets") ||
               is(rsrc, "apps", "statefulsets") || is(rsrc, "apps", "daemonsets")) {
        validate_replicas(causes, spec, "spec.replicas");
        if (!json_object_get(spec, "selector"))
            add_cause(causes, "FieldValueRequired", "spec.selector", "Required value");
        validate_containers(causes, json_object_get(json_object_get(spec, "template"), "spec"),
                            "spec.template.spec");
    } else if (is(rsrc, "batch", "jobs")) {
        const json_t *ps = json_object_get(json_object_get(spec, "template"), "spec");
        const char *rp = json_string_value(json_object_get(ps, "restartPolicy"));
        if (rp && strcmp(rp, "Never") != 0 && strcmp(rp, "OnFailure") != 0)
            add_cause(causes, "FieldValueNotSupported", "spec.template.spec.restartPolicy",
                      "Unsupported value: \"%s\": supported values: \"OnFailure\", \"Never\"", rp);
        validate_containers(causes, ps, "spec.template.spec");
    } else if (is(rsrc, "", "services")) {
        api_service_validate(causes, obj, old);
    }
    if (is(rsrc, "", "configmaps") || is(rsrc, "", "secrets")) {
        validate_keys(causes, json_object_get(obj, "data"), "data");
        validate_keys(causes, json_object_get(obj, "binaryData"), "binaryData");
    }
    if ((is(rsrc, "", "configmaps") || is(rsrc, "", "secrets")) && old &&
        json_is_true(json_object_get(old, "immutable"))) {
        if (!json_equal(json_object_get(obj, "data"), json_object_get(old, "data")))
            add_cause(causes, "FieldValueForbidden", "data",
                      "Forbidden: field is immutable when `immutable` is set");
    }
    if (json_array_size(causes) == 0) {
        json_decref(causes);
        return NULL;
    }
    return causes;
}

/* ---- the Scale subresource ---- */

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
