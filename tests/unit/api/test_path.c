/* Unit tests of the API layer's pure parts: paths, content negotiation, metadata helpers. */
#include "media.h"
#include "meta.h"
#include "path.h"

#include <kcp/base.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#define STR_OR_NULL(x) ((x) ? (x) : "(null)")

static void expect_path(const char *path, enum api_path_kind kind, const char *group,
                        const char *version, const char *ns, const char *resource,
                        const char *name, const char *sub)
{
    struct api_path p;
    assert_int_equal(api_path_parse(&p, path), 0);
    assert_int_equal(p.kind, kind);
    assert_string_equal(STR_OR_NULL(p.group), STR_OR_NULL(group));
    assert_string_equal(STR_OR_NULL(p.version), STR_OR_NULL(version));
    assert_string_equal(STR_OR_NULL(p.namespace_), STR_OR_NULL(ns));
    assert_string_equal(STR_OR_NULL(p.resource), STR_OR_NULL(resource));
    assert_string_equal(STR_OR_NULL(p.name), STR_OR_NULL(name));
    assert_string_equal(STR_OR_NULL(p.subresource), STR_OR_NULL(sub));
    api_path_free(&p);
}

static void test_paths(void **state)
{
    expect_path("/api", API_PATH_LEGACY_ROOT, "", NULL, NULL, NULL, NULL, NULL);
    expect_path("/apis", API_PATH_GROUPS_ROOT, NULL, NULL, NULL, NULL, NULL, NULL);
    expect_path("/apis/apps", API_PATH_GROUP, "apps", NULL, NULL, NULL, NULL, NULL);
    expect_path("/api/v1", API_PATH_GROUP_VERSION, "", "v1", NULL, NULL, NULL, NULL);
    expect_path("/apis/apps/v1/", API_PATH_GROUP_VERSION, "apps", "v1", NULL, NULL, NULL, NULL);
    expect_path("/api/v1/pods", API_PATH_RESOURCE, "", "v1", NULL, "pods", NULL, NULL);
    expect_path("/api/v1/namespaces", API_PATH_RESOURCE, "", "v1", NULL, "namespaces", NULL, NULL);
    expect_path("/api/v1/namespaces/shop", API_PATH_RESOURCE, "", "v1", NULL, "namespaces", "shop",
                NULL);
    expect_path("/api/v1/namespaces/shop/status", API_PATH_RESOURCE, "", "v1", NULL, "namespaces",
                "shop", "status");
    expect_path("/api/v1/namespaces/shop/configmaps", API_PATH_RESOURCE, "", "v1", "shop",
                "configmaps", NULL, NULL);
    expect_path("/api/v1/namespaces/shop/pods/web-1/log", API_PATH_RESOURCE, "", "v1", "shop",
                "pods", "web-1", "log");
    expect_path("/apis/apps/v1/namespaces/d/deployments/web/scale", API_PATH_RESOURCE, "apps",
                "v1", "d", "deployments", "web", "scale");
    expect_path("/api/v1/nodes/n1/status", API_PATH_RESOURCE, "", "v1", NULL, "nodes", "n1",
                "status");
    struct api_path p;
    assert_int_equal(api_path_parse(&p, "/healthz"), KCP_ENOTFOUND);
    assert_int_equal(api_path_parse(&p, "/api//v1"), KCP_ENOTFOUND);
    assert_int_equal(api_path_parse(&p, "/api/v1/namespaces/a/pods/b/c/d"), KCP_ENOTFOUND);
    assert_int_equal(api_path_parse(&p, "/apis/a/b/c/d/e/f/g/h/i/j/k"), KCP_ENOTFOUND);
    assert_int_equal(api_path_parse(&p, ""), KCP_ENOTFOUND);
}

static void test_negotiate(void **state)
{
    struct api_media m;
    assert_int_equal(api_media_negotiate(&m, NULL, 0), 0);
    assert_int_equal(m.format, API_FORMAT_JSON);
    /* kubectl get: a Table first, then plain JSON. */
    assert_int_equal(api_media_negotiate(&m,
                                         "application/json;as=Table;v=v1;g=meta.k8s.io,"
                                         "application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
                                         "application/json",
                                         0),
                     0);
    assert_int_equal(m.as, API_AS_TABLE);
    assert_string_equal(api_media_content_type(&m), "application/json;as=Table;v=v1;g=meta.k8s.io");
    /* Aggregated discovery only where allowed, else the plain fallback. */
    const char *disc = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                       "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                       "application/json";
    assert_int_equal(api_media_negotiate(&m, disc, 1), 0);
    assert_int_equal(m.as, API_AS_DISCOVERY_AGGREGATED);
    assert_string_equal(m.as_version, "v2");
    assert_int_equal(api_media_negotiate(&m, disc, 0), 0);
    assert_int_equal(m.as, API_AS_OBJECT);
    /* q-values outrank order. */
    assert_int_equal(
        api_media_negotiate(&m, "application/json;q=0.5, application/vnd.kubernetes.protobuf", 0),
        0);
    assert_int_equal(m.format, API_FORMAT_PROTOBUF);
    assert_int_equal(api_media_negotiate(&m, "text/html", 0), KCP_ENOTACCEPTABLE);
    assert_int_equal(api_media_negotiate(&m, "*/*", 0), 0);
    assert_int_equal(m.format, API_FORMAT_JSON);
}

static void test_body_types(void **state)
{
    enum api_body_type t;
    assert_int_equal(api_media_body_type(&t, "application/json; charset=utf-8"), 0);
    assert_int_equal(t, API_BODY_JSON);
    assert_int_equal(api_media_body_type(&t, "application/strategic-merge-patch+json"), 0);
    assert_int_equal(t, API_BODY_STRATEGIC_PATCH);
    assert_int_equal(api_media_body_type(&t, "application/vnd.kubernetes.protobuf"), 0);
    assert_int_equal(t, API_BODY_PROTOBUF);
    assert_int_equal(api_media_body_type(&t, "text/plain"), KCP_EMEDIATYPE);
    assert_int_equal(api_media_body_type(&t, NULL), 0);
    assert_int_equal(t, API_BODY_JSON);
}

static void test_meta(void **state)
{
    char uid[37], uid2[37], t[32], mt[40], sfx[6];
    assert_int_equal(api_meta_uid(uid), 0);
    assert_int_equal(api_meta_uid(uid2), 0);
    assert_int_equal(strlen(uid), 36);
    assert_int_equal(uid[14], '4');
    assert_string_not_equal(uid, uid2);
    api_meta_time(t, sizeof(t), 1199149261);
    assert_string_equal(t, "2008-01-01T01:01:01Z");
    api_meta_microtime(mt, sizeof(mt), 1199149261, 123456789);
    assert_string_equal(mt, "2008-01-01T01:01:01.123456Z");
    api_meta_name_suffix(sfx);
    assert_int_equal(strlen(sfx), 5);
    assert_null(strpbrk(sfx, "aeiou013"));
    char *msg;
    assert_null(api_meta_check_dns1123_subdomain("a.b-c.d"));
    assert_null(api_meta_check_dns1123_label("web-1"));
    assert_non_null(msg = api_meta_check_dns1123_label("a.b"));
    free(msg);
    assert_non_null(msg = api_meta_check_dns1123_subdomain("Upper"));
    free(msg);
    assert_non_null(msg = api_meta_check_dns1123_subdomain("a..b"));
    free(msg);
    assert_non_null(msg = api_meta_check_dns1123_subdomain("-a"));
    free(msg);
    assert_non_null(msg = api_meta_check_dns1123_subdomain(""));
    free(msg);
    char long_label[70];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    assert_non_null(msg = api_meta_check_dns1123_label(long_label));
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_negotiate),
        cmocka_unit_test(test_body_types),
        cmocka_unit_test(test_meta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
