/*
 * A Service's type-dependent fields: what an update keeps or drops when spec.type changes, and
 * the validation that goes with it. A Service is a union discriminated by spec.type, and
 * clients (kubectl edit, apply, merge patches) send back whatever the old type had; upstream's
 * registry infers what they meant, in three steps that this file repeats in its order: values
 * the client left out are kept (its "patchAllocatedValues"), clusterIP and clusterIPs are made
 * to agree ("normalizeClusterIPs"), then fields the new type has no use for are dropped when
 * the client did not change them ("dropTypeDependentFields"). Allocation (services.c) then sees
 * the final object: a value no longer there is released with the same entry.
 */
#include "services.h"

#include "meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_of(const json_t *svc)
{
    const char *t = json_string_value(json_object_get(json_object_get(svc, "spec"), "type"));
    return t && *t ? t : "ClusterIP";
}

/* An ExternalName Service is a DNS alias: it has no address of its own. */
static bool needs_ip(const json_t *svc)
{
    return strcmp(type_of(svc), "ExternalName") != 0;
}

static bool needs_node_ports(const json_t *svc)
{
    const char *t = type_of(svc);
    return !strcmp(t, "NodePort") || !strcmp(t, "LoadBalancer");
}

/* Whether traffic from outside the cluster can reach it, which externalTrafficPolicy is about. */
static bool externally_accessible(const json_t *svc)
{
    const char *t = type_of(svc);
    return !strcmp(t, "NodePort") || !strcmp(t, "LoadBalancer") ||
           (!strcmp(t, "ClusterIP") &&
            json_array_size(json_object_get(json_object_get(svc, "spec"), "externalIPs")) > 0);
}

/* A string field, absent and "" alike (Go's omitempty makes them one value). */
static const char *str_at(const json_t *spec, const char *key)
{
    const char *s = json_string_value(json_object_get(spec, key));
    return s ? s : "";
}

/* Two JSON values, absent and null alike (an optional field Go leaves nil). */
static bool same_value(const json_t *a, const json_t *b)
{
    if (json_is_null(a))
        a = NULL;
    if (json_is_null(b))
        b = NULL;
    return (!a && !b) || (a && b && json_equal(a, b));
}

/* Two string lists, absent and [] alike. */
static bool same_list(const json_t *a, const json_t *b)
{
    if (json_array_size(a) == 0 || json_array_size(b) == 0)
        return json_array_size(a) == json_array_size(b);
    return json_equal(a, b);
}

static json_int_t node_port(const json_t *port)
{
    return json_integer_value(json_object_get(port, "nodePort"));
}

/* Whether the ports of b hold no nodePort that a's do not: the client added none. */
static bool node_ports_within(const json_t *a_spec, const json_t *b_spec)
{
    size_t i, k;
    json_t *p, *q;
    json_array_foreach(json_object_get(b_spec, "ports"), i, p) {
        json_int_t v = node_port(p);
        bool found = v == 0;
        json_array_foreach(json_object_get(a_spec, "ports"), k, q)
            found = found || node_port(q) == v;
        if (!found)
            return false;
    }
    return true;
}

/* Values the client left out of an update are the old ones, for the fields both types use. */
static void keep_allocated(json_t *spec, const json_t *obj, const json_t *old)
{
    const json_t *os = json_object_get(old, "spec");
    if (needs_ip(old) && needs_ip(obj)) {
        if (!*str_at(spec, "clusterIP") && *str_at(os, "clusterIP"))
            json_object_set(spec, "clusterIP", json_object_get(os, "clusterIP"));
        if (json_array_size(json_object_get(spec, "clusterIPs")) == 0 &&
            json_array_size(json_object_get(os, "clusterIPs")) > 0)
            json_object_set_new(spec, "clusterIPs", json_deep_copy(json_object_get(os, "clusterIPs")));
    }
    if (!needs_node_ports(old) || !needs_node_ports(obj))
        return;
    /* A port without a nodePort gets the one its namesake had, unless another port of the
     * new spec holds that value already (then it is the client's to keep there). */
    size_t i, k, j;
    json_t *p, *q, *x;
    json_array_foreach(json_object_get(spec, "ports"), i, p) {
        if (node_port(p) != 0)
            continue;
        json_array_foreach(json_object_get(os, "ports"), k, q) {
            json_int_t v = node_port(q);
            if (v == 0 || strcmp(str_at(q, "name"), str_at(p, "name")) != 0)
                continue;
            bool used = false;
            json_array_foreach(json_object_get(spec, "ports"), j, x)
                used = used || node_port(x) == v;
            if (!used)
                json_object_set_new(p, "nodePort", json_integer(v));
            break;
        }
    }
}

/* Makes clusterIPs follow clusterIP when the client set only the singular field. */
static void normalize_ips(json_t *spec, const json_t *old)
{
    const char *ip = str_at(spec, "clusterIP");
    const json_t *ips = json_object_get(spec, "clusterIPs");
    if (!old) {
        if (*ip && json_array_size(ips) == 0)
            json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
        return;
    }
    const json_t *os = json_object_get(old, "spec");
    const char *old_ip = str_at(os, "clusterIP");
    const json_t *old_ips = json_object_get(os, "clusterIPs");
    /* An older client patching another field sends clusterIP but not clusterIPs. */
    if (json_array_size(old_ips) > 0 && json_array_size(ips) == 0 && !strcmp(old_ip, ip)) {
        json_object_set_new(spec, "clusterIPs", json_deep_copy(old_ips));
        ips = json_object_get(spec, "clusterIPs");
    }
    if (!strcmp(old_ip, ip) || !same_list(old_ips, ips))
        return; /* a plural the client changed is the client's, for validation to judge */
    if (*old_ip && !*ip)
        json_object_del(spec, "clusterIPs"); /* clearing clusterIP clears both */
    else
        json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
}

/* Drops what the new type has no use for, when the client left it as the old type had it. */
static void drop_type_dependent(json_t *obj, const json_t *old)
{
    json_t *spec = json_object_get(obj, "spec");
    const json_t *os = json_object_get(old, "spec");
    if (needs_ip(old) && !needs_ip(obj)) {
        if (!strcmp(str_at(os, "clusterIP"), str_at(spec, "clusterIP")) &&
            same_list(json_object_get(os, "clusterIPs"), json_object_get(spec, "clusterIPs"))) {
            json_object_del(spec, "clusterIP");
            json_object_del(spec, "clusterIPs");
        }
        if (same_list(json_object_get(os, "ipFamilies"), json_object_get(spec, "ipFamilies")))
            json_object_del(spec, "ipFamilies");
        if (same_value(json_object_get(os, "ipFamilyPolicy"), json_object_get(spec, "ipFamilyPolicy")))
            json_object_del(spec, "ipFamilyPolicy");
    }
    if (needs_node_ports(old) && !needs_node_ports(obj) && node_ports_within(os, spec)) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(spec, "ports"), i, p)
            json_object_del(p, "nodePort");
    }
    bool was_lb = !strcmp(type_of(old), "LoadBalancer"), is_lb = !strcmp(type_of(obj), "LoadBalancer");
    if (was_lb && !is_lb) {
        const json_t *a = json_object_get(os, "allocateLoadBalancerNodePorts");
        const json_t *b = json_object_get(spec, "allocateLoadBalancerNodePorts");
        if (json_is_boolean(a) && json_is_boolean(b) && json_equal(a, b))
            json_object_del(spec, "allocateLoadBalancerNodePorts");
        if (same_value(json_object_get(os, "loadBalancerClass"), json_object_get(spec, "loadBalancerClass")))
            json_object_del(spec, "loadBalancerClass");
        if (json_integer_value(json_object_get(os, "healthCheckNodePort")) ==
            json_integer_value(json_object_get(spec, "healthCheckNodePort")))
            json_object_del(spec, "healthCheckNodePort");
    }
    if (externally_accessible(old) && !externally_accessible(obj) &&
        !strcmp(str_at(os, "externalTrafficPolicy"), str_at(spec, "externalTrafficPolicy")))
        json_object_del(spec, "externalTrafficPolicy");
    /* A load balancer's status means nothing for another type. */
    if (!is_lb && json_is_object(json_object_get(obj, "status")))
        json_object_set_new(json_object_get(obj, "status"), "loadBalancer", json_object());
}

void api_service_prepare(json_t *obj, const json_t *old)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    if (old)
        keep_allocated(spec, obj, old);
    normalize_ips(spec, old);
    if (old)
        drop_type_dependent(obj, old);
    /* Empty is absent for these (Go's omitempty), as upstream stores and answers them. */
    if (json_is_string(json_object_get(spec, "clusterIP")) && !*str_at(spec, "clusterIP"))
        json_object_del(spec, "clusterIP");
    if (json_is_array(json_object_get(spec, "clusterIPs")) &&
        json_array_size(json_object_get(spec, "clusterIPs")) == 0)
        json_object_del(spec, "clusterIPs");
}

/* ---- validation ---- */

static void cause(json_t *causes, const char *reason, const char *field, const char *msg)
{
    json_array_append_new(causes, json_pack("{s:s, s:s, s:s}", "reason", reason, "message", msg,
                                            "field", field));
}

/* A string list as upstream's messages print a bad value: JSON. */
static char *list_text(const json_t *list)
{
    return json_dumps(json_array_size(list) ? list : json_null(), JSON_COMPACT);
}

/* clusterIP and clusterIPs say one thing: the plural starts with the singular. */
static void check_ips_agree(json_t *causes, const json_t *spec)
{
    const json_t *ips = json_object_get(spec, "clusterIPs");
    const char *first = json_string_value(json_array_get(ips, 0));
    const char *ip = str_at(spec, "clusterIP");
    char *text = list_text(ips), msg[512];
    if (*ip && !first)
        cause(causes, "FieldValueRequired", "spec.clusterIPs", "Required value");
    else if (*ip && strcmp(first, ip) != 0) {
        snprintf(msg, sizeof(msg), "Invalid value: %s: first value must match `clusterIP`", text);
        cause(causes, "FieldValueInvalid", "spec.clusterIPs", msg);
    } else if (!*ip && first) {
        snprintf(msg, sizeof(msg),
                 "Invalid value: %s: must be empty when `clusterIP` is not specified", text);
        cause(causes, "FieldValueInvalid", "spec.clusterIPs", msg);
    }
    free(text);
}

/* An address may not change, except from or to ExternalName (the caller's test) and between
 * headless ones. One family here: the first value is the only one to compare. */
static void check_ips_kept(json_t *causes, const json_t *spec, const json_t *os)
{
    const json_t *ips = json_object_get(spec, "clusterIPs");
    const char *first = json_string_value(json_array_get(ips, 0));
    const char *old_first = json_string_value(json_array_get(json_object_get(os, "clusterIPs"), 0));
    if (!old_first || !first || !strcmp(first, old_first))
        return; /* an unset one is what check_ips_agree reports */
    char *text = list_text(ips), msg[512];
    snprintf(msg, sizeof(msg), "Invalid value: %s: may not change once set", text);
    cause(causes, "FieldValueInvalid", "spec.clusterIPs[0]", msg);
    free(text);
}

static void check_external_name(json_t *causes, const json_t *spec)
{
    const char *forbidden = "Forbidden: may not be set for ExternalName services";
    if (json_array_size(json_object_get(spec, "clusterIPs")) > 0)
        cause(causes, "FieldValueForbidden", "spec.clusterIPs", forbidden);
    if (json_array_size(json_object_get(spec, "ipFamilies")) > 0)
        cause(causes, "FieldValueForbidden", "spec.ipFamilies", forbidden);
    const json_t *policy = json_object_get(spec, "ipFamilyPolicy");
    if (policy && !json_is_null(policy))
        cause(causes, "FieldValueForbidden", "spec.ipFamilyPolicy", forbidden);
    /* The CNAME may end in a dot, which marks it fully qualified. */
    const char *name = str_at(spec, "externalName");
    size_t len = strlen(name);
    char *cname = kcp_strndup(name, len && name[len - 1] == '.' ? len - 1 : len);
    if (!*cname) {
        cause(causes, "FieldValueRequired", "spec.externalName", "Required value");
    } else {
        char *why = api_meta_check_dns1123_subdomain(cname);
        if (why) {
            char *msg = kcp_sprintf("Invalid value: \"%s\": %s", cname, why);
            cause(causes, "FieldValueInvalid", "spec.externalName", msg);
            free(msg);
            free(why);
        }
    }
    free(cname);
}

void api_service_validate(json_t *causes, const json_t *obj, const json_t *old)
{
    const json_t *spec = json_object_get(obj, "spec");
    const char *type = type_of(obj);
    if (!strcmp(type, "ClusterIP")) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(spec, "ports"), i, p) {
            if (node_port(p) == 0)
                continue;
            char field[64];
            snprintf(field, sizeof(field), "spec.ports[%zu].nodePort", i);
            cause(causes, "FieldValueForbidden", field,
                  "Forbidden: may not be used when `type` is 'ClusterIP'");
        }
    }
    if (!strcmp(type, "ExternalName")) {
        check_external_name(causes, spec);
        return;
    }
    check_ips_agree(causes, spec);
    if (old && needs_ip(old))
        check_ips_kept(causes, spec, json_object_get(old, "spec"));
}
