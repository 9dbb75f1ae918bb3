/*
 * Service allocations: ClusterIPs from 10.43.0.0/16 and NodePorts from 30000-32767, decided
 * before the entry is built (so every replica stores the same values).
 *
 * Two writes can race for one value. On one server, what a write in flight allocated is
 * reserved in memory until its proposal returns. Across servers (each allocates from its own
 * committed state) every allocated value also has a key in the store, /core/serviceips/_/<ip>
 * and /core/servicenodeports/_/<port>, put in the Service's own atomic entry with a "must not
 * exist" precondition, so that apply, identical on every replica, lets exactly one of two such
 * entries through. The other is proposed again with other values, or answered 422 when the
 * client asked for the value. Deleting a Service, or changing its values, deletes the keys in
 * the same entry.
 *
 * Happy path: api_service_allocate (reserve) -> api_propose -> api_service_entry (key ops,
 * atomic) -> applied -> api_service_on_done (release) -> r->cont.
 * Failure modes: a key op failed at apply -> allocate again and propose again (at most
 * SVC_MAX_ATTEMPTS times, then 500), or 422 for a requested value; the request ends before
 * its proposal returns -> api_service_forget (release). A key that no committed Service
 * explains (stale: left by a path that bypassed this file) is taken over with a revision
 * precondition, so it cannot block its value for ever.
 */
#include "services.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVICE_NET 0x0a2b0000u /* 10.43.0.0/16 */
#define SERVICE_MASK 0xffff0000u
#define FIRST_DYNAMIC 10        /* .1 is the kubernetes service */
#define LAST_HOST 0xfffeu       /* .255.255 is the broadcast address */
#define NODEPORT_MIN 30000
#define NODEPORT_MAX 32767
#define NPORTS (NODEPORT_MAX - NODEPORT_MIN + 1)
/* Each failed attempt means another server's write got the value: progress, so this only
 * bounds a pathological storm. */
#define SVC_MAX_ATTEMPTS 32

/* One value of a Service: its ClusterIP or one of its NodePorts. */
struct svc_value {
    bool port;
    uint32_t v;     /* the IP (host order) or the port */
    bool requested; /* asked for by the client: taken means 422, not another value */
    int index;      /* spec.ports[index], for a port */
};

/* An allocation op of an entry, beside the Service's own op. */
struct svc_op {
    char *key;
    char *value; /* NULL: DELETE */
    enum kcp_store_precond precond;
    uint64_t revision;
    int val; /* the write's new value it stands for (index into vals), or -1 */
};

/* What one request allocated and proposed. */
struct svc_write {
    struct api_req *r;
    struct kcp_api *api;
    struct svc_write *next;
    struct svc_value *vals; /* new values: reserved while `reserved` */
    size_t nvals;
    bool reserved;
    /* The last proposal, to make it again. */
    char *verb, *key;
    size_t key_len;
    json_t *obj; /* NULL: a delete */
    enum kcp_store_precond precond;
    uint64_t revision;
    struct svc_op *xops;
    size_t nx;
    struct kcp_store_op *ops; /* the entry's: the Service's op, then the xops */
    int attempts;
    const char *full; /* "serviceIP" or "nodePort": the range found with no value free */
};

/*
 * The writes in flight, of every API on the loop (a process has one, tests may have more):
 * few at a time, searched linearly. Kept here, keyed by request, so that this file alone owns
 * the allocation state.
 */
static struct svc_write *writes;

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

static void ip_text(char out[16], uint32_t a)
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

/* ---- the state of a request ---- */

static struct svc_write *write_find(struct api_req *r, bool create)
{
    for (struct svc_write *w = writes; w; w = w->next)
        if (w->r == r)
            return w;
    if (!create)
        return NULL;
    struct svc_write *w = kcp_calloc(1, sizeof(*w));
    w->r = r;
    w->api = r->api;
    w->next = writes;
    writes = w;
    return w;
}

static void xops_clear(struct svc_write *w)
{
    for (size_t i = 0; i < w->nx; i++) {
        free(w->xops[i].key);
        free(w->xops[i].value);
    }
    free(w->xops);
    free(w->ops);
    w->xops = NULL;
    w->ops = NULL;
    w->nx = 0;
}

void api_service_forget(struct api_req *r)
{
    for (struct svc_write **p = &writes; *p; p = &(*p)->next) {
        struct svc_write *w = *p;
        if (w->r != r)
            continue;
        *p = w->next;
        xops_clear(w);
        free(w->vals);
        free(w->verb);
        free(w->key);
        json_decref(w->obj);
        free(w);
        return;
    }
}

static void write_add_value(struct svc_write *w, bool port, uint32_t v, bool requested, int index)
{
    w->vals = kcp_realloc(w->vals, (w->nvals + 1) * sizeof(*w->vals));
    w->vals[w->nvals++] = (struct svc_value){port, v, requested, index};
}

/* ---- what is taken ---- */

struct used {
    uint8_t ips[65536 / 8];
    uint8_t ports[NPORTS / 8 + 1];
    const char *self_ns, *self_name;
};

static size_t values_of(struct svc_value **out, const json_t *svc);
static bool values_have(const struct svc_value *vals, size_t n, const struct svc_value *v);

static int used_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct used *u = ctx;
    const char *ns = api_meta_str(obj->doc, "namespace"), *name = api_meta_str(obj->doc, "name");
    if (ns && name && u->self_ns && !strcmp(ns, u->self_ns) && !strcmp(name, u->self_name))
        return 0;
    struct svc_value *vals = NULL;
    size_t n = values_of(&vals, obj->doc);
    for (size_t i = 0; i < n; i++) {
        if (vals[i].port)
            bit_set(u->ports, vals[i].v - NODEPORT_MIN);
        else
            bit_set(u->ips, vals[i].v & ~SERVICE_MASK);
    }
    free(vals);
    return 0;
}

/* The committed services' values (but self's) and those other writes in flight reserved. */
static struct used *used_new(struct api_req *r, const char *self_ns, const char *self_name)
{
    struct used *u = kcp_calloc(1, sizeof(*u));
    u->self_ns = self_ns;
    u->self_name = self_name;
    struct kcp_buf prefix = KCP_BUF_INIT;
    struct kcp_store_list_result lr;
    kcp_store_key(&prefix, "", "services", NULL, NULL);
    kcp_store_list(r->api->store, prefix.data, prefix.len, 0, NULL, 0, 0, used_on_item, u, &lr);
    kcp_buf_free(&prefix);
    for (const struct svc_write *w = writes; w; w = w->next) {
        if (w->r == r || w->api != r->api || !w->reserved)
            continue;
        for (size_t i = 0; i < w->nvals; i++) {
            if (w->vals[i].port)
                bit_set(u->ports, w->vals[i].v - NODEPORT_MIN);
            else
                bit_set(u->ips, w->vals[i].v & ~SERVICE_MASK);
        }
    }
    return u;
}

static void add_cause(json_t *causes, const char *reason, const char *field, const char *msg)
{
    json_array_append_new(causes, json_pack("{s:s,s:s,s:s}", "reason", reason, "message", msg,
                                            "field", field));
}

static void ip_taken_message(char *out, size_t cap, const char *ip)
{
    snprintf(out, cap,
             "Invalid value: [\"%s\"]: failed to allocate IP %s: provided IP is already allocated",
             ip, ip);
}

static void port_taken_message(char *out, size_t cap, uint32_t port)
{
    snprintf(out, cap, "Invalid value: %u: provided port is already allocated", port);
}

/* ---- allocation ---- */

/* The first value in [lo, hi) whose bit is clear, searching from start and wrapping; hi if none. */
static uint32_t pick_free(const uint8_t *bits, uint32_t lo, uint32_t hi, uint32_t start)
{
    for (uint32_t i = 0; i < hi - lo; i++) {
        uint32_t v = lo + (start - lo + i) % (hi - lo);
        if (!bit_get(bits, v))
            return v;
    }
    return hi;
}

/*
 * Where a search for a free value starts: the lowest one (predictable numbers), except when
 * this write lost its values to another server's writes, which searched from the lowest too:
 * then anywhere, so that servers racing for the same values stop meeting on each one in turn.
 */
static uint32_t start_at(struct api_req *r, const struct svc_write *w, uint32_t lo, uint32_t hi)
{
    return w->attempts ? (uint32_t)kcp_rng_range(&r->api->loop->rng, lo, hi) : lo;
}

static bool write_has(const struct svc_write *w, bool port, uint32_t v)
{
    for (size_t i = 0; i < w->nvals; i++)
        if (w->vals[i].port == port && w->vals[i].v == v)
            return true;
    return false;
}

/* The ClusterIP: the client's, checked and reserved, or the first free one. */
static int allocate_ip(struct api_req *r, struct svc_write *w, const struct used *u, json_t *spec,
                       const char *old_ip, json_t *causes)
{
    char msg[256];
    const char *ip = json_string_value(json_object_get(spec, "clusterIP"));
    uint32_t a;
    bool parsed = ip && parse_ip(ip, &a) == 0;
    if (ip && strcmp(ip, "None") == 0) {
        json_object_set_new(spec, "clusterIPs", json_pack("[s]", "None"));
    } else if (ip && *ip && old_ip && !strcmp(ip, old_ip)) {
        /* held already */
    } else if (ip && *ip) {
        if (!parsed || (a & SERVICE_MASK) != SERVICE_NET) {
            snprintf(msg, sizeof(msg),
                     "Invalid value: [\"%s\"]: failed to allocate IP %s: the provided IP (%s) is "
                     "not in the valid range. The range of valid IPs is 10.43.0.0/16", ip, ip, ip);
            add_cause(causes, "FieldValueInvalid", "spec.clusterIPs", msg);
        } else if (bit_get(u->ips, a & ~SERVICE_MASK)) {
            ip_taken_message(msg, sizeof(msg), ip);
            add_cause(causes, "FieldValueInvalid", "spec.clusterIPs", msg);
        } else {
            write_add_value(w, false, a, true, 0);
            json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
        }
    } else {
        uint32_t host = pick_free(u->ips, FIRST_DYNAMIC, LAST_HOST + 1,
                                  start_at(r, w, FIRST_DYNAMIC, LAST_HOST + 1));
        if (host > LAST_HOST) {
            w->full = "serviceIP";
            return KCP_EINTERNAL;
        }
        char buf[16];
        ip_text(buf, SERVICE_NET | host);
        write_add_value(w, false, SERVICE_NET | host, false, 0);
        json_object_set_new(spec, "clusterIP", json_string(buf));
        json_object_set_new(spec, "clusterIPs", json_pack("[s]", buf));
    }
    return 0;
}

/* The nodePorts: the client's (one value may serve several ports), or the next free ones. */
static int allocate_ports(struct api_req *r, struct svc_write *w, struct used *u, json_t *spec,
                          const struct svc_value *ov, size_t no, json_t *causes)
{
    char msg[256];
    size_t i;
    json_t *p;
    uint32_t next = start_at(r, w, 0, NPORTS);
    json_array_foreach(json_object_get(spec, "ports"), i, p) {
        json_int_t np = json_integer_value(json_object_get(p, "nodePort"));
        /* Held already, or asked for by an earlier port of this Service too. */
        if (np >= NODEPORT_MIN && np <= NODEPORT_MAX &&
            (values_have(ov, no, &(struct svc_value){.port = true, .v = (uint32_t)np}) ||
             write_has(w, true, (uint32_t)np)))
            continue;
        if (np) {
            char field[64];
            snprintf(field, sizeof(field), "spec.ports[%zu].nodePort", i);
            if (np < NODEPORT_MIN || np > NODEPORT_MAX) {
                snprintf(msg, sizeof(msg), "Invalid value: %lld: provided port is not in the "
                         "valid range. The range of valid ports is 30000-32767", (long long)np);
                add_cause(causes, "FieldValueInvalid", field, msg);
            } else if (bit_get(u->ports, (uint32_t)(np - NODEPORT_MIN))) {
                port_taken_message(msg, sizeof(msg), (uint32_t)np);
                add_cause(causes, "FieldValueInvalid", field, msg);
            } else {
                bit_set(u->ports, (uint32_t)(np - NODEPORT_MIN));
                write_add_value(w, true, (uint32_t)np, true, (int)i);
            }
            continue;
        }
        next = pick_free(u->ports, 0, NPORTS, next);
        if (next >= NPORTS) {
            w->full = "nodePort";
            return KCP_EINTERNAL;
        }
        bit_set(u->ports, next);
        write_add_value(w, true, NODEPORT_MIN + next, false, (int)i);
        json_object_set_new(p, "nodePort", json_integer(NODEPORT_MIN + next));
    }
    return 0;
}

int api_service_allocate(struct api_req *r, json_t *obj, const json_t *old, json_t *causes)
{
    json_t *spec = json_object_get(obj, "spec");
    const char *type = json_string_value(json_object_get(spec, "type")) ?: "ClusterIP";
    struct svc_write *w = write_find(r, true);
    /* A write allocating again (a retry) gives up what it held first. */
    w->nvals = 0;
    w->reserved = false;
    w->full = NULL;
    struct used *u = used_new(r, api_meta_str(obj, "namespace"), api_meta_str(obj, "name"));
    /* What the stored Service holds is not allocated again (an ExternalName holds nothing,
     * whatever fields a client left in it). */
    struct svc_value *ov = NULL;
    size_t no = values_of(&ov, old);
    const json_t *os = json_object_get(old, "spec");
    const char *old_type = json_string_value(json_object_get(os, "type"));
    const char *old_ip = old && !(old_type && !strcmp(old_type, "ExternalName"))
                             ? json_string_value(json_object_get(os, "clusterIP"))
                             : NULL;
    int rc = 0;
    /* An ExternalName has no address; what it had goes with the entry (api_service_entry). */
    if (strcmp(type, "ExternalName") != 0)
        rc = allocate_ip(r, w, u, spec, old_ip, causes);
    if (rc == 0 && (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer")))
        rc = allocate_ports(r, w, u, spec, ov, no, causes);
    free(ov);
    free(u);
    if (rc != 0) {
        w->nvals = 0; /* the request fails: nothing to hold */
        return rc;
    }
    w->reserved = w->nvals > 0;
    return 0;
}

void api_service_fail_full(struct api_req *r)
{
    struct svc_write *w = write_find(r, false);
    const char *what = w && w->full ? w->full : "serviceIP";
    char msg[128];
    snprintf(msg, sizeof(msg), "failed to allocate a %s: range is full", what);
    /* Upstream's InternalError: the cause carries the message alone. */
    api_fail(r, KCP_EINTERNAL, NULL, json_pack("[{s:s}]", "message", msg),
             "Internal error occurred: %s", msg);
}

/* ---- allocation keys ---- */

static bool is_service_key(const char *key, size_t len)
{
    static const char prefix[] = "/core/services/";
    return len > sizeof(prefix) - 1 && memcmp(key, prefix, sizeof(prefix) - 1) == 0;
}

/* The values a Service holds: its ClusterIP in the range, its NodePorts in the range (each
 * once). Returns how many; *out is the caller's to free. */
static size_t values_of(struct svc_value **out, const json_t *svc)
{
    *out = NULL;
    if (!svc)
        return 0;
    const json_t *spec = json_object_get(svc, "spec");
    const json_t *ports = json_object_get(spec, "ports");
    size_t n = 0;
    *out = kcp_calloc(1 + json_array_size(ports), sizeof(**out));
    uint32_t ip;
    const char *type = json_string_value(json_object_get(spec, "type"));
    if ((!type || strcmp(type, "ExternalName") != 0) &&
        parse_ip(json_string_value(json_object_get(spec, "clusterIP")), &ip) == 0 &&
        (ip & SERVICE_MASK) == SERVICE_NET)
        (*out)[n++] = (struct svc_value){.port = false, .v = ip};
    size_t i;
    json_t *p;
    /* Another type's nodePorts (left by a client, kept by upstream's rules) hold nothing. */
    bool holds_ports = type && (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer"));
    json_array_foreach(ports, i, p) {
        json_int_t np = json_integer_value(json_object_get(p, "nodePort"));
        if (!holds_ports || np < NODEPORT_MIN || np > NODEPORT_MAX)
            continue;
        bool seen = false;
        for (size_t k = 0; k < n && !seen; k++)
            seen = (*out)[k].port && (*out)[k].v == (uint32_t)np;
        if (!seen)
            (*out)[n++] = (struct svc_value){.port = true, .v = (uint32_t)np, .index = (int)i};
    }
    return n;
}

static bool values_have(const struct svc_value *vals, size_t n, const struct svc_value *v)
{
    for (size_t i = 0; i < n; i++)
        if (vals[i].port == v->port && vals[i].v == v->v)
            return true;
    return false;
}

static void value_key(struct kcp_buf *out, const struct svc_value *v)
{
    char name[16];
    if (v->port)
        snprintf(name, sizeof(name), "%u", v->v);
    else
        ip_text(name, v->v);
    kcp_store_key(out, "", v->port ? "servicenodeports" : "serviceips", NULL, name);
}

/* The key's stored object: who holds the value (for people reading the store or history). */
static char *value_doc(const struct svc_value *v, const json_t *svc)
{
    char name[16];
    if (v->port)
        snprintf(name, sizeof(name), "%u", v->v);
    else
        ip_text(name, v->v);
    json_t *doc = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:s}}", "kind",
                            v->port ? "ServiceNodePort" : "ServiceIP", "apiVersion",
                            "internal.kcp.io/v1", "metadata", "name", name, "service",
                            "namespace", api_meta_str(svc, "namespace") ?: "", "name",
                            api_meta_str(svc, "name") ?: "", "uid", api_meta_str(svc, "uid") ?: "");
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_codec_json_write(&b, doc);
    json_decref(doc);
    return kcp_buf_detach(&b);
}

static void xop_add(struct svc_write *w, struct kcp_buf *key, char *value,
                    enum kcp_store_precond precond, uint64_t revision, int val)
{
    w->xops = kcp_realloc(w->xops, (w->nx + 1) * sizeof(*w->xops));
    w->xops[w->nx++] =
        (struct svc_op){kcp_strndup(key->data, key->len), value, precond, revision, val};
}

static int new_value_index(const struct svc_write *w, const struct svc_value *v)
{
    for (size_t i = 0; i < w->nvals; i++)
        if (w->vals[i].port == v->port && w->vals[i].v == v->v)
            return (int)i;
    return -1;
}

static void set_str(char **slot, const char *s, size_t len)
{
    if (*slot && strlen(*slot) == len && memcmp(*slot, s, len) == 0)
        return; /* the same text (a proposal made again from these very bytes) */
    char *copy = kcp_strndup(s, len);
    free(*slot);
    *slot = copy;
}

void api_service_entry(struct api_req *r, struct kcp_store_entry *e, const json_t *obj)
{
    if (e->nops != 1 || !is_service_key(e->ops[0].key, e->ops[0].key_len))
        return;
    const struct kcp_store_op *op = &e->ops[0];
    struct svc_write *w = write_find(r, true);
    set_str(&w->verb, e->verb, strlen(e->verb));
    set_str(&w->key, op->key, op->key_len);
    w->key_len = op->key_len;
    /* api_propose's object is the request's own (r->obj), which a retry allocates into. */
    json_t *keep = json_incref((json_t *)obj);
    json_decref(w->obj);
    w->obj = keep;
    w->precond = op->precond;
    w->revision = op->revision;
    xops_clear(w);

    struct kcp_obj *cur = NULL;
    if (op->precond != KCP_STORE_IF_ABSENT)
        kcp_store_get(r->api->store, op->key, op->key_len, 0, &cur);
    struct svc_value *nv = NULL, *ov = NULL;
    size_t nn = values_of(&nv, obj), no = values_of(&ov, cur ? cur->doc : NULL);
    struct kcp_buf key = KCP_BUF_INIT;
    for (size_t i = 0; i < nn; i++) {
        struct kcp_obj *held = NULL;
        value_key(&key, &nv[i]);
        bool present = kcp_store_get(r->api->store, key.data, key.len, 0, &held) == 0;
        if (!present)
            xop_add(w, &key, value_doc(&nv[i], obj), KCP_STORE_IF_ABSENT, 0,
                    new_value_index(w, &nv[i]));
        else if (!values_have(ov, no, &nv[i]))
            /* Allocation found no committed Service with this value: the key is stale. */
            xop_add(w, &key, value_doc(&nv[i], obj), KCP_STORE_IF_REVISION, held->mod_revision,
                    new_value_index(w, &nv[i]));
        kcp_obj_unref(held);
    }
    for (size_t i = 0; i < no; i++) {
        struct kcp_obj *held = NULL;
        if (values_have(nv, nn, &ov[i]))
            continue;
        value_key(&key, &ov[i]);
        if (kcp_store_get(r->api->store, key.data, key.len, 0, &held) == 0)
            xop_add(w, &key, NULL, KCP_STORE_IF_REVISION, held->mod_revision, -1);
        kcp_obj_unref(held);
    }
    kcp_buf_free(&key);
    free(nv);
    free(ov);
    kcp_obj_unref(cur);
    if (w->nx == 0)
        return;
    w->ops = kcp_calloc(1 + w->nx, sizeof(*w->ops));
    w->ops[0] = *op;
    for (size_t i = 0; i < w->nx; i++) {
        const struct svc_op *x = &w->xops[i];
        w->ops[1 + i] = (struct kcp_store_op){
            .type = x->value ? KCP_STORE_PUT : KCP_STORE_DELETE,
            .precond = x->precond,
            .revision = x->revision,
            .key = x->key,
            .key_len = strlen(x->key),
            .value = x->value,
            .value_len = x->value ? strlen(x->value) : 0,
        };
    }
    e->ops = w->ops;
    e->nops = 1 + w->nx;
    e->flags |= KCP_STORE_ATOMIC;
}

/* ---- the proposal's return ---- */

static void fail_taken(struct api_req *r, const struct svc_value *v)
{
    char msg[256], field[64], text[16];
    if (v->port) {
        snprintf(field, sizeof(field), "spec.ports[%d].nodePort", v->index);
        port_taken_message(msg, sizeof(msg), v->v);
    } else {
        snprintf(field, sizeof(field), "spec.clusterIPs");
        ip_text(text, v->v);
        ip_taken_message(msg, sizeof(msg), text);
    }
    const char *name = api_meta_str(r->obj, "name") ?: "";
    json_t *causes = json_array();
    add_cause(causes, "FieldValueInvalid", field, msg);
    api_fail(r, KCP_EINVALID, name, causes, "%s \"%s\" is invalid: %s: %s", r->rsrc->kind, name,
             field, msg);
}

bool api_service_on_done(struct api_req *r, int status, const struct kcp_store_result *res)
{
    struct svc_write *w = write_find(r, false);
    if (!w)
        return false;
    w->reserved = false;
    if (status != 0 || !res || w->nx == 0 || res->nops != 1 + w->nx || res->err == 0 ||
        res->ops[0].err != 0) {
        api_service_forget(r); /* r->cont answers, or retries through the pipeline */
        return false;
    }
    /* The Service's op passed and an allocation op did not: another server got there first. */
    size_t failed = 0;
    while (failed < w->nx && res->ops[1 + failed].err == 0)
        failed++;
    int val = failed < w->nx ? w->xops[failed].val : -1;
    if (val >= 0 && w->vals[val].requested) {
        struct svc_value v = w->vals[val];
        api_service_forget(r);
        fail_taken(r, &v);
        return true;
    }
    if (++w->attempts >= SVC_MAX_ATTEMPTS) {
        api_service_forget(r);
        api_fail(r, KCP_EINTERNAL, NULL, NULL,
                 "Internal error occurred: failed to allocate a serviceIP or nodePort: the values "
                 "kept being taken by other servers");
        return true;
    }
    KCP_LOG_V(2, "api", "service %s: an allocated value was taken meanwhile, allocating again",
              w->key);
    if (w->obj) {
        /* The values this write chose are chosen again; the client's stay. */
        json_t *spec = json_object_get(w->obj, "spec");
        for (size_t i = 0; i < w->nvals; i++) {
            if (w->vals[i].requested)
                continue;
            if (w->vals[i].port)
                json_object_set_new(json_array_get(json_object_get(spec, "ports"),
                                                   (size_t)w->vals[i].index),
                                    "nodePort", json_integer(0));
            else
                json_object_set_new(spec, "clusterIP", json_string(""));
        }
        struct kcp_obj *cur = NULL;
        if (w->precond != KCP_STORE_IF_ABSENT)
            kcp_store_get(r->api->store, w->key, w->key_len, 0, &cur);
        json_t *causes = json_array();
        int rc = api_service_allocate(r, w->obj, cur ? cur->doc : NULL, causes);
        kcp_obj_unref(cur);
        if (rc != 0) {
            json_decref(causes);
            api_service_fail_full(r);
            return true;
        }
        if (json_array_size(causes)) {
            const char *name = api_meta_str(w->obj, "name") ?: "";
            json_t *c = json_array_get(causes, 0);
            api_fail(r, KCP_EINVALID, name, json_incref(causes), "%s \"%s\" is invalid: %s: %s",
                     r->rsrc->kind, name, json_string_value(json_object_get(c, "field")),
                     json_string_value(json_object_get(c, "message")));
            json_decref(causes);
            return true;
        }
        json_decref(causes);
    }
    api_propose(r, w->verb, w->key, w->key_len, w->obj, (int)w->precond, w->revision);
    return true;
}

/* ---- entries built elsewhere ---- */

size_t api_service_keys_held(struct kcp_store *s, const json_t *svc, struct kcp_buf *keys,
                             uint64_t **revs, size_t nrevs)
{
    struct svc_value *vals = NULL;
    size_t n = values_of(&vals, svc), added = 0;
    struct kcp_buf key = KCP_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        struct kcp_obj *held = NULL;
        value_key(&key, &vals[i]);
        if (kcp_store_get(s, key.data, key.len, 0, &held) != 0)
            continue;
        kcp_buf_append(keys, key.data, key.len + 1);
        *revs = kcp_realloc(*revs, (nrevs + added + 1) * sizeof(**revs));
        (*revs)[nrevs + added++] = held->mod_revision;
        kcp_obj_unref(held);
    }
    kcp_buf_free(&key);
    free(vals);
    return added;
}

struct backfill {
    struct kcp_store *s;
    struct kcp_buf *pairs;
    size_t n;
    const json_t *svc; /* the one being bootstrapped, unless the store has it already */
};

/* Whether pairs (key, value, key, value, ...) names key already: an entry names a key once. */
static bool pairs_have(const struct kcp_buf *pairs, size_t n, const struct kcp_buf *key)
{
    const char *p = pairs->data;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(p);
        if (len == key->len && memcmp(p, key->data, len) == 0)
            return true;
        p += len + 1;
        p += strlen(p) + 1;
    }
    return false;
}

static void backfill_one(struct backfill *b, const json_t *svc)
{
    struct svc_value *vals = NULL;
    size_t n = values_of(&vals, svc);
    struct kcp_buf key = KCP_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        struct kcp_obj *held = NULL;
        value_key(&key, &vals[i]);
        if (kcp_store_get(b->s, key.data, key.len, 0, &held) == 0) {
            kcp_obj_unref(held);
            continue;
        }
        /* Two old Services with one value (the race this file closes): the first keeps it. */
        if (pairs_have(b->pairs, b->n, &key))
            continue;
        char *doc = value_doc(&vals[i], svc);
        kcp_buf_append(b->pairs, key.data, key.len + 1);
        kcp_buf_append(b->pairs, doc, strlen(doc) + 1);
        free(doc);
        b->n++;
    }
    kcp_buf_free(&key);
    free(vals);
}

static int backfill_on_item(void *ctx, const struct kcp_obj *obj)
{
    struct backfill *b = ctx;
    const char *ns = api_meta_str(obj->doc, "namespace"), *name = api_meta_str(obj->doc, "name");
    if (b->svc && ns && name && !strcmp(ns, api_meta_str(b->svc, "namespace") ?: "") &&
        !strcmp(name, api_meta_str(b->svc, "name") ?: ""))
        b->svc = NULL;
    backfill_one(b, obj->doc);
    return 0;
}

size_t api_service_backfill(struct kcp_store *s, const json_t *svc, struct kcp_buf *pairs)
{
    struct backfill b = {s, pairs, 0, svc};
    struct kcp_buf prefix = KCP_BUF_INIT;
    struct kcp_store_list_result lr;
    kcp_store_key(&prefix, "", "services", NULL, NULL);
    kcp_store_list(s, prefix.data, prefix.len, 0, NULL, 0, 0, backfill_on_item, &b, &lr);
    kcp_buf_free(&prefix);
    if (b.svc)
        backfill_one(&b, b.svc);
    return b.n;
}
