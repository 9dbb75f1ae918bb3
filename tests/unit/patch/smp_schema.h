/* A tiny strategic-merge schema of a Deployment, for the patch tests and the patch fuzzer. */
#ifndef KCP_TEST_SMP_SCHEMA_H
#define KCP_TEST_SMP_SCHEMA_H

#include <kcp/patch.h>

#include <stddef.h>
#include <string.h>

/* One field and its value's type: members for objects ("*" for every key of a map), the element
 * type for lists. Arrays of fields end with a NULL name. */
struct smp_tnode {
    const char *name;
    unsigned strategy;
    const char *merge_key;
    const struct smp_tnode *fields;
    const struct smp_tnode *items;
};

static const struct smp_tnode smp_t_none[] = {{NULL, 0, NULL, NULL, NULL}};
static const struct smp_tnode smp_t_plain = {"Plain", 0, NULL, smp_t_none, NULL};
static const struct smp_tnode smp_t_container_f[] = {
    {"env", KCP_SMP_MERGE, "name", NULL, &smp_t_plain},
    {"ports", KCP_SMP_MERGE, "containerPort", NULL, &smp_t_plain},
    {"volumeMounts", KCP_SMP_MERGE, "mountPath", NULL, &smp_t_plain},
    {NULL, 0, NULL, NULL, NULL},
};
static const struct smp_tnode smp_t_container = {"Container", 0, NULL, smp_t_container_f, NULL};
static const struct smp_tnode smp_t_podspec_f[] = {
    {"containers", KCP_SMP_MERGE, "name", NULL, &smp_t_container},
    {"initContainers", KCP_SMP_MERGE, "name", NULL, &smp_t_container},
    {"volumes", KCP_SMP_MERGE | KCP_SMP_RETAIN_KEYS, "name", NULL, &smp_t_plain},
    {"imagePullSecrets", KCP_SMP_MERGE, "name", NULL, &smp_t_plain},
    {NULL, 0, NULL, NULL, NULL},
};
static const struct smp_tnode smp_t_labels_f[] = {{"*", 0, NULL, NULL, NULL},
                                                  {NULL, 0, NULL, NULL, NULL}};
static const struct smp_tnode smp_t_meta_f[] = {
    {"finalizers", KCP_SMP_MERGE, NULL, NULL, NULL},
    {"ownerReferences", KCP_SMP_MERGE, "uid", NULL, &smp_t_plain},
    {"labels", 0, NULL, smp_t_labels_f, NULL},
    {NULL, 0, NULL, NULL, NULL},
};
static const struct smp_tnode smp_t_template_f[] = {
    {"metadata", 0, NULL, smp_t_meta_f, NULL},
    {"spec", 0, NULL, smp_t_podspec_f, NULL},
    {NULL, 0, NULL, NULL, NULL},
};
static const struct smp_tnode smp_t_dspec_f[] = {
    {"strategy", KCP_SMP_RETAIN_KEYS, NULL, smp_t_none, NULL},
    {"template", 0, NULL, smp_t_template_f, NULL},
    {"replacedMap", KCP_SMP_REPLACE, NULL, smp_t_none, NULL},   /* no such field upstream */
    {"mergedKeyless", KCP_SMP_MERGE, NULL, NULL, &smp_t_plain}, /* nor this: no merge key */
    {NULL, 0, NULL, NULL, NULL},
};
static const struct smp_tnode smp_t_deploy_f[] = {
    {"metadata", 0, NULL, smp_t_meta_f, NULL},
    {"spec", 0, NULL, smp_t_dspec_f, NULL},
    {NULL, 0, NULL, NULL, NULL},
};
static const struct smp_tnode smp_t_deployment = {"Deployment", 0, NULL, smp_t_deploy_f, NULL};

static inline const void *smp_t_field(const void *node, const char *name)
{
    const struct smp_tnode *n = node;
    for (const struct smp_tnode *f = n->fields; f && f->name; f++)
        if (strcmp(f->name, name) == 0 || strcmp(f->name, "*") == 0)
            return f;
    return NULL;
}

static inline const void *smp_t_items(const void *node)
{
    return ((const struct smp_tnode *)node)->items;
}

static inline unsigned smp_t_strategy(const void *node, const char **out_merge_key)
{
    const struct smp_tnode *n = node;
    *out_merge_key = n->merge_key;
    return n->strategy;
}

static const struct kcp_smp_schema smp_test_schema = {
    &smp_t_deployment,
    smp_t_field,
    smp_t_items,
    smp_t_strategy,
};

#endif
