/*
 * The admission hooks proto/ names (setdefault-fn=, default-fn=, check-fn=; declared in the
 * generated admit_hooks.h): defaults and checks that are logic rather than a value, each as
 * upstream 1.32's defaulting functions, registry strategies and validation do it.
 */
#include "admit.h"
#include "admit_hooks.h"

#include <kcp/base.h>

#include <ctype.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const json_t *get(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(o, k1);
    return k2 ? json_object_get(v, k2) : v;
}

static bool absent(const json_t *v)
{
    return !v || json_is_null(v);
}

/* f is an object of the message named name in its package ("Container", "PodSpec"). */
static bool msg_is(const struct api_admit_frame *f, const char *name)
{
    if (!f)
        return false;
    size_t n = strlen(f->msg->name), k = strlen(name);
    return n > k && f->msg->name[n - k - 1] == '.' && strcmp(f->msg->name + n - k, name) == 0;
}

static json_t *child(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_object(v)) {
        v = json_object();
        json_object_set_new(o, key, v);
    }
    return v;
}

/* ---- containers and pods ---- */

bool api_default_image_pull_policy(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    (void)c;
    const char *p = json_string_value(json_object_get(obj, field));
    if (p && *p)
        return false;
    /* Always for :latest or no tag (a digest pins the image), else IfNotPresent. */
    const char *image = json_string_value(json_object_get(obj, "image"));
    bool latest = false;
    if (image && *image) {
        const char *slash = strrchr(image, '/');
        const char *colon = strrchr(slash ? slash : image, ':');
        latest = !strchr(image, '@') && (!colon || strcmp(colon, ":latest") == 0);
    }
    json_object_set_new(obj, field, json_string(latest ? "Always" : "IfNotPresent"));
    return true;
}

/* The ports of a Pod's containers on the host network are host ports (not in templates). */
bool api_default_host_network_port(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    const struct api_admit_frame *ctr = api_admit_up(c, 1), *spec = api_admit_up(c, 2);
    json_t *port = json_object_get(obj, "containerPort");
    if (!ctr || !spec || !msg_is(ctr, "Container") || !msg_is(spec, "PodSpec") ||
        !json_is_true(json_object_get(spec->obj, "hostNetwork")) || !json_is_integer(port) ||
        json_integer_value(json_object_get(obj, field)) != 0)
        return false;
    json_object_set(obj, field, port);
    return true;
}

/* A Pod's container with limits but no request for a resource requests its limit. */
bool api_default_requests_from_limits(const struct api_admit_ctx *c, json_t *obj,
                                      const char *field)
{
    const struct api_admit_frame *ctr = api_admit_up(c, 1);
    const json_t *limits = json_object_get(obj, "limits");
    if (!ctr || !msg_is(ctr, "Container") || json_object_size(limits) == 0)
        return false;
    bool changed = false;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)limits, k, v) {
        if (json_object_get(json_object_get(obj, field), k))
            continue;
        json_object_set(child(obj, field), k, v);
        changed = true;
    }
    return changed;
}

/* Saturating arithmetic on nano-units: sums of huge quantities stay ordered, never wrap. */
#define QTY_MAX ((__int128)1 << 120)

static __int128 qty_mul(__int128 v, __int128 m)
{
    return v > QTY_MAX / m ? QTY_MAX : v * m;
}

/* A resource.Quantity ("100m", "1Gi", "1.5", "1e3") in nano-units; false if it does not parse. */
static bool quantity(const char *s, __int128 *out)
{
    const char *p = s;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    __int128 whole = 0, frac = 0;
    int digits = 0, fd = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++)
        whole = qty_mul(whole, 10) + (*p - '0');
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (fd < 9)
                frac = frac * 10 + (*p - '0'), fd++;
    if (!digits)
        return false;
    for (; fd < 9; fd++)
        frac *= 10;
    __int128 v = qty_mul(whole, 1000000000) + frac;
    static const struct { const char *sfx; int exp10, exp2; } sfx[] = {
        {"", 0, 0}, {"n", -9, 0}, {"u", -6, 0}, {"m", -3, 0}, {"k", 3, 0}, {"M", 6, 0},
        {"G", 9, 0}, {"T", 12, 0}, {"P", 15, 0}, {"E", 18, 0}, {"Ki", 0, 10}, {"Mi", 0, 20},
        {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60}};
    int e10 = 0, e2 = 0;
    bool known = false;
    if ((*p == 'e' || *p == 'E') && p[1]) {
        char *end;
        e10 = (int)strtol(p + 1, &end, 10);
        known = *end == '\0' && end != p + 1;
    }
    for (size_t i = 0; !known && i < sizeof(sfx) / sizeof(sfx[0]); i++)
        if (strcmp(p, sfx[i].sfx) == 0)
            e10 = sfx[i].exp10, e2 = sfx[i].exp2, known = true;
    if (!known)
        return false;
    for (; e10 > 0; e10--)
        v = qty_mul(v, 10);
    for (; e10 < 0; e10++)
        v /= 10;
    v = qty_mul(v, (__int128)1 << e2);
    *out = neg ? -v : v;
    return true;
}

/* Sums the positive cpu and memory quantities of one list into sums[2]; *both (if given) is
 * cleared unless both are there. */
static void qos_add(const json_t *list, __int128 sums[2], bool *both)
{
    static const char *const names[] = {"cpu", "memory"};
    int found = 0;
    for (int i = 0; i < 2; i++) {
        __int128 q;
        const char *s = json_string_value(json_object_get(list, names[i]));
        if (s && quantity(s, &q) && q > 0) {
            sums[i] = sums[i] > QTY_MAX - q ? QTY_MAX : sums[i] + q;
            found |= 1 << i;
        }
    }
    if (both && found != 3)
        *both = false;
}

/* The QoS class the scheduler and kubelet read, from the (defaulted) containers' resources. */
bool api_default_pod_qos_class(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    const char *q = json_string_value(json_object_get(obj, field));
    if (q && *q)
        return false;
    const json_t *spec = json_object_get(c->root, "spec");
    __int128 req[2] = {0, 0}, lim[2] = {0, 0};
    bool guaranteed = true;
    static const char *const lists[] = {"containers", "initContainers"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *ctr;
        json_array_foreach(json_object_get(spec, lists[l]), i, ctr) {
            const json_t *res = json_object_get(ctr, "resources");
            qos_add(json_object_get(res, "requests"), req, NULL);
            qos_add(json_object_get(res, "limits"), lim, &guaranteed);
        }
    }
    const char *cls = "Burstable";
    if (req[0] == 0 && req[1] == 0 && lim[0] == 0 && lim[1] == 0)
        cls = "BestEffort";
    else if (guaranteed && req[0] == lim[0] && req[1] == lim[1])
        cls = "Guaranteed";
    json_object_set_new(obj, field, json_string(cls));
    return true;
}

/* A volume without a source is an emptyDir. */
bool api_default_volume_empty_dir(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    (void)c, (void)field;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
        if (strcmp(k, "name") != 0 && !json_is_null(v))
            return false;
    json_object_set_new(obj, "emptyDir", json_object());
    return true;
}

/* Container limits: default from max, defaultRequest from default, then from min. */
bool api_default_limit_range_item(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    (void)c, (void)field;
    if (strcmp(json_string_value(json_object_get(obj, "type")) ?: "", "Container") != 0)
        return false;
    static const char *const steps[][2] = {{"max", "default"}, {"default", "defaultRequest"},
                                           {"min", "defaultRequest"}};
    bool changed = false;
    for (size_t s = 0; s < 3; s++) {
        const json_t *from = json_object_get(obj, steps[s][0]);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)from, k, v) {
            if (json_object_get(json_object_get(obj, steps[s][1]), k))
                continue;
            json_object_set(child(obj, steps[s][1]), k, v);
            changed = true;
        }
    }
    return changed;
}

/* ---- services, namespaces, secrets ---- */

bool api_default_session_affinity_config(const struct api_admit_ctx *c, json_t *obj,
                                         const char *field)
{
    (void)c;
    if (strcmp(json_string_value(json_object_get(obj, "sessionAffinity")) ?: "", "ClientIP") != 0)
        return false;
    json_t *ip = child(child(obj, field), "clientIP");
    if (!absent(json_object_get(ip, "timeoutSeconds")))
        return false;
    /* Three hours, upstream's default stickiness. */
    json_object_set_new(ip, "timeoutSeconds", json_integer(10800));
    return true;
}

bool api_default_namespace_name_label(const struct api_admit_ctx *c, json_t *obj,
                                      const char *field)
{
    (void)c, (void)field;
    json_t *meta = json_object_get(obj, "metadata");
    const json_t *name = json_object_get(meta, "name");
    if (!json_is_string(name))
        return false;
    /* Always the namespace's own name, so selectors can pick namespaces by name. */
    json_object_set(child(meta, "labels"), "kubernetes.io/metadata.name", (json_t *)name);
    /* Only metadata changed: the namespace's own members need no reordering. */
    return false;
}

/* stringData is write-only: merged into data (base64), never stored. */
bool api_default_secret_string_data(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    (void)c, (void)field;
    json_t *sd = json_object_get(obj, "stringData");
    if (!sd)
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(json_is_object(sd) ? sd : NULL, k, v) {
        const char *text = json_string_value(v) ?: "";
        size_t n = 0, len = strlen(text);
        mbedtls_base64_encode(NULL, 0, &n, (const unsigned char *)text, len);
        unsigned char *b64 = kcp_malloc(n + 1);
        mbedtls_base64_encode(b64, n + 1, &n, (const unsigned char *)text, len);
        b64[n] = '\0';
        json_object_set_new(child(obj, "data"), k, json_string((char *)b64));
        free(b64);
    }
    json_object_del(obj, "stringData");
    return true;
}

/* ---- workloads ---- */

/* A template's labels label the controller and select its pods when the user gave neither. */
bool api_default_rc_selector_labels(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    (void)c, (void)field;
    json_t *spec = json_object_get(obj, "spec");
    const json_t *labels = get(get(spec, "template", "metadata"), "labels", NULL);
    if (!json_is_object(labels))
        return false;
    bool changed = false;
    if (json_object_size(json_object_get(spec, "selector")) == 0) {
        json_object_set_new(spec, "selector", json_deep_copy(labels));
        changed = true;
    }
    json_t *meta = json_object_get(obj, "metadata");
    if (json_object_size(json_object_get(meta, "labels")) == 0 && json_object_size(labels)) {
        json_object_set_new(meta, "labels", json_deep_copy(labels));
        changed = true;
    }
    return changed;
}

bool api_default_job_labels(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    (void)c, (void)field;
    const json_t *labels = get(get(json_object_get(obj, "spec"), "template", "metadata"),
                               "labels", NULL);
    json_t *meta = json_object_get(obj, "metadata");
    if (json_object_size(labels) == 0 || json_object_size(json_object_get(meta, "labels")))
        return false;
    json_object_set_new(meta, "labels", json_deep_copy(labels));
    return true;
}

/* Unset parallelism is 1, and so are completions when neither is set (one pod, once). */
bool api_default_job_parallelism(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    (void)c;
    if (!absent(json_object_get(obj, field)))
        return false;
    if (absent(json_object_get(obj, "completions")))
        json_object_set_new(obj, "completions", json_integer(1));
    json_object_set_new(obj, field, json_integer(1));
    return true;
}

/* 6 retries, or unlimited when failures are counted per index. */
bool api_default_job_backoff_limit(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    (void)c;
    if (!absent(json_object_get(obj, field)))
        return false;
    bool per_index = !absent(json_object_get(obj, "backoffLimitPerIndex"));
    json_object_set_new(obj, field, json_integer(per_index ? 2147483647 : 6));
    return true;
}

bool api_default_job_pod_replacement_policy(const struct api_admit_ctx *c, json_t *obj,
                                            const char *field)
{
    (void)c;
    if (!absent(json_object_get(obj, field)))
        return false;
    /* A pod failure policy needs the failed pod gone before it judges the replacement. */
    bool policy = !absent(json_object_get(obj, "podFailurePolicy"));
    json_object_set_new(obj, field, json_string(policy ? "Failed" : "TerminatingOrFailed"));
    return true;
}

void api_check_job_restart_policy(const struct api_admit_ctx *c, const json_t *obj,
                                  const json_t *old, const char *field, const char *path,
                                  json_t *causes)
{
    (void)c, (void)old;
    const char *rp = json_string_value(json_object_get(obj, field)) ?: "";
    /* Always is what an unset policy defaults to: upstream reports it as unset. */
    if (!*rp || strcmp(rp, "Always") == 0)
        api_admit_cause(causes, "FieldValueRequired", path,
                        "Required value: valid values: \"OnFailure\", \"Never\"");
    else if (strcmp(rp, "OnFailure") != 0 && strcmp(rp, "Never") != 0)
        api_admit_cause(causes, "FieldValueNotSupported", path,
                        "Unsupported value: \"%s\": supported values: \"OnFailure\", \"Never\"",
                        rp);
}

/* ---- other groups ---- */

bool api_default_network_policy_types(const struct api_admit_ctx *c, json_t *obj,
                                      const char *field)
{
    (void)c;
    if (json_array_size(json_object_get(obj, field)))
        return false;
    /* Every policy governs ingress; egress only when it has egress rules. */
    json_t *types = json_pack("[s]", "Ingress");
    if (json_array_size(json_object_get(obj, "egress")))
        json_array_append_new(types, json_string("Egress"));
    json_object_set_new(obj, field, types);
    return true;
}

bool api_default_rbac_subject_api_group(const struct api_admit_ctx *c, json_t *obj,
                                        const char *field)
{
    (void)c;
    const char *kind = json_string_value(json_object_get(obj, "kind")) ?: "";
    const char *g = json_string_value(json_object_get(obj, field));
    if ((g && *g) || (strcmp(kind, "User") != 0 && strcmp(kind, "Group") != 0))
        return false;
    json_object_set_new(obj, field, json_string("rbac.authorization.k8s.io"));
    return true;
}

bool api_default_crd_singular(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    (void)c;
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *s = json_string_value(json_object_get(obj, field));
    if ((s && *s) || !kind || !*kind)
        return false;
    char *lower = kcp_strdup(kind);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    json_object_set_new(obj, field, json_string(lower));
    free(lower);
    return true;
}

bool api_default_crd_list_kind(const struct api_admit_ctx *c, json_t *obj, const char *field)
{
    (void)c;
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *s = json_string_value(json_object_get(obj, field));
    if ((s && *s) || !kind || !*kind)
        return false;
    char *list = kcp_sprintf("%sList", kind);
    json_object_set_new(obj, field, json_string(list));
    free(list);
    return true;
}
