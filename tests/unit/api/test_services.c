/* Unit tests of a Service's type-dependent fields: what an update keeps, drops and refuses. */
#include "services.h"

#include <kcp/base.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, 0, &err);
    if (!v)
        fail_msg("bad test JSON: %s: %s", err.text, text);
    return v;
}

/* A NodePort Service as the server stores it. */
static const char *const stored_np =
    "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},\"spec\":{\"type\":\"NodePort\","
    "\"clusterIP\":\"10.43.0.10\",\"clusterIPs\":[\"10.43.0.10\"],\"ipFamilies\":[\"IPv4\"],"
    "\"ipFamilyPolicy\":\"SingleStack\",\"externalTrafficPolicy\":\"Cluster\","
    "\"internalTrafficPolicy\":\"Cluster\",\"sessionAffinity\":\"None\","
    "\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":80,"
    "\"nodePort\":30001},{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\",\"targetPort\":53,"
    "\"nodePort\":30002}]},\"status\":{\"loadBalancer\":{}}}";

/* The stored Service with a JSON merge patch applied (enough for these tests: one level of
 * spec, null deletes). */
static json_t *updated(const char *old_text, const char *spec_patch)
{
    json_t *obj = parse(old_text), *patch = parse(spec_patch);
    json_t *spec = json_object_get(obj, "spec");
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v) {
        if (json_is_null(v))
            json_object_del(spec, k);
        else
            json_object_set(spec, k, v);
    }
    json_decref(patch);
    return obj;
}

/* The causes' "field: message" lines, joined by "\n" (empty when valid). */
static char *validate(const json_t *obj, const json_t *old)
{
    json_t *causes = json_array();
    api_service_validate(causes, obj, old);
    struct kcp_buf b = KCP_BUF_INIT;
    size_t i;
    json_t *c;
    json_array_foreach(causes, i, c)
        kcp_buf_printf(&b, "%s%s: %s", i ? "\n" : "", json_string_value(json_object_get(c, "field")),
                       json_string_value(json_object_get(c, "message")));
    json_decref(causes);
    char *out = kcp_strdup(b.data ? b.data : "");
    kcp_buf_free(&b);
    return out;
}

static void assert_valid(const json_t *obj, const json_t *old)
{
    char *msg = validate(obj, old);
    assert_string_equal(msg, "");
    free(msg);
}

static void assert_refused(const json_t *obj, const json_t *old, const char *want)
{
    char *msg = validate(obj, old);
    assert_string_equal(msg, want);
    free(msg);
}

static const json_t *spec_of(const json_t *obj)
{
    return json_object_get(obj, "spec");
}

static void test_to_external_name_drops_what_the_client_left(void **state)
{
    (void)state;
    json_t *old = parse(stored_np);
    json_t *obj = updated(stored_np, "{\"type\":\"ExternalName\",\"externalName\":\"db.example.com\"}");
    api_service_prepare(obj, old);
    const json_t *spec = spec_of(obj);
    static const char *const dropped[] = {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
                                          "externalTrafficPolicy", NULL};
    for (size_t i = 0; dropped[i]; i++)
        assert_null(json_object_get(spec, dropped[i]));
    assert_null(json_object_get(json_array_get(json_object_get(spec, "ports"), 0), "nodePort"));
    assert_null(json_object_get(json_array_get(json_object_get(spec, "ports"), 1), "nodePort"));
    /* What the new type can have stays. */
    assert_string_equal(json_string_value(json_object_get(spec, "internalTrafficPolicy")), "Cluster");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(spec, "ports"), 0),
                                                        "port")),
                     80);
    assert_valid(obj, old);
    json_decref(obj);

    /* Clearing clusterIP alone clears clusterIPs too. */
    obj = updated(stored_np, "{\"type\":\"ExternalName\",\"externalName\":\"db.example.com.\","
                             "\"clusterIP\":\"\"}");
    api_service_prepare(obj, old);
    assert_null(json_object_get(spec_of(obj), "clusterIP"));
    assert_null(json_object_get(spec_of(obj), "clusterIPs"));
    assert_valid(obj, old);
    json_decref(obj);

    /* Both cleared by the client (a fresh manifest): fine as well. */
    obj = updated(stored_np, "{\"type\":\"ExternalName\",\"externalName\":\"db.example.com\","
                             "\"clusterIP\":null,\"clusterIPs\":null,\"ipFamilies\":null,"
                             "\"ipFamilyPolicy\":null}");
    api_service_prepare(obj, old);
    assert_valid(obj, old);
    json_decref(obj);
    json_decref(old);
}

static void test_to_external_name_keeps_what_the_client_changed(void **state)
{
    (void)state;
    json_t *old = parse(stored_np);
    /* A changed clusterIP is the client's: clusterIPs follows it, and both are refused. */
    json_t *obj = updated(stored_np, "{\"type\":\"ExternalName\",\"externalName\":\"x.example.com\","
                                     "\"clusterIP\":\"10.43.9.9\"}");
    api_service_prepare(obj, old);
    assert_string_equal(json_string_value(json_array_get(json_object_get(spec_of(obj), "clusterIPs"), 0)),
                        "10.43.9.9");
    assert_refused(obj, old, "spec.clusterIPs: Forbidden: may not be set for ExternalName services");
    json_decref(obj);

    /* A nodePort the old Service did not have stays (the client asked for it). */
    obj = updated(stored_np, "{\"type\":\"ExternalName\",\"externalName\":\"x.example.com\","
                             "\"ports\":[{\"name\":\"http\",\"port\":80,\"nodePort\":31000}]}");
    api_service_prepare(obj, old);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(spec_of(obj), "ports"), 0), "nodePort")),
                     31000);
    json_decref(obj);

    /* The name must be there, and a DNS name. */
    obj = updated(stored_np, "{\"type\":\"ExternalName\"}");
    api_service_prepare(obj, old);
    assert_refused(obj, old, "spec.externalName: Required value");
    json_decref(obj);
    obj = updated(stored_np, "{\"type\":\"ExternalName\",\"externalName\":\"Bad_Name\"}");
    api_service_prepare(obj, old);
    char *msg = validate(obj, old);
    assert_non_null(strstr(msg, "spec.externalName: Invalid value: \"Bad_Name\": a lowercase RFC 1123"));
    free(msg);
    json_decref(obj);
    json_decref(old);
}

static void test_update_keeps_allocated_values(void **state)
{
    (void)state;
    json_t *old = parse(stored_np);
    /* A client that sends the spec without what the server allocated keeps it, port by name. */
    json_t *obj = updated(stored_np, "{\"clusterIP\":null,\"clusterIPs\":null,\"ports\":["
                                     "{\"name\":\"dns\",\"port\":5353,\"protocol\":\"UDP\"},"
                                     "{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}");
    api_service_prepare(obj, old);
    const json_t *spec = spec_of(obj);
    assert_string_equal(json_string_value(json_object_get(spec, "clusterIP")), "10.43.0.10");
    assert_string_equal(json_string_value(json_array_get(json_object_get(spec, "clusterIPs"), 0)),
                        "10.43.0.10");
    const json_t *ports = json_object_get(spec, "ports");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ports, 0), "nodePort")), 30002);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ports, 1), "nodePort")), 30001);
    assert_valid(obj, old);
    json_decref(obj);

    /* To ClusterIP: nodePorts and externalTrafficPolicy go, the address stays. */
    obj = updated(stored_np, "{\"type\":\"ClusterIP\"}");
    api_service_prepare(obj, old);
    assert_null(json_object_get(json_array_get(json_object_get(spec_of(obj), "ports"), 0), "nodePort"));
    assert_null(json_object_get(spec_of(obj), "externalTrafficPolicy"));
    assert_string_equal(json_string_value(json_object_get(spec_of(obj), "clusterIP")), "10.43.0.10");
    assert_valid(obj, old);
    json_decref(obj);
    json_decref(old);
}

static void test_address_rules(void **state)
{
    (void)state;
    json_t *old = parse(stored_np);
    /* A changed address is refused with the plural's value, as upstream prints it. */
    json_t *obj = updated(stored_np, "{\"clusterIP\":\"10.43.99.99\"}");
    api_service_prepare(obj, old);
    assert_refused(obj, old,
                   "spec.clusterIPs[0]: Invalid value: [\"10.43.99.99\"]: may not change once set");
    json_decref(obj);

    /* A ClusterIP Service has no nodePorts. */
    obj = updated(stored_np, "{\"type\":\"ClusterIP\",\"ports\":[{\"name\":\"http\",\"port\":80,"
                             "\"nodePort\":31000}]}");
    api_service_prepare(obj, old);
    assert_refused(obj, old,
                   "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'");
    json_decref(obj);
    json_decref(old);

    /* On create, clusterIPs follows clusterIP, and may not come alone. */
    obj = parse("{\"spec\":{\"clusterIP\":\"10.43.1.1\"}}");
    api_service_prepare(obj, NULL);
    assert_string_equal(json_string_value(json_array_get(json_object_get(spec_of(obj), "clusterIPs"), 0)),
                        "10.43.1.1");
    assert_valid(obj, NULL);
    json_decref(obj);
    obj = parse("{\"spec\":{\"clusterIPs\":[\"10.43.1.1\"]}}");
    api_service_prepare(obj, NULL);
    assert_refused(obj, NULL, "spec.clusterIPs: Invalid value: [\"10.43.1.1\"]: must be empty when "
                              "`clusterIP` is not specified");
    json_decref(obj);
    obj = parse("{\"spec\":{\"clusterIP\":\"10.43.1.1\",\"clusterIPs\":[\"10.43.1.2\"]}}");
    api_service_prepare(obj, NULL);
    assert_refused(obj, NULL,
                   "spec.clusterIPs: Invalid value: [\"10.43.1.2\"]: first value must match `clusterIP`");
    json_decref(obj);
    /* An ExternalName created with address fields is refused. */
    obj = parse("{\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"a.b\",\"clusterIP\":\"10.43.5.5\","
                "\"ipFamilyPolicy\":\"SingleStack\"}}");
    api_service_prepare(obj, NULL);
    assert_refused(obj, NULL,
                   "spec.clusterIPs: Forbidden: may not be set for ExternalName services\n"
                   "spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services");
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_external_name_drops_what_the_client_left),
        cmocka_unit_test(test_to_external_name_keeps_what_the_client_changed),
        cmocka_unit_test(test_update_keeps_allocated_values),
        cmocka_unit_test(test_address_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
