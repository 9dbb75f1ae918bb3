/*
 * Field managers: the structured-merge-diff view of the generated schema for src/patch's
 * server-side apply, the manager of a request (fieldManager or the User-Agent), and the Update
 * entry every create, update and non-apply patch records in metadata.managedFields.
 */
#include "api_int.h"

#include "meta.h"

#include <kcp/patch.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the schema as structured-merge-diff sees it ---- */

/* A node: the value of a field (or of its items/map values when element), or a message. */
struct ssa_node {
    struct ssa_node *next; /* arena list */
    struct ssa_node **arena;
    const struct kcp_schema_message *msg;
    const struct kcp_schema_field *field;
    bool element;
    char keys[128]; /* x-kubernetes-list-map-keys, split (type() points into it) */
};

static const struct ssa_node *node_new(struct ssa_node **arena, const struct kcp_schema_field *f,
                                       const struct kcp_schema_message *msg, bool element)
{
    struct ssa_node *n = kcp_calloc(1, sizeof(*n));
    n->next = *arena;
    *arena = n;
    n->arena = arena;
    n->field = f;
    n->element = element;
    n->msg = msg ? msg : f ? kcp_schema_field_message(f) : NULL;
    return n;
}

/* kube-openapi's getListElementRelationship: list-type first, then the patch strategy. */
static void list_type(struct ssa_node *n, struct kcp_ssa_type *out)
{
    const struct kcp_schema_field *f = n->field;
    out->kind = KCP_SSA_LIST;
    const char *keys = NULL;
    switch (f->list_type) {
    case KCP_SCHEMA_LIST_MAP:
        keys = f->list_keys;
        break;
    case KCP_SCHEMA_LIST_SET:
        return;
    case KCP_SCHEMA_LIST_ATOMIC:
        out->atomic = true;
        return;
    default:
        if (!(f->patch & KCP_SCHEMA_PATCH_MERGE)) {
            out->atomic = true;
            return;
        }
        keys = f->merge_key; /* a merge without a key is a set */
    }
    if (!keys || !*keys)
        return;
    snprintf(n->keys, sizeof(n->keys), "%s", keys);
    char *save = NULL;
    for (char *k = strtok_r(n->keys, ",", &save); k && out->nkeys < KCP_SSA_MAX_KEYS;
         k = strtok_r(NULL, ",", &save))
        out->keys[out->nkeys++] = k;
}

static void ssa_type(const void *node, struct kcp_ssa_type *out)
{
    struct ssa_node *n = (struct ssa_node *)(uintptr_t)node;
    const struct kcp_schema_field *f = n->field;
    if (f && !n->element && (f->flags & KCP_SCHEMA_F_REPEATED))
        return list_type(n, out);
    if (f && !n->element && (f->flags & KCP_SCHEMA_F_MAP)) {
        out->kind = KCP_SSA_MAP;
        out->atomic = f->map_atomic;
        return;
    }
    switch (f ? f->kind : KCP_SCHEMA_MESSAGE) {
    case KCP_SCHEMA_MESSAGE:
        if (!n->msg)
            return; /* deduced */
        out->kind = KCP_SSA_STRUCT;
        out->atomic = (n->msg->flags & KCP_SCHEMA_M_ATOMIC) || (f && !n->element && f->map_atomic);
        return;
    case KCP_SCHEMA_RAWJSON:
    case KCP_SCHEMA_SCHEMAORARRAY:
    case KCP_SCHEMA_SCHEMAORBOOL:
    case KCP_SCHEMA_SCHEMAORSTRINGARRAY:
        return; /* untyped JSON: deduced from the value */
    case KCP_SCHEMA_STRINGLIST:
        out->kind = KCP_SSA_LIST;
        out->atomic = true;
        return;
    default:
        out->kind = KCP_SSA_SCALAR;
    }
}

static const void *ssa_field(const void *node, const char *name)
{
    const struct ssa_node *n = node;
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

static const void *ssa_items(const void *node)
{
    const struct ssa_node *n = node;
    if (n->field && !n->element && (n->field->flags & KCP_SCHEMA_F_REPEATED))
        return node_new(n->arena, n->field, NULL, true);
    return NULL;
}

/* The OpenAPI defaults of list-map key fields in 1.32: "TCP" for ports' protocol, the zero
 * value for the required string and integer keys. */
static json_t *ssa_key_default(const void *node, const char *key)
{
    const struct ssa_node *n = node;
    const struct kcp_schema_message *m = n->field ? kcp_schema_field_message(n->field) : NULL;
    const struct kcp_schema_field *f, *inl;
    if (!m || kcp_schema_field_find(&f, &inl, m, key) != 0)
        return NULL;
    if (strcmp(key, "protocol") == 0 && f->kind == KCP_SCHEMA_STRING)
        return json_string("TCP");
    switch (f->kind) {
    case KCP_SCHEMA_STRING:
        return json_string("");
    case KCP_SCHEMA_INT32:
    case KCP_SCHEMA_INT64:
        return json_integer(0);
    default:
        return NULL;
    }
}

void api_ssa_schema_init(struct api_ssa_schema *s, const struct kcp_schema_message *m)
{
    s->arena = NULL;
    s->schema.root = node_new(&s->arena, NULL, m, false);
    s->schema.type = ssa_type;
    s->schema.field = ssa_field;
    s->schema.items = ssa_items;
    s->schema.key_default = ssa_key_default;
}

void api_ssa_schema_free(struct api_ssa_schema *s)
{
    struct ssa_node *n = s->arena;
    while (n) {
        struct ssa_node *next = n->next;
        free(n);
        n = next;
    }
    s->arena = NULL;
}

/* ---- the zero value of a type ---- */

static json_t *zero_of(const struct kcp_schema_message *m, int depth)
{
    json_t *o = json_object();
    if (!m || m->kind != KCP_SCHEMA_MESSAGE || depth > 32)
        return o;
    size_t it = 0;
    const struct kcp_schema_field *f;
    while ((f = kcp_schema_field_next(m, &it, NULL)) != NULL) {
        if (!(f->flags & KCP_SCHEMA_F_VALUE))
            continue;
        json_t *v = NULL;
        if (f->flags & (KCP_SCHEMA_F_REPEATED | KCP_SCHEMA_F_MAP)) {
            v = json_null(); /* a nil slice or map */
        } else {
            switch (f->kind) {
            case KCP_SCHEMA_MESSAGE:
                v = zero_of(kcp_schema_field_message(f), depth + 1);
                break;
            case KCP_SCHEMA_STRING:
                v = json_string("");
                break;
            case KCP_SCHEMA_BOOL:
                v = json_false();
                break;
            case KCP_SCHEMA_INT32:
            case KCP_SCHEMA_INT64:
            case KCP_SCHEMA_INTORSTRING:
                v = json_integer(0);
                break;
            case KCP_SCHEMA_DOUBLE:
                v = json_real(0);
                break;
            case KCP_SCHEMA_DURATION:
                v = json_string("0s");
                break;
            case KCP_SCHEMA_QUANTITY:
                v = json_string("0");
                break;
            default:
                v = json_null();
                break;
            }
        }
        json_object_set_new(o, f->json, v);
    }
    return o;
}

json_t *api_zero_object(const struct kcp_schema_message *m)
{
    return zero_of(m, 0);
}

/* ---- the manager of a request ---- */

#define FIELD_MANAGER_MAX 128 /* upstream's FieldManagerMaxLength */

/* Decodes one UTF-8 rune; *len is its length (1 for an invalid byte, read as U+FFFD). */
static unsigned rune_at(const unsigned char *p, size_t *len)
{
    if (p[0] < 0x80) {
        *len = 1;
        return p[0];
    }
    int n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
    unsigned r = n == 4 ? p[0] & 7u : n == 3 ? p[0] & 15u : p[0] & 31u;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            n = 0;
            break;
        }
        r = r << 6 | (p[i] & 63u);
    }
    if (n == 0) {
        *len = 1;
        return 0xfffd;
    }
    *len = (size_t)n;
    return r;
}

/* Go's unicode.IsPrint, approximated: control characters and the separators are not. */
static bool rune_printable(unsigned r)
{
    return !(r < 0x20 || (r >= 0x7f && r < 0xa0) || r == 0xad || r == 0x2028 || r == 0x2029 ||
             (r >= 0x200b && r <= 0x200f) || r == 0xfeff);
}

const char *api_field_manager(struct api_req *r, char *buf, size_t cap)
{
    const char *fm = api_query(r, "fieldManager");
    if (fm && *fm) {
        snprintf(buf, cap, "%s", fm);
        return buf;
    }
    /* prefixFromUserAgent: what precedes the first '/', printable runes, at most 128 bytes. */
    const char *ua = kcp_http_header(r->http, "User-Agent");
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)(ua ? ua : ""); *p && *p != '/';) {
        size_t len;
        unsigned rune = rune_at(p, &len);
        if (rune_printable(rune)) {
            if (o + len > FIELD_MANAGER_MAX || o + len >= cap)
                break;
            memcpy(buf + o, p, len);
            o += len;
        }
        p += len;
    }
    buf[o] = '\0';
    return buf;
}

int api_check_field_manager(struct api_req *r)
{
    const char *fm = api_query(r, "fieldManager");
    if (!fm || !*fm)
        return 0;
    if (strlen(fm) > FIELD_MANAGER_MAX) {
        api_fail_option(r, "fieldManager", "FieldValueTooLong",
                        "Too long: may not be more than 128 bytes");
        return KCP_EINVALID;
    }
    size_t pos = 0;
    for (const unsigned char *p = (const unsigned char *)fm; *p;) {
        size_t len;
        unsigned rune = rune_at(p, &len);
        if (!rune_printable(rune)) {
            char *msg = kcp_sprintf("Invalid value: \"%s\": invalid character U+%04X (at position "
                                    "%zu)",
                                    fm, rune, pos);
            api_fail_option(r, "fieldManager", "FieldValueInvalid", msg);
            free(msg);
            return KCP_EINVALID;
        }
        p += len;
        pos += len;
    }
    return 0;
}

/* ---- Update entries ---- */

/* The group/version managedFields record: the resource's. */
static const char *entry_api_version(const struct api_req *r, char *buf, size_t cap)
{
    return api_group_version(r->rsrc, buf, cap);
}

/* Reset fields of the endpoint: status belongs to the status subresource where there is one. */
void api_ssa_reset(const struct api_req *r, const char **out, size_t cap)
{
    size_t n = 0;
    bool status_sub = kcp_schema_subresource_find(r->rsrc, "status") != NULL;
    if (r->sub && strcmp(r->sub->name, "status") == 0) {
        out[n++] = "spec";
        out[n++] = "metadata";
    } else if (status_sub && (!r->sub || strcmp(r->sub->name, "scale") == 0)) {
        out[n++] = "status";
    }
    (void)cap;
    out[n] = NULL;
}

void api_managed_update(struct api_req *r, const json_t *old, json_t *obj)
{
    char manager[FIELD_MANAGER_MAX + 8], gv[128], now[32];
    const char *reset[4];
    const struct kcp_schema_message *m = kcp_schema_message_at(r->rsrc->msg);
    struct api_ssa_schema schema;
    api_meta_time(now, sizeof(now), kcp_clock_wall_s(r->api->loop->clock));
    api_ssa_reset(r, reset, 4);
    struct kcp_ssa_op op = {
        .manager = api_field_manager(r, manager, sizeof(manager)),
        .api_version = entry_api_version(r, gv, sizeof(gv)),
        .subresource = r->sub ? r->sub->name : NULL,
        .time = now,
        .reset = reset,
    };
    json_t *zero = old ? NULL : api_zero_object(m);
    char *err = NULL;
    api_ssa_schema_init(&schema, m);
    if (kcp_ssa_update(obj, old ? old : zero, old == NULL, &schema.schema, &op, &err) != 0)
        KCP_LOG_V(2, "api", "managedFields of %s/%s dropped: %s", r->rsrc->resource,
                  api_meta_str(obj, "name") ? api_meta_str(obj, "name") : "", err ? err : "");
    api_ssa_schema_free(&schema);
    free(err);
    json_decref(zero);
}
