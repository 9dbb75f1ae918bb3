/*
 * Service allocations: ClusterIPs from 10.43.0.0/16 and NodePorts from 30000-32767, decided
 * before the entry is built (so every replica stores the same values), against the services
 * the store holds.
 */
#include "api_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVICE_NET 0x0a2b0000u /* 10.43.0.0/16 */
#define SERVICE_MASK 0xffff0000u
#define FIRST_DYNAMIC 10        /* .1 is the kubernetes service */
#define NODEPORT_MIN 30000
#define NODEPORT_MAX 32767

struct used {
    uint8_t ips[65536 / 8];
    uint8_t ports[(NODEPORT_MAX - NODEPORT_MIN + 1) / 8 + 1];
    const char *self_ns, *self_name;
};

static void bit_set(uint8_t *bits, uint32_t i)
{
    bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

static bool bit_get(const uint8_t *bits, uint32_t i)
{
    return bits[i / 8] & (1u << (i % 8));
}

static int parse_ip(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (!s || inet_pton(AF_INET, s, &a) != 1)
        return KCP_EINVAL;
    *out = ntohl(a.s_addr);
    return 0;
}

static int used_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct used *u = ctx;
    const char *ns = api_meta_str(obj->doc, "namespace"), *name = api_meta_str(obj->doc, "name");
    if (ns && name && u->self_ns && !strcmp(ns, u->self_ns) && !strcmp(name, u->self_name))
        return 0;
    const json_t *spec = json_object_get(obj->doc, "spec");
    uint32_t ip;
    if (parse_ip(json_string_value(json_object_get(spec, "clusterIP")), &ip) == 0 &&
        (ip & SERVICE_MASK) == SERVICE_NET)
        bit_set(u->ips, ip & ~SERVICE_MASK);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "ports"), i, p) {
        json_int_t np = json_integer_value(json_object_get(p, "nodePort"));
        if (np >= NODEPORT_MIN && np <= NODEPORT_MAX)
            bit_set(u->ports, (uint32_t)(np - NODEPORT_MIN));
    }
    return 0;
}

int api_service_allocate(struct api_req *r, json_t *obj, const json_t *old, json_t *causes)
{
    json_t *spec = json_object_get(obj, "spec");
    const json_t *old_spec = old ? json_object_get(old, "spec") : NULL;
    const char *type = json_string_value(json_object_get(spec, "type")) ?: "ClusterIP";
    struct used *u = kcp_calloc(1, sizeof(*u));
    u->self_ns = api_meta_str(obj, "namespace");
    u->self_name = api_meta_str(obj, "name");
    struct kcp_buf prefix = KCP_BUF_INIT;
    struct kcp_store_list_result lr;
    kcp_store_key(&prefix, "", "services", NULL, NULL);
    kcp_store_list(r->api->store, prefix.data, prefix.len, 0, NULL, 0, 0, used_on_item, u, &lr);
    kcp_buf_free(&prefix);
    char msg[256];

    const char *ip = json_string_value(json_object_get(spec, "clusterIP"));
    const char *old_ip = old_spec ? json_string_value(json_object_get(old_spec, "clusterIP")) : NULL;
    if ((!ip || !*ip) && old_ip && *old_ip) {
        json_object_set_new(spec, "clusterIP", json_string(old_ip));
        ip = old_ip;
    }
    if (strcmp(type, "ExternalName") == 0) {
        /* no address */
    } else if (ip && strcmp(ip, "None") == 0) {
        json_object_set_new(spec, "clusterIPs", json_pack("[s]", "None"));
    } else if (ip && *ip && !(old_ip && !strcmp(ip, old_ip))) {
        uint32_t a;
        if (parse_ip(ip, &a) != 0 || (a & SERVICE_MASK) != SERVICE_NET) {
            snprintf(msg, sizeof(msg),
                     "Invalid value: [\"%s\"]: failed to allocate IP %s: the provided IP (%s) is "
                     "not in the valid range. The range of valid IPs is 10.43.0.0/16", ip, ip, ip);
            json_array_append_new(causes, json_pack("{s:s,s:s,s:s}", "reason", "FieldValueInvalid",
                                                    "message", msg, "field", "spec.clusterIPs"));
        } else if (bit_get(u->ips, a & ~SERVICE_MASK)) {
            snprintf(msg, sizeof(msg),
                     "Invalid value: [\"%s\"]: failed to allocate IP %s: provided IP is already "
                     "allocated", ip, ip);
            json_array_append_new(causes, json_pack("{s:s,s:s,s:s}", "reason", "FieldValueInvalid",
                                                    "message", msg, "field", "spec.clusterIPs"));
        } else {
            json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
        }
    } else if (!ip || !*ip) {
        uint32_t host = FIRST_DYNAMIC;
        while (host < 0xfffe && bit_get(u->ips, host))
            host++;
        char buf[32];
        uint32_t a = SERVICE_NET | host;
        snprintf(buf, sizeof(buf), "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
        json_object_set_new(spec, "clusterIP", json_string(buf));
        json_object_set_new(spec, "clusterIPs", json_pack("[s]", buf));
    } else {
        json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
    }

    if (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer")) {
        size_t i;
        json_t *p;
        uint32_t next = 0;
        json_array_foreach(json_object_get(spec, "ports"), i, p) {
            json_int_t np = json_integer_value(json_object_get(p, "nodePort"));
            json_int_t old_np = 0;
            if (old_spec)
                old_np = json_integer_value(
                    json_object_get(json_array_get(json_object_get(old_spec, "ports"), i), "nodePort"));
            if (np && np == old_np)
                continue;
            if (np) {
                char field[64];
                snprintf(field, sizeof(field), "spec.ports[%zu].nodePort", i);
                if (np < NODEPORT_MIN || np > NODEPORT_MAX) {
                    snprintf(msg, sizeof(msg), "Invalid value: %lld: provided port is not in the "
                             "valid range. The range of valid ports is 30000-32767", (long long)np);
                } else if (bit_get(u->ports, (uint32_t)(np - NODEPORT_MIN))) {
                    snprintf(msg, sizeof(msg), "Invalid value: %lld: provided port is already "
                             "allocated", (long long)np);
                } else {
                    bit_set(u->ports, (uint32_t)(np - NODEPORT_MIN));
                    continue;
                }
                json_array_append_new(causes, json_pack("{s:s,s:s,s:s}", "reason",
                                                        "FieldValueInvalid", "message", msg,
                                                        "field", field));
                continue;
            }
            while (next <= NODEPORT_MAX - NODEPORT_MIN && bit_get(u->ports, next))
                next++;
            if (next > NODEPORT_MAX - NODEPORT_MIN)
                break;
            bit_set(u->ports, next);
            json_object_set_new(p, "nodePort", json_integer(NODEPORT_MIN + next));
        }
    }
    free(u);
    return 0;
}
