/* test_schema.c: resource and message tables and the generated OpenAPI documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "kcp/base.h"
#include "kcp/schema.h"

static int has_name(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

static void test_resources(void **state)
{
    const struct kcp_schema_resource *pods = kcp_schema_resource_find("", "v1", "pods");
    assert_non_null(pods);
    assert_string_equal(pods->kind, "Pod");
    assert_string_equal(pods->list_kind, "PodList");
    assert_string_equal(pods->singular, "pod");
    assert_true(pods->namespaced);
    assert_true(has_name(pods->short_names, "po"));
    assert_true(has_name(pods->categories, "all"));
    assert_int_equal(pods->verbs, KCP_VERB_GET | KCP_VERB_LIST | KCP_VERB_WATCH |
                                      KCP_VERB_CREATE | KCP_VERB_UPDATE | KCP_VERB_PATCH |
                                      KCP_VERB_DELETE | KCP_VERB_DELETECOLLECTION);
    for (const char *s = "status\0binding\0eviction\0log\0exec\0"; *s; s += strlen(s) + 1)
        assert_non_null(kcp_schema_subresource_find(pods, s));
    const struct kcp_schema_subresource *ev = kcp_schema_subresource_find(pods, "eviction");
    assert_string_equal(ev->group, "policy");
    assert_string_equal(ev->kind, "Eviction");
    assert_int_equal(ev->verbs, KCP_VERB_CREATE);

    const struct kcp_schema_resource *dep = kcp_schema_resource_by_kind("apps", "v1",
                                                                        "Deployment");
    assert_non_null(dep);
    assert_string_equal(dep->resource, "deployments");
    assert_true(has_name(dep->short_names, "deploy"));
    const struct kcp_schema_subresource *scale = kcp_schema_subresource_find(dep, "scale");
    assert_non_null(scale);
    assert_string_equal(scale->group, "autoscaling");
    assert_string_equal(scale->kind, "Scale");
    assert_int_equal(scale->verbs, KCP_VERB_GET | KCP_VERB_UPDATE | KCP_VERB_PATCH);
    assert_non_null(kcp_schema_subresource_find(kcp_schema_resource_find("apps", "v1",
                                                                         "statefulsets"),
                                                "scale"));
    assert_non_null(kcp_schema_subresource_find(kcp_schema_resource_find("apps", "v1",
                                                                         "replicasets"),
                                                "scale"));

    const struct kcp_schema_resource *nodes = kcp_schema_resource_find("", "v1", "nodes");
    assert_non_null(nodes);
    assert_false(nodes->namespaced);
    assert_true(has_name(nodes->short_names, "no"));
    const struct kcp_schema_resource *ns = kcp_schema_resource_find("", "v1", "namespaces");
    assert_false(ns->namespaced);
    assert_false(ns->verbs & KCP_VERB_DELETECOLLECTION);
    const struct kcp_schema_resource *crd = kcp_schema_resource_find(
        "apiextensions.k8s.io", "v1", "customresourcedefinitions");
    assert_non_null(crd);
    assert_true(has_name(crd->short_names, "crd"));
    assert_null(kcp_schema_resource_find("", "v1", "widgets"));
    assert_non_null(kcp_schema_resource_find("batch", "v1", "cronjobs"));
    assert_int_equal(kcp_schema_verb_bit("deletecollection"), KCP_VERB_DELETECOLLECTION);
    assert_string_equal(kcp_schema_verb_name(KCP_VERB_WATCH), "watch");
    assert_true(kcp_schema_resource_count() >= 45);
}

static void test_messages(void **state)
{
    const struct kcp_schema_message *pod = kcp_schema_message_find("io.k8s.api.core.v1.Pod");
    assert_non_null(pod);
    assert_ptr_equal(pod, kcp_schema_message_by_gvk("", "v1", "Pod"));
    assert_true(pod->flags & KCP_SCHEMA_M_TYPEMETA);
    assert_string_equal(pod->fields[0].json, "metadata");
    assert_string_equal(pod->fields[1].json, "spec");
    /* Every table entry points at the protobuf-c field with its number. */
    for (size_t i = 0; i < kcp_schema_message_count(); i++) {
        const struct kcp_schema_message *m = kcp_schema_message_at((int)i);
        assert_non_null(m->desc);
        for (size_t j = 0; j < m->nfields; j++) {
            const struct kcp_schema_field *f = &m->fields[j];
            assert_true(f->pb_index < m->desc->n_fields);
            assert_int_equal(m->desc->fields[f->pb_index].id, f->number);
        }
    }
    const struct kcp_schema_message *spec = kcp_schema_message_find("io.k8s.api.core.v1.PodSpec");
    const struct kcp_schema_field *f, *inl;
    assert_int_equal(kcp_schema_field_find(&f, &inl, spec, "containers"), 0);
    assert_null(inl);
    assert_string_equal(f->merge_key, "name");
    assert_true(f->patch & KCP_SCHEMA_PATCH_MERGE);
    assert_int_equal(f->list_type, KCP_SCHEMA_LIST_MAP);
    assert_string_equal(f->list_keys, "name");
    assert_int_equal(kcp_schema_field_find(&f, &inl, spec, "volumes"), 0);
    assert_true(f->patch & KCP_SCHEMA_PATCH_RETAIN_KEYS);
    /* Inline fields: Volume's sources are found through volumeSource. */
    const struct kcp_schema_message *vol = kcp_schema_message_find("io.k8s.api.core.v1.Volume");
    assert_int_equal(kcp_schema_field_find(&f, &inl, vol, "configMap"), 0);
    assert_non_null(inl);
    assert_string_equal(inl->json, "volumeSource");
    size_t it = 0, n = 0;
    while (kcp_schema_field_next(vol, &it, NULL))
        n++;
    assert_true(n > 20);
    /* Special JSON mappings. */
    const struct kcp_schema_message *meta =
        kcp_schema_message_find("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    assert_int_equal(kcp_schema_field_find(&f, &inl, meta, "creationTimestamp"), 0);
    assert_int_equal(f->kind, KCP_SCHEMA_TIME);
    assert_int_equal(kcp_schema_field_find(&f, &inl, meta, "labels"), 0);
    assert_true(f->flags & KCP_SCHEMA_F_MAP);
    assert_int_equal(f->kind, KCP_SCHEMA_STRING);
    assert_null(kcp_schema_message_find("io.k8s.api.core.v1.Nope"));
}

static void test_openapi(void **state)
{
    char *doc = NULL;
    size_t len = 0;
    assert_int_equal(kcp_schema_openapi_v2(&doc, &len), 0);
    json_error_t jerr;
    json_t *v2 = json_loadb(doc, len, 0, &jerr);
    assert_non_null(v2);
    json_t *pod = json_object_get(json_object_get(v2, "definitions"), "io.k8s.api.core.v1.Pod");
    assert_non_null(pod);
    json_t *spec = json_object_get(json_object_get(v2, "definitions"),
                                   "io.k8s.api.core.v1.PodSpec");
    json_t *containers = json_object_get(json_object_get(spec, "properties"), "containers");
    assert_non_null(containers);
    assert_string_equal(json_string_value(json_object_get(containers,
                                                          "x-kubernetes-patch-merge-key")),
                        "name");
    assert_string_equal(json_string_value(json_object_get(containers,
                                                          "x-kubernetes-patch-strategy")),
                        "merge");
    json_t *gvk = json_array_get(json_object_get(pod, "x-kubernetes-group-version-kind"), 0);
    assert_string_equal(json_string_value(json_object_get(gvk, "kind")), "Pod");
    json_decref(v2);
    free(doc);

    assert_true(kcp_schema_openapi_v3_count() >= 15);
    assert_int_equal(kcp_schema_openapi_v3("apis/apps/v1", &doc, &len), 0);
    json_t *v3 = json_loadb(doc, len, 0, &jerr);
    assert_non_null(v3);
    assert_string_equal(json_string_value(json_object_get(v3, "openapi")), "3.0.0");
    json_t *schemas = json_object_get(json_object_get(v3, "components"), "schemas");
    assert_non_null(json_object_get(schemas, "io.k8s.api.apps.v1.Deployment"));
    assert_non_null(json_object_get(schemas, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    /* kubectl looks for fieldValidation among the operation's parameters. */
    json_t *patch = json_object_get(
        json_object_get(json_object_get(v3, "paths"),
                        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
        "patch");
    assert_non_null(patch);
    int found = 0;
    json_t *p;
    size_t i;
    json_array_foreach(json_object_get(patch, "parameters"), i, p) if (
        strcmp(json_string_value(json_object_get(p, "name")), "fieldValidation") == 0) found = 1;
    assert_true(found);
    json_decref(v3);
    free(doc);
    assert_int_equal(kcp_schema_openapi_v3("apis/nope/v1", &doc, &len), KCP_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resources),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_openapi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
