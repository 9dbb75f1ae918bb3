/* A small structured-merge-diff schema of a Deployment, for the server-side apply tests. */
#ifndef KCP_TEST_SSA_SCHEMA_H
#define KCP_TEST_SSA_SCHEMA_H

#include <kcp/patch.h>

#include <stddef.h>
#include <string.h>

/* One node: its type, its fields (structs; "*" is every key of a map) or its items (lists).
 * Arrays of fields end with a NULL name. */
struct ssa_tnode {
    const char *name;
    enum kcp_ssa_kind kind;
    bool atomic;
    const char *keys[3];
    const struct ssa_tnode *fields;
    const struct ssa_tnode *items;
};

#define T_END                                                                                      \
    {                                                                                              \
        NULL, KCP_SSA_DEDUCED, false, {NULL}, NULL, NULL                                           \
    }
#define T_SCALAR(n)                                                                                \
    {                                                                                              \
        n, KCP_SSA_SCALAR, false, {NULL}, NULL, NULL                                               \
    }

static const struct ssa_tnode ssa_t_scalar = T_SCALAR("scalar");
static const struct ssa_tnode ssa_t_strmap_f[] = {T_SCALAR("*"), T_END};
static const struct ssa_tnode ssa_t_nv_f[] = {T_SCALAR("name"), T_SCALAR("value"), T_END};
static const struct ssa_tnode ssa_t_nv = {"EnvVar", KCP_SSA_STRUCT, false,
                                          {NULL},   ssa_t_nv_f,     NULL};
static const struct ssa_tnode ssa_t_port_f[] = {T_SCALAR("containerPort"), T_SCALAR("protocol"),
                                                T_SCALAR("name"), T_END};
static const struct ssa_tnode ssa_t_port = {"Port", KCP_SSA_STRUCT, false,
                                            {NULL}, ssa_t_port_f,   NULL};
static const struct ssa_tnode ssa_t_resources_f[] = {
    {"limits", KCP_SSA_MAP, false, {NULL}, ssa_t_strmap_f, NULL},
    T_END,
};
static const struct ssa_tnode ssa_t_container_f[] = {
    T_SCALAR("name"),
    T_SCALAR("image"),
    {"env", KCP_SSA_LIST, false, {"name"}, NULL, &ssa_t_nv},
    {"ports", KCP_SSA_LIST, false, {"containerPort", "protocol"}, NULL, &ssa_t_port},
    {"args", KCP_SSA_LIST, true, {NULL}, NULL, &ssa_t_scalar},
    {"resources", KCP_SSA_STRUCT, false, {NULL}, ssa_t_resources_f, NULL},
    T_END,
};
static const struct ssa_tnode ssa_t_container = {"Container", KCP_SSA_STRUCT,    false,
                                                 {NULL},      ssa_t_container_f, NULL};
static const struct ssa_tnode ssa_t_podspec_f[] = {
    {"containers", KCP_SSA_LIST, false, {"name"}, NULL, &ssa_t_container},
    T_SCALAR("restartPolicy"),
    T_END,
};
static const struct ssa_tnode ssa_t_meta_f[] = {
    T_SCALAR("name"),
    T_SCALAR("namespace"),
    T_SCALAR("uid"),
    T_SCALAR("resourceVersion"),
    T_SCALAR("generation"),
    T_SCALAR("creationTimestamp"),
    {"labels", KCP_SSA_MAP, false, {NULL}, ssa_t_strmap_f, NULL},
    {"annotations", KCP_SSA_MAP, false, {NULL}, ssa_t_strmap_f, NULL},
    {"finalizers", KCP_SSA_LIST, false, {NULL}, NULL, &ssa_t_scalar},
    {"managedFields", KCP_SSA_LIST, true, {NULL}, NULL, NULL},
    T_END,
};
static const struct ssa_tnode ssa_t_template_f[] = {
    {"metadata", KCP_SSA_STRUCT, false, {NULL}, ssa_t_meta_f, NULL},
    {"spec", KCP_SSA_STRUCT, false, {NULL}, ssa_t_podspec_f, NULL},
    T_END,
};
static const struct ssa_tnode ssa_t_selector_f[] = {
    {"matchLabels", KCP_SSA_MAP, false, {NULL}, ssa_t_strmap_f, NULL},
    T_END,
};
static const struct ssa_tnode ssa_t_dspec_f[] = {
    T_SCALAR("replicas"),
    {"selector", KCP_SSA_STRUCT, true, {NULL}, ssa_t_selector_f, NULL},
    {"template", KCP_SSA_STRUCT, false, {NULL}, ssa_t_template_f, NULL},
    T_SCALAR("paused"),
    T_END,
};
static const struct ssa_tnode ssa_t_status_f[] = {T_SCALAR("replicas"), T_END};
static const struct ssa_tnode ssa_t_deploy_f[] = {
    T_SCALAR("apiVersion"),
    T_SCALAR("kind"),
    {"metadata", KCP_SSA_STRUCT, false, {NULL}, ssa_t_meta_f, NULL},
    {"spec", KCP_SSA_STRUCT, false, {NULL}, ssa_t_dspec_f, NULL},
    {"status", KCP_SSA_STRUCT, false, {NULL}, ssa_t_status_f, NULL},
    {"extra", KCP_SSA_DEDUCED, false, {NULL}, NULL, NULL},
    T_END,
};
static const struct ssa_tnode ssa_t_deployment = {"Deployment", KCP_SSA_STRUCT, false,
                                                  {NULL},       ssa_t_deploy_f, NULL};

static inline void ssa_t_type(const void *node, struct kcp_ssa_type *out)
{
    const struct ssa_tnode *n = node;
    memset(out, 0, sizeof(*out));
    out->kind = n->kind;
    out->atomic = n->atomic;
    for (size_t i = 0; i < 3 && n->keys[i]; i++)
        out->keys[out->nkeys++] = n->keys[i];
}

static inline const void *ssa_t_field(const void *node, const char *name)
{
    const struct ssa_tnode *n = node;
    for (const struct ssa_tnode *f = n->fields; f && f->name; f++)
        if (strcmp(f->name, name) == 0 || strcmp(f->name, "*") == 0)
            return f;
    return NULL;
}

static inline const void *ssa_t_items(const void *node)
{
    return ((const struct ssa_tnode *)node)->items;
}

static inline json_t *ssa_t_key_default(const void *node, const char *key)
{
    (void)node;
    return strcmp(key, "protocol") == 0 ? json_string("TCP") : NULL;
}

static const struct kcp_ssa_schema ssa_test_schema = {
    &ssa_t_deployment, ssa_t_type, ssa_t_field, ssa_t_items, ssa_t_key_default,
};

#endif
