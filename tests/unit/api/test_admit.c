/*
 * Admission (src/api/admit.c over the rules generated from proto/): defaults and validation of
 * the cases in admit_golden.json, compared byte for byte (field order included) with the
 * reviewed answers; with KCP_GOLDEN_PRINT=1 the test prints the cases with what it computes.
 * Then the walkers' rules one by one on small objects.
 */
#include "admit.h"
#include "api_int.h"

#include <kcp/codec.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct kcp_schema_resource *find(const char *spec)
{
    char group[128];
    const char *slash = strchr(spec, '/');
    snprintf(group, sizeof(group), "%.*s", (int)(slash - spec), spec);
    const char *g = strcmp(group, "core") == 0 ? "" : group;
    const struct kcp_schema_resource *found = NULL;
    for (size_t i = 0; i < kcp_schema_resource_count(); i++) {
        const struct kcp_schema_resource *r = kcp_schema_resource_at(i);
        /* The last version listed (autoscaling/v2 over v1). */
        if (strcmp(r->group, g) == 0 && strcmp(r->resource, slash + 1) == 0)
            found = r;
    }
    return found;
}

static char *encode(const json_t *v)
{
    struct kcp_buf b = KCP_BUF_INIT;
    if (v)
        kcp_codec_json_write(&b, v);
    else
        kcp_buf_puts(&b, "null");
    return kcp_buf_detach(&b);
}

static void expect_same(size_t i, const char *what, const json_t *got, const json_t *want)
{
    char *g = encode(got), *w = encode(want);
    if (strcmp(g, w) != 0)
        fail_msg("case %zu %s:\n got  %s\n want %s", i, what, g, w);
    free(g);
    free(w);
}

static void test_golden(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *cases = json_load_file(KCP_API_TEST_DIR "/admit_golden.json", 0, &jerr);
    if (!cases)
        fail_msg("admit_golden.json: %s (line %d)", jerr.text, jerr.line);
    bool print = getenv("KCP_GOLDEN_PRINT") != NULL;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *res = json_string_value(json_object_get(c, "resource"));
        const struct kcp_schema_resource *rsrc = find(res);
        if (!rsrc)
            fail_msg("case %zu: no resource %s", i, res);
        json_t *obj = json_deep_copy(json_object_get(c, "object"));
        json_t *old = json_deep_copy(json_object_get(c, "old"));
        /* A stored object went through defaults when it was written. */
        if (old)
            api_admit_defaults(rsrc, old);
        api_admit_defaults(rsrc, obj);
        json_t *causes = api_admit_validate(rsrc, obj, old);
        if (print) {
            json_object_set(c, "defaulted", obj);
            json_object_set(c, "causes", causes ? causes : json_null());
        } else {
            expect_same(i, "defaults", obj, json_object_get(c, "defaulted"));
            const json_t *want = json_object_get(c, "causes");
            expect_same(i, "causes", causes, json_is_null(want) ? NULL : want);
        }
        json_decref(causes);
        json_decref(obj);
        json_decref(old);
    }
    if (print) {
        size_t j;
        json_t *x;
        printf("[\n");
        json_array_foreach(cases, j, x) {
            char *s = json_dumps(x, JSON_COMPACT);
            printf("%s%s\n", s, j + 1 < json_array_size(cases) ? "," : "");
            free(s);
        }
        printf("]\n");
    }
    json_decref(cases);
}

/* ---- the walkers' rules ---- */

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    return v;
}

/* Defaults obj (JSON text) as resource res and compares the result, in order, with want. */
static void expect_defaults(const char *res, const char *obj, const char *want)
{
    json_t *o = parse(obj), *w = parse(want);
    api_admit_defaults(find(res), o);
    expect_same(0, res, o, w);
    json_decref(o);
    json_decref(w);
}

/* Validates obj (old: NULL or the stored object) and compares "field: message" lines. */
static void expect_causes(const char *res, const char *obj, const char *old, const char *want)
{
    json_t *o = parse(obj), *ol = old ? parse(old) : NULL;
    json_t *causes = api_admit_validate(find(res), o, ol);
    struct kcp_buf b = KCP_BUF_INIT;
    kcp_buf_puts(&b, "");
    size_t i;
    json_t *c;
    json_array_foreach(causes, i, c)
        kcp_buf_printf(&b, "%s: %s\n", json_string_value(json_object_get(c, "field")),
                       json_string_value(json_object_get(c, "message")));
    assert_string_equal(b.data, want);
    kcp_buf_free(&b);
    json_decref(causes);
    json_decref(o);
    json_decref(ol);
}

static void test_tables_agree(void **state)
{
    (void)state;
    assert_int_equal(api_admit_nmessages, kcp_schema_message_count());
    for (size_t i = 0; i < api_admit_nmessages; i++)
        assert_string_equal(api_admit_messages[i].name, kcp_schema_message_at((int)i)->name);
}

static const struct kcp_schema_field *field(const char *msg, const char *name)
{
    const struct kcp_schema_field *f, *inl;
    assert_int_equal(kcp_schema_field_find(&f, &inl, kcp_schema_message_find(msg), name), 0);
    return f;
}

static void test_unset(void **state)
{
    (void)state;
    json_t *empty = json_string(""), *zero = json_integer(0), *list = json_array();
    const struct kcp_schema_field *dns = field("io.k8s.api.core.v1.PodSpec", "dnsPolicy");
    const struct kcp_schema_field *prio = field("io.k8s.api.core.v1.PodSpec", "priority");
    const struct kcp_schema_field *fin = field("io.k8s.api.core.v1.NamespaceSpec", "finalizers");
    /* A Go value holding its zero value is unset; a Go pointer only when nil. */
    assert_true(api_admit_unset(NULL, dns));
    assert_true(api_admit_unset(json_null(), dns));
    assert_true(api_admit_unset(empty, dns));
    assert_false(api_admit_unset(zero, prio));
    assert_true(api_admit_unset(NULL, prio));
    assert_true(api_admit_unset(list, fin));
    json_decref(empty);
    json_decref(zero);
    json_decref(list);
}

static void test_value_structs_and_order(void **state)
{
    (void)state;
    /* Value structs appear as {} (status too); defaults land in schema order. */
    expect_defaults("apps/replicasets", "{\"metadata\":{\"name\":\"r\"}}",
                    "{\"metadata\":{\"name\":\"r\"},\"spec\":{\"replicas\":1,"
                    "\"template\":{\"metadata\":{},\"spec\":{\"restartPolicy\":\"Always\","
                    "\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":\"ClusterFirst\","
                    "\"securityContext\":{},\"schedulerName\":\"default-scheduler\"}}},"
                    "\"status\":{}}");
    /* Set values stay, pointers keep their zero; unknown members stay after the known ones. */
    expect_defaults("core/replicationcontrollers",
                    "{\"zz\":1,\"spec\":{\"replicas\":0},\"metadata\":{\"name\":\"r\"}}",
                    "{\"metadata\":{\"name\":\"r\"},\"spec\":{\"replicas\":0},\"status\":{},"
                    "\"zz\":1}");
}

static void test_scopes_and_conditions(void **state)
{
    (void)state;
    /* Pod-only defaults stay out of pod templates. */
    expect_defaults("core/podtemplates",
                    "{\"metadata\":{\"name\":\"t\"},\"template\":{\"spec\":{\"restartPolicy\":"
                    "\"Never\",\"terminationGracePeriodSeconds\":0,\"dnsPolicy\":\"None\","
                    "\"securityContext\":{\"runAsUser\":1},\"schedulerName\":\"s\"}}}",
                    "{\"metadata\":{\"name\":\"t\"},\"template\":{\"metadata\":{},\"spec\":"
                    "{\"restartPolicy\":\"Never\",\"terminationGracePeriodSeconds\":0,"
                    "\"dnsPolicy\":\"None\",\"securityContext\":{\"runAsUser\":1},"
                    "\"schedulerName\":\"s\"}}}");
    /* if= and unless= read the sibling after its own default. */
    expect_defaults("core/services",
                    "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"type\":\"ExternalName\","
                    "\"externalName\":\"x.example\"}}",
                    "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"type\":\"ExternalName\","
                    "\"sessionAffinity\":\"None\",\"externalName\":\"x.example\"},"
                    "\"status\":{\"loadBalancer\":{}}}");
    expect_defaults("apps/deployments",
                    "{\"metadata\":{\"name\":\"d\"},\"spec\":{\"strategy\":{\"type\":"
                    "\"Recreate\"},\"template\":{\"metadata\":{}}}}",
                    "{\"metadata\":{\"name\":\"d\"},\"spec\":{\"replicas\":1,\"template\":"
                    "{\"metadata\":{},\"spec\":{\"restartPolicy\":\"Always\","
                    "\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":\"ClusterFirst\","
                    "\"securityContext\":{},\"schedulerName\":\"default-scheduler\"}},"
                    "\"strategy\":{\"type\":\"Recreate\"},\"revisionHistoryLimit\":10,"
                    "\"progressDeadlineSeconds\":600},\"status\":{}}");
}

static void test_checks(void **state)
{
    (void)state;
    /* Paths through lists and maps; every cause, in field order. */
    expect_causes("core/pods",
                  "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                  "\"image\":\"x\"},{\"name\":\"\"}],\"restartPolicy\":\"Always\"}}",
                  NULL,
                  "spec.containers[1].name: Required value\n"
                  "spec.containers[1].image: Required value\n");
    expect_causes("core/configmaps",
                  "{\"metadata\":{\"name\":\"c\"},\"data\":{\"ok\":\"1\",\"a b\":\"2\"}}",
                  NULL,
                  "data[a b]: Invalid value: \"a b\": a valid config key must consist of "
                  "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                  "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')\n");
    /* Update-only checks need the old object; names are checked on create only. */
    const char *cm = "{\"metadata\":{\"name\":\"C\"},\"data\":{\"a\":\"2\"}}";
    const char *frozen = "{\"metadata\":{\"name\":\"C\"},\"immutable\":true,"
                         "\"data\":{\"a\":\"1\"}}";
    expect_causes("core/configmaps", cm, frozen,
                  "immutable: Forbidden: field is immutable when `immutable` is set\n"
                  "data: Forbidden: field is immutable when `immutable` is set\n");
    expect_causes("core/configmaps", cm, NULL,
                  "metadata.name: Invalid value: \"C\": a lowercase RFC 1123 subdomain must "
                  "consist of lower case alphanumeric characters, '-' or '.', and must start and "
                  "end with an alphanumeric character (e.g. 'example.com', regex used for "
                  "validation is "
                  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n");
    expect_causes("apps/statefulsets",
                  "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"replicas\":-2,\"selector\":{},"
                  "\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"}],"
                  "\"restartPolicy\":\"OnFailure\"}}}}",
                  NULL,
                  "spec.replicas: Invalid value: -2: must be greater than or equal to 0\n"
                  "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported "
                  "values: \"Always\"\n");
}

static void test_formats(void **state)
{
    (void)state;
    char *m = api_admit_check_format(API_FMT_DNS1035, "1abc");
    assert_non_null(strstr(m, "a DNS-1035 label must consist of"));
    free(m);
    assert_null(api_admit_check_format(API_FMT_DNS1035, "abc-1"));
    assert_null(api_admit_check_format(API_FMT_PATH_SEGMENT, "system:node:x"));
    m = api_admit_check_format(API_FMT_PATH_SEGMENT, "..");
    assert_string_equal(m, "may not be '..'");
    free(m);
    m = api_admit_check_format(API_FMT_PATH_SEGMENT, "a%b");
    assert_string_equal(m, "may not contain '%'");
    free(m);
    m = api_admit_check_format(API_FMT_CONFIG_KEY, "..x");
    assert_string_equal(m, "must not start with '..'");
    free(m);
    assert_null(api_admit_check_format(API_FMT_CONFIG_KEY, ".x_Y-1"));
}

/* A CRD schema nests without bound; the walkers skip subtrees without rules (JSONSchemaProps has
 * none), so its depth costs nothing, while the CRD's own defaults still apply. */
static void test_deep(void **state)
{
    (void)state;
    json_t *props = json_pack("{s:s}", "type", "object");
    for (int i = 0; i < 500; i++)
        props = json_pack("{s:s, s:{s:o}}", "type", "object", "properties", "x", props);
    json_t *crd = json_pack("{s:{s:s}, s:{s:s, s:{s:s, s:s}, s:s, s:[{s:s, s:b, s:b, s:{s:o}}]}}",
                            "metadata", "name", "xs.example.com", "spec", "group", "example.com",
                            "names", "plural", "xs", "kind", "X", "scope", "Namespaced",
                            "versions", "name", "v1", "served", 1, "storage", 1, "schema",
                            "openAPIV3Schema", props);
    const struct kcp_schema_resource *r = find("apiextensions.k8s.io/customresourcedefinitions");
    api_admit_defaults(r, crd);
    json_t *causes = api_admit_validate(r, crd, NULL);
    assert_null(causes);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(crd, "spec"), "names"), "singular")),
                        "x");
    json_decref(crd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_agree),
        cmocka_unit_test(test_unset),
        cmocka_unit_test(test_value_structs_and_order),
        cmocka_unit_test(test_scopes_and_conditions),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_deep),
        cmocka_unit_test(test_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
