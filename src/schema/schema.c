/* schema.c: lookups over the generated resource and message tables. */
#include <stdlib.h>
#include <string.h>

#include "kcp/base.h"
#include "schema_int.h"

size_t kcp_schema_resource_count(void)
{
    return schema_nresources;
}

const struct kcp_schema_resource *kcp_schema_resource_at(size_t i)
{
    return i < schema_nresources ? &schema_resources[i] : NULL;
}

const struct kcp_schema_resource *kcp_schema_resource_find(const char *group, const char *version,
                                                           const char *resource)
{
    for (size_t i = 0; i < schema_nresources; i++) {
        const struct kcp_schema_resource *r = &schema_resources[i];
        if (strcmp(r->resource, resource) == 0 && strcmp(r->group, group) == 0 &&
            strcmp(r->version, version) == 0)
            return r;
    }
    return NULL;
}

const struct kcp_schema_resource *kcp_schema_resource_by_kind(const char *group,
                                                              const char *version,
                                                              const char *kind)
{
    for (size_t i = 0; i < schema_nresources; i++) {
        const struct kcp_schema_resource *r = &schema_resources[i];
        if (strcmp(r->kind, kind) == 0 && strcmp(r->group, group) == 0 &&
            strcmp(r->version, version) == 0)
            return r;
    }
    return NULL;
}

const struct kcp_schema_subresource *kcp_schema_subresource_find(
    const struct kcp_schema_resource *r, const char *name)
{
    for (size_t i = 0; i < r->nsubresources; i++)
        if (strcmp(r->subresources[i].name, name) == 0)
            return &r->subresources[i];
    return NULL;
}

static const char *const verb_names[] = {"get",    "list",  "watch",  "create",
                                         "update", "patch", "delete", "deletecollection"};

unsigned kcp_schema_verb_bit(const char *verb)
{
    for (size_t i = 0; i < sizeof(verb_names) / sizeof(verb_names[0]); i++)
        if (strcmp(verb_names[i], verb) == 0)
            return 1u << i;
    return 0;
}

const char *kcp_schema_verb_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof(verb_names) / sizeof(verb_names[0]); i++)
        if (bit == 1u << i)
            return verb_names[i];
    return NULL;
}

size_t kcp_schema_message_count(void)
{
    return schema_nmessages;
}

const struct kcp_schema_message *kcp_schema_message_at(int index)
{
    if (index < 0 || (size_t)index >= schema_nmessages)
        return NULL;
    return &schema_messages[index];
}

const struct kcp_schema_message *kcp_schema_message_find(const char *name)
{
    /* The table is sorted by name (the generator sorts it). */
    size_t lo = 0, hi = schema_nmessages;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(schema_messages[mid].name, name);
        if (c == 0)
            return &schema_messages[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int gvk_cmp(const struct schema_gvk *e, const char *g, const char *v, const char *k)
{
    int c = strcmp(e->group, g);
    if (c == 0)
        c = strcmp(e->version, v);
    if (c == 0)
        c = strcmp(e->kind, k);
    return c;
}

const struct kcp_schema_message *kcp_schema_message_by_gvk(const char *group, const char *version,
                                                           const char *kind)
{
    size_t lo = 0, hi = schema_ngvks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = gvk_cmp(&schema_gvks[mid], group, version, kind);
        if (c == 0) {
            /* Several definitions may register one GVK (meta kinds): prefer the group's own. */
            size_t first = mid;
            while (first > 0 && gvk_cmp(&schema_gvks[first - 1], group, version, kind) == 0)
                first--;
            const struct kcp_schema_message *best = &schema_messages[schema_gvks[first].msg];
            for (size_t i = first; i < schema_ngvks &&
                                   gvk_cmp(&schema_gvks[i], group, version, kind) == 0;
                 i++)
                if (strncmp(schema_messages[schema_gvks[i].msg].name, "io.k8s.api.", 11) == 0)
                    best = &schema_messages[schema_gvks[i].msg];
            return best;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct kcp_schema_message *kcp_schema_field_message(const struct kcp_schema_field *f)
{
    return f->msg >= 0 ? &schema_messages[f->msg] : NULL;
}

int kcp_schema_field_find(const struct kcp_schema_field **out,
                          const struct kcp_schema_field **out_inline,
                          const struct kcp_schema_message *m, const char *json)
{
    for (size_t i = 0; i < m->nfields; i++) {
        const struct kcp_schema_field *f = &m->fields[i];
        if (f->flags & KCP_SCHEMA_F_INLINE) {
            const struct kcp_schema_field *inner, *unused;
            if (kcp_schema_field_find(&inner, &unused, &schema_messages[f->msg], json) == 0) {
                *out = inner;
                *out_inline = f;
                return 0;
            }
        } else if (strcmp(f->json, json) == 0) {
            *out = f;
            *out_inline = NULL;
            return 0;
        }
    }
    return KCP_ENOTFOUND;
}

const struct kcp_schema_field *kcp_schema_field_next(const struct kcp_schema_message *m,
                                                     size_t *it,
                                                     const struct kcp_schema_field **out_inline)
{
    /* *it encodes (outer index << 16) | (inner index + 1 while inside an inline child). */
    for (;;) {
        size_t outer = *it >> 16, inner = *it & 0xffff;
        if (outer >= m->nfields)
            return NULL;
        const struct kcp_schema_field *f = &m->fields[outer];
        if (!(f->flags & KCP_SCHEMA_F_INLINE)) {
            *it = (outer + 1) << 16;
            if (out_inline)
                *out_inline = NULL;
            return f;
        }
        const struct kcp_schema_message *child = &schema_messages[f->msg];
        if (inner < child->nfields) {
            *it = (outer << 16) | (inner + 1);
            if (out_inline)
                *out_inline = f;
            return &child->fields[inner];
        }
        *it = (outer + 1) << 16;
    }
}
